"""exportImage formats (spec 6.1.2): magic bytes, decodability, jpgpng choice, headers."""

from __future__ import annotations

import io

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
