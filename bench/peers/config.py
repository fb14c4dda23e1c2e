"""What the suite asks and how each server is set up: request cases, bboxes, URLs, and the
configuration files of MapServer, nginx and wrk. Pure functions of their arguments (tested)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

SERVERS = ("livemosaic", "mapserver", "titiler")
SCALES = ("native", "mid", "whole")
QUICK_SCALES = ("native", "whole")
SIZES = (256, 512)
FORMATS = ("png", "jpg")
CONCURRENCY = (4, 16)
LM_FOLDER = "Bench"
LM_SERVICES = {"rgb": "Tiles", "dem": "Dem"}  # layer -> livemosaic service name
MIME = {"png": "image/png", "jpg": "image/jpeg", "tif": "image/tiff"}


@dataclass(frozen=True, slots=True)
class Case:
    """One kind of request: a layer at a scale, an output size and format."""

    layer: str  # "rgb" (8-bit imagery) or "dem" (float32 elevations)
    scale: str  # native, mid, whole
    size: int  # output pixels per side
    fmt: str  # png, jpg, or tif (float32 GeoTIFF, for the DEM)

    @property
    def label(self) -> str:
        """``native 256 png`` (``dem`` prefixed for the elevation layer)."""
        text = f"{self.scale} {self.size} {self.fmt}"
        return text if self.layer == "rgb" else f"dem {text}"


def cases(
    scales: tuple[str, ...],
    sizes: tuple[int, ...],
    formats: tuple[str, ...],
    dem_sizes: tuple[int, ...] | None = None,
) -> list[Case]:
    """Every combination for the imagery, then the DEM as float32 GeoTIFF at each scale and
    each of ``dem_sizes`` (default: ``sizes``)."""
    rgb = [Case("rgb", s, z, f) for s in scales for z in sizes for f in formats]
    dem = [Case("dem", s, z, "tif") for s in scales for z in (dem_sizes or sizes)]
    return rgb + dem


def run_seconds(base: float, latency: float, connections: int, cap: float) -> float:
    """How long one wrk run lasts: ``base`` seconds, longer for slow requests so that each
    connection finishes several (``connections`` in flight on two workers take about
    ``latency * connections / 2`` each), at most ``cap``."""
    wanted = latency * max(10.0, float(connections))
    return min(cap, max(base, wanted))


Box = tuple[float, float, float, float]


def scale_side(scale: str, size: int, extent: Box, pixel: float) -> float:
    """The bbox side (metres) of a scale: native pixels, the whole extent or their middle.

    "mid" is the geometric middle of the native and the whole-extent resolutions.
    """
    whole = max(extent[2] - extent[0], extent[3] - extent[1])
    native = pixel * size
    if scale == "native":
        return native
    if scale == "whole":
        return whole
    if scale == "mid":
        return math.sqrt(whole * native)
    raise ValueError(f"unknown scale {scale!r}")


def bboxes(scale: str, size: int, extent: Box, pixel: float, count: int, seed: int) -> list[Box]:
    """``count`` square bboxes of a scale inside ``extent``, snapped to the pixel grid.

    Snapping keeps native requests on the sources' pixel grid (so nearest neighbour has no
    ties to break and servers can be compared pixel by pixel). "whole" is the extent itself.
    """
    side = scale_side(scale, size, extent, pixel)
    if scale == "whole":
        return [(extent[0], extent[3] - side, extent[0] + side, extent[3])] * count
    rng = random.Random(f"{seed}-{scale}-{size}")
    out = []
    for _ in range(count):
        x = extent[0] + round(rng.uniform(0, extent[2] - extent[0] - side) / pixel) * pixel
        y = extent[1] + round(rng.uniform(0, extent[3] - extent[1] - side) / pixel) * pixel
        out.append((x, y, x + side, y + side))
    return out


def _bbox(box: Box) -> str:
    return ",".join(f"{v:.3f}" for v in box)


def livemosaic_path(case: Case, box: Box) -> str:
    """exportImage of the case's service (nearest neighbour, EPSG:3857 in and out)."""
    service = LM_SERVICES[case.layer]
    params = {
        "bbox": _bbox(box),
        "bboxSR": "3857",
        "imageSR": "3857",
        "size": f"{case.size},{case.size}",
        "format": "tiff" if case.fmt == "tif" else case.fmt,
        "interpolation": "RSP_NearestNeighbor",
        "f": "image",
    }
    if case.fmt == "tif":
        params["pixelType"] = "F32"
    return (
        f"/arcgis/rest/services/{LM_FOLDER}/{service}/ImageServer/exportImage?{urlencode(params)}"
    )


def mapserver_path(case: Case, box: Box) -> str:
    """WMS 1.1.1 GetMap of the case's layer (the output formats are in ``mapfile``)."""
    params = {
        "SERVICE": "WMS",
        "VERSION": "1.1.1",
        "REQUEST": "GetMap",
        "LAYERS": case.layer,
        "STYLES": "",
        "SRS": "EPSG:3857",
        "BBOX": _bbox(box),
        "WIDTH": str(case.size),
        "HEIGHT": str(case.size),
        "FORMAT": MIME[case.fmt],
    }
    return f"/mapserv?{urlencode(params)}"


def titiler_path(case: Case, box: Box, mosaics: dict[str, Path]) -> str:
    """The MosaicJSON bbox endpoint (nearest for both reading and reprojection)."""
    params = {
        "url": str(mosaics[case.layer]),
        "coord_crs": "EPSG:3857",
        "dst_crs": "EPSG:3857",
        "resampling": "nearest",
        "reproject": "nearest",
    }
    fmt = "jpeg" if case.fmt == "jpg" else case.fmt
    return f"/mosaic/bbox/{_bbox(box)}/{case.size}x{case.size}.{fmt}?{urlencode(params)}"


def request_path(server: str, case: Case, box: Box, mosaics: dict[str, Path]) -> str:
    """The path (and query) a server is asked for one bbox of a case."""
    if server == "livemosaic":
        return livemosaic_path(case, box)
    if server == "mapserver":
        return mapserver_path(case, box)
    if server == "titiler":
        return titiler_path(case, box, mosaics)
    raise ValueError(f"unknown server {server!r}")


def mapfile(extent: Box, indexes: dict[str, Path], keep_open: bool = True) -> str:
    """MapServer's map: one raster layer per GDAL tile index, nearest, WMS enabled.

    ``keep_open`` sets ``CLOSE_CONNECTION=DEFER`` (datasets stay open between requests of one
    FastCGI process). PNG is AGG's RGB PNG, JPEG quality 75 (livemosaic's default), the DEM
    a float32 GeoTIFF.
    """
    ext = " ".join(f"{v:.3f}" for v in extent)
    layers = []
    for name, index in indexes.items():
        processing = ['    PROCESSING "RESAMPLE=NEAREST"']
        if keep_open:
            processing.append('    PROCESSING "CLOSE_CONNECTION=DEFER"')
        layers.append(
            "\n".join(
                [
                    "  LAYER",
                    f'    NAME "{name}"',
                    "    TYPE RASTER",
                    "    STATUS ON",
                    f'    TILEINDEX "{index}"',
                    '    TILEITEM "location"',
                    *processing,
                    '    PROJECTION "init=epsg:3857" END',
                    f'    METADATA "wms_title" "{name}" "wms_srs" "EPSG:3857" END',
                    "  END",
                ]
            )
        )
    return "\n".join(
        [
            "MAP",
            '  NAME "bench"',
            f"  EXTENT {ext}",
            "  SIZE 512 512",
            "  MAXSIZE 8192",
            "  UNITS METERS",
            '  PROJECTION "init=epsg:3857" END',
            '  OUTPUTFORMAT NAME "png" DRIVER "AGG/PNG" MIMETYPE "image/png" '
            'IMAGEMODE RGB EXTENSION "png" END',
            '  OUTPUTFORMAT NAME "jpeg" DRIVER "AGG/JPEG" MIMETYPE "image/jpeg" '
            'IMAGEMODE RGB EXTENSION "jpg" FORMATOPTION "QUALITY=75" END',
            '  OUTPUTFORMAT NAME "tiff" DRIVER "GDAL/GTiff" MIMETYPE "image/tiff" '
            'IMAGEMODE FLOAT32 EXTENSION "tif" END',
            "  WEB",
            "    METADATA",
            '      "wms_title" "bench"',
            '      "wms_enable_request" "*"',
            '      "wms_srs" "EPSG:3857"',
            "    END",
            "  END",
            *layers,
            "END",
            "",
        ]
    )


def mapserver_config(map_path: Path) -> str:
    """MapServer 8's global configuration: the one map file, by ``MS_MAPFILE``."""
    return "\n".join(["CONFIG", "  ENV", f'    MS_MAPFILE "{map_path}"', "  END", "END", ""])


def nginx_conf(work: Path, port: int, socket: Path) -> str:
    """nginx in front of the FastCGI socket: one worker, no logs, /mapserv only."""
    params = [
        ("QUERY_STRING", "$query_string"),
        ("REQUEST_METHOD", "$request_method"),
        ("CONTENT_TYPE", "$content_type"),
        ("CONTENT_LENGTH", "$content_length"),
        ("SCRIPT_NAME", "$fastcgi_script_name"),
        ("REQUEST_URI", "$request_uri"),
        ("SERVER_PROTOCOL", "$server_protocol"),
        ("SERVER_NAME", "$server_name"),
        ("SERVER_PORT", "$server_port"),
        ("REMOTE_ADDR", "$remote_addr"),
        ("HTTP_HOST", "$http_host"),
    ]
    temp = "\n".join(
        f"  {kind}_temp_path {work / ('nginx-' + kind)};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    fastcgi = "\n".join(f"      fastcgi_param {k} {v};" for k, v in params)
    return f"""worker_processes 1;
daemon off;
pid {work / "nginx.pid"};
error_log {work / "nginx-error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  server {{
    listen 127.0.0.1:{port};
    location /mapserv {{
      fastcgi_pass unix:{socket};
      fastcgi_read_timeout 300s;
{fastcgi}
    }}
  }}
}}
"""


WRK_SCRIPT = """-- Cycle through the request paths in the file named by env WRK_PATHS (one per line);
-- each thread starts at its own offset. done() prints the figures as one JSON line.
local paths = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
  counter = id * 7
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "errors": %d, "status_errors": %d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
