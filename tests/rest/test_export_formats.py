"""exportImage formats (spec 6.1.2): magic bytes, decodability, jpgpng choice, headers."""

from __future__ import annotations

import io
import json

import httpx
import lerc
import numpy as np
import pytest
import rasterio
from PIL import Image

from tests.rest.helpers import LiveServer, export, ok_json, read_tiff

MAGIC = {
    "png": b"\x89PNG", "png8": b"\x89PNG", "png24": b"\x89PNG", "png32": b"\x89PNG",
    "jpg": b"\xff\xd8", "bmp": b"BM", "gif": b"GIF", "tiff": b"II*\x00", "lerc": b"Lerc2 ",
}  # fmt: skip


@pytest.mark.parametrize(
    "fmt",
    ["png", "png8", "png24", "png32", "jpg", "bmp", "gif", "tiff", "lerc", "bip", "bsq", "jpgpng"],
)
def test_every_format_decodes(client: httpx.Client, live: LiveServer, fmt: str) -> None:
    info = ok_json(client.get(live.svc("imagery"), params={"f": "json"}))
    e = info["extent"]
    bbox = f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}"
    r = export(
        client,
        live,
        "imagery",
        bbox=bbox,
        size="64,48",
        format=fmt.upper(),
        adjustAspectRatio="false",
    )
    content = r.content
    if fmt in MAGIC:
        assert content.startswith(MAGIC[fmt])
    if fmt in ("png", "png8", "png24", "png32", "jpg", "bmp", "gif", "jpgpng"):
        image = Image.open(io.BytesIO(content))
        image.load()
        assert image.size == (64, 48)
        modes = {"png8": ("P",), "png24": ("RGB",), "png32": ("RGBA",), "jpg": ("RGB",)}
        if fmt in modes:
            assert image.mode in modes[fmt]
    elif fmt == "tiff":
        data, _valid, _ = read_tiff(content)
        assert data.shape == (3, 48, 64)
    elif fmt == "lerc":
        result = lerc.decode(content)
        assert result[0] == 0  # success
        assert result[1].shape == (3, 48, 64)
    else:
        assert len(content) == 64 * 48 * 3
        assert r.headers["content-type"] == "application/octet-stream"


def test_jpgpng_picks_png_where_nodata_and_jpeg_where_full(
    client: httpx.Client, live: LiveServer
) -> None:
    nothing = export(client, live, "imagery", bbox="0,0,1000,1000", size="32,32", format="jpgpng")
    assert nothing.content.startswith(b"\x89PNG")
    img = Image.open(io.BytesIO(nothing.content)).convert("RGBA")
    assert (
        int(np.asarray(img.getchannel("A")).max()) == 0
    )  # an empty area is transparent, not an error
    with rasterio.open(live.data / "mosaic/rgb1.tif") as ds:
        b = ds.bounds
    cx, cy = (b.left + b.right) / 2, (b.bottom + b.top) / 2
    full = export(
        client,
        live,
        "imagery",
        bbox=f"{cx - 3000},{cy - 3000},{cx + 3000},{cy + 3000}",
        size="16,16",
        format="jpgpng",
    )
    assert full.content.startswith(b"\xff\xd8")


def test_image_response_headers(client: httpx.Client, live: LiveServer) -> None:
    r = export(client, live, "imagery", size="32,32", format="png", f="image")
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"].startswith("private, max-age=")
    version = live.ctx.registry.get("", "imagery").version
    assert r.headers["etag"].startswith(f'"v{version}-')


def _tiff(
    client: httpx.Client, live: LiveServer, service: str, **extra: str
) -> tuple[str | None, np.ndarray, np.ndarray, int]:
    """(compression, values, valid mask, bytes) of a TIFF export of a service's extent."""
    info = ok_json(client.get(live.svc(service), params={"f": "json"}))
    e = info["extent"]
    bbox = f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}"
    r = export(client, live, service, bbox=bbox, size="64,48", format="tiff",
               adjustAspectRatio="false", **extra)  # fmt: skip
    with rasterio.MemoryFile(r.content) as mem, mem.open() as ds:
        kind = ds.compression.value if ds.compression is not None else None
        return kind, ds.read(), ds.dataset_mask() > 0, len(r.content)


def test_tiff_is_written_with_the_compression_asked_for(
    client: httpx.Client, live: LiveServer
) -> None:
    kind, plain, valid, size = _tiff(client, live, "imagery")
    assert kind is None  # ArcGIS's default: uncompressed
    for asked in ("LZ77", "deflate"):  # Deflate is taken as LZ77
        kind, data, mask, packed = _tiff(client, live, "imagery", compression=asked)
        assert kind == "DEFLATE" and packed < size
        assert np.array_equal(data, plain) and np.array_equal(mask, valid)
    kind, data, mask, lossy = _tiff(client, live, "imagery", compression="JPEG",
                                    compressionQuality="90")  # fmt: skip
    assert kind == "JPEG" and lossy < size
    assert np.array_equal(mask, valid)  # invalid pixels are in the mask, not a lossy value
    diff = np.abs(data.astype(np.int16) - plain.astype(np.int16))[:, valid]
    assert diff.mean() < 4


def test_tiff_compression_of_float_data(client: httpx.Client, live: LiveServer) -> None:
    kind, plain, valid, size = _tiff(client, live, "dem", pixelType="F32")
    assert kind is None and plain.dtype == np.float32
    kind, data, mask, packed = _tiff(client, live, "dem", pixelType="F32", compression="LERC",
                                     compressionTolerance="0.5")  # fmt: skip
    assert kind == "LERC" and packed < size
    assert np.array_equal(mask, valid)
    assert float(np.abs(data - plain)[:, valid].max()) <= 0.5
    # JPEG is for 8-bit data: float data is written losslessly with LZ77 instead
    kind, data, mask, _ = _tiff(client, live, "dem", pixelType="F32", compression="JPEG")
    assert kind == "DEFLATE" and np.array_equal(data, plain)


def test_an_unknown_tiff_compression_is_a_400(client: httpx.Client, live: LiveServer) -> None:
    r = client.get(
        live.svc("imagery") + "/exportImage",
        params={"f": "json", "format": "tiff", "size": "16,16", "compression": "zip"},
    )
    err = r.json()["error"]
    assert err["code"] == 400
    assert "compression" in json.dumps(err) and "LZ77" in json.dumps(err)
