"""Hostile rasters for the confinement tests, and the instruments that prove nothing outside
the data folders was read: an inotify watch on the outside folder (every open of a file in
it, by any thread of this process) and an HTTP listener on 127.0.0.1 that counts requests.

Layout made by :func:`make_world` under a temporary folder::

    data/       the registered data folder: base.tif (values 1..150) and the hostile files
    elsewhere/  beside it, not registered: real.tif (value 201, same grid), secret.bin,
                real.zip (real.tif inside)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import http.server
import os
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

SIZE = 64
CRS = "EPSG:32618"
TRANSFORM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)
OUTSIDE_VALUE = 201  # every pixel of the outside raster; no inside raster has it
BASE = (np.add.outer(np.arange(SIZE), np.arange(SIZE)) % 150 + 1).astype(np.uint8)
IN_OPEN = 0x20
IN_ACCESS = 0x01
IN_NONBLOCK = 0o4000


class OpenWatch:
    """inotify on one folder: counts opens and reads of the files in it (Linux)."""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        wd = libc.inotify_add_watch(self.fd, str(folder).encode(), IN_OPEN | IN_ACCESS)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.events: list[str] = []

    def poll(self) -> list[str]:
        """Names of the files opened or read since the watch started."""
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(buf):
                _, _, _, length = struct.unpack_from("iIII", buf, offset)
                name = buf[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                self.events.append(name)
                offset += 16 + length
        return list(self.events)

    def close(self) -> None:
        os.close(self.fd)


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Answers 404 to everything and counts what it was asked."""

    count = 0
    lock = threading.Lock()

    def _count(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.count += 1
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD = do_POST = _count  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def listener() -> Iterator[tuple[int, Callable[[], int]]]:
    """A real HTTP listener on 127.0.0.1: (port, requests received so far)."""
    handler = type("Handler", (CountingHandler,), {"count": 0, "lock": threading.Lock()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), lambda: int(handler.count)
    finally:
        server.shutdown()
        server.server_close()


def write_tif(path: Path, value: int | None = None, data: np.ndarray | None = None) -> None:
    """A 64 x 64 one-band uint8 GeoTIFF on the test grid."""
    if data is None:
        data = np.full((SIZE, SIZE), value, dtype=np.uint8)
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS,
        "transform": TRANSFORM,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def vrt(band: str) -> str:
    """A one-band VRT on the test grid with ``band`` as its band element."""
    gt = ", ".join(str(v) for v in TRANSFORM.to_gdal())
    return (
        f'<VRTDataset rasterXSize="{SIZE}" rasterYSize="{SIZE}">'
        f"<SRS>{CRS}</SRS><GeoTransform>{gt}</GeoTransform>{band}</VRTDataset>"
    )


def simple(source: str, relative: bool = False) -> str:
    """A VRT whose band reads band 1 of ``source``."""
    rel = "1" if relative else "0"
    return vrt(
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="{rel}">{source}</SourceFilename>'
        "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
    )


def raw(source: str) -> str:
    """A VRT whose band is the raw bytes of ``source``."""
    return vrt(
        '<VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">'
        f'<SourceFilename relativeToVRT="0">{source}</SourceFilename>'
        f"<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>"
        f"<LineOffset>{SIZE}</LineOffset></VRTRasterBand>"
    )


@dataclass
class World:
    """The folders of a confinement test and the hostile files in the data folder."""

    root: Path
    data: Path
    outside: Path
    hostile: dict[str, Path]  # kind -> file in the data folder
    contents: dict[str, str]  # kind -> text of the hostile VRTs (for swapping in later)
    port: int  # the listener the network sources point at

    def secrets(self) -> list[str]:
        """Strings that must never appear in a refusal reason."""
        return [str(self.outside), "elsewhere", "/etc/passwd", "127.0.0.1", "real.tif"]


def make_world(root: Path, port: int, shared_data: Path) -> World:
    """The data folder with every kind of hostile raster, and the outside folder."""
    data, outside = root / "data", root / "elsewhere"
    data.mkdir(parents=True)
    outside.mkdir()
    write_tif(data / "base.tif", data=BASE)
    write_tif(outside / "real.tif", OUTSIDE_VALUE)
    (outside / "secret.bin").write_bytes(bytes([OUTSIDE_VALUE]) * SIZE * SIZE)
    with zipfile.ZipFile(outside / "real.zip", "w") as zf:
        zf.write(outside / "real.tif", "real.tif")
    out_tif = str(outside / "real.tif")
    contents = {
        "raw_band.vrt": raw(str(outside / "secret.bin")),
        "etc_passwd.vrt": simple("/etc/passwd"),
        "beside.vrt": simple(out_tif),
        "relative.vrt": simple("../elsewhere/real.tif", relative=True),
        "inner.vrt": simple(out_tif),
        "nested.vrt": simple("inner.vrt", relative=True),
        "disguised.tif": simple(out_tif),
        "vsizip.vrt": simple(f"/vsizip/{outside / 'real.zip'}/real.tif"),
        "vsicurl.vrt": simple(f"/vsicurl/http://127.0.0.1:{port}/x.tif"),
        "http_url.vrt": simple(f"http://127.0.0.1:{port}/y.tif"),
        "vrt_scheme.vrt": simple(f"vrt://{out_tif}?bands=1"),
        "netcdf_string.vrt": simple(f'NETCDF:"{shared_data / "timeseries/bcsd_obs_1999.nc"}":pr'),
    }
    hostile: dict[str, Path] = {}
    for name, text in contents.items():
        path = data / name
        path.write_text(text)
        hostile[name] = path
    # a real TIFF whose overview sidecar is a symlink to the outside raster
    write_tif(data / "ovr_link.tif", data=BASE)
    os.symlink(outside / "real.tif", data / "ovr_link.tif.ovr")
    hostile["ovr_link.tif"] = data / "ovr_link.tif"
    # a zip inside the folder whose VRT member points outside
    with zipfile.ZipFile(data / "packed.zip", "w") as zf:
        zf.writestr("packed.vrt", simple(out_tif))
    hostile["packed.zip"] = data / "packed.zip"
    # a symlink inside the folder that leads outside
    os.symlink(outside / "real.tif", data / "link.tif")
    hostile["link.tif"] = data / "link.tif"
    return World(root, data, outside, hostile, contents, port)


__all__ = [
    "BASE",
    "OUTSIDE_VALUE",
    "OpenWatch",
    "World",
    "listener",
    "make_world",
    "raw",
    "simple",
    "write_tif",
]
