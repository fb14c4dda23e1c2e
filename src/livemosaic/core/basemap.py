"""The live viewer's offline basemap: coastlines and borders drawn in a service's own CRS.

The lines (Natural Earth, public domain, shipped with the viewer) are longitude/latitude
polylines. :func:`basemap_near` keeps those near a service's extent and projects them into the
service's CRS with the :class:`~livemosaic.core.ports.Projector`, so that a map in any
projection (UTM, polar stereographic, …) gets its coastlines without the browser knowing the
projection. Points a projection cannot represent split a line instead of drawing across the map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from livemosaic.core.models import Extent
from livemosaic.core.ports import Projector
from livemosaic.errors import LiveMosaicError

GEOGRAPHIC = "EPSG:4326"
WORLD = Extent(-180.0, -90.0, 180.0, 90.0)
# around the service extent, how much more to draw (in extent widths/heights per side)
MARGIN = 1.0


@dataclass(frozen=True, slots=True)
class Polyline:
    """A line as flat ``[lon, lat, lon, lat, …]`` with its bounding box."""

    coords: tuple[float, ...]
    box: Extent

    @classmethod
    def of(cls, coords: Sequence[float]) -> Polyline:
        """A polyline from flat coordinates."""
        xs, ys = coords[0::2], coords[1::2]
        return cls(tuple(coords), Extent(min(xs), min(ys), max(xs), max(ys)))


@dataclass(frozen=True, slots=True)
class BaseLines:
    """The basemap's line layers, in longitude/latitude."""

    source: str
    layers: dict[str, tuple[Polyline, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> BaseLines:
        """From the shipped ``basemap.json`` (``source`` plus lists of flat lines per layer)."""
        layers: dict[str, tuple[Polyline, ...]] = {}
        for name, value in data.items():
            if name != "source" and isinstance(value, list):
                layers[name] = tuple(Polyline.of(line) for line in value if len(line) >= 4)
        return cls(str(data.get("source", "")), layers)


def _overlaps(a: Extent, b: Extent) -> bool:
    return a.xmin <= b.xmax and b.xmin <= a.xmax and a.ymin <= b.ymax and b.ymin <= a.ymax


def area_of_interest(extent: Extent | None, crs: str, projector: Projector) -> Extent:
    """The longitude/latitude box to draw for a service extent: the extent with a margin of
    one extent each side, the whole world when the extent is unknown or cannot be mapped."""
    if extent is None or not extent.is_valid():
        return WORLD
    try:
        box = projector.transform_extent(extent, crs, GEOGRAPHIC)
    except LiveMosaicError:  # a CRS that cannot be mapped to longitude/latitude: draw all
        return WORLD
    if not box.is_valid():
        return WORLD
    dx, dy = box.width * MARGIN, box.height * MARGIN
    return Extent(
        max(-180.0, box.xmin - dx),
        max(-90.0, box.ymin - dy),
        min(180.0, box.xmax + dx),
        min(90.0, box.ymax + dy),
    )


def _inside(x: float, y: float, area: Extent) -> bool:
    return area.xmin <= x <= area.xmax and area.ymin <= y <= area.ymax


def clip(polyline: Polyline, area: Extent) -> list[Polyline]:
    """The runs of a line inside ``area``, each with the points just outside its ends (so the
    line reaches the edge); far-away points, which a local projection distorts, are dropped."""
    coords = polyline.coords
    count = len(coords) // 2
    keep = [_inside(coords[2 * i], coords[2 * i + 1], area) for i in range(count)]
    near = [keep[i] or (i > 0 and keep[i - 1]) or (i + 1 < count and keep[i + 1])
            for i in range(count)]  # fmt: skip
    runs: list[Polyline] = []
    start = None
    for i in range(count + 1):
        if i < count and near[i]:
            start = i if start is None else start
            continue
        if start is not None and i - start >= 2:
            runs.append(Polyline.of(coords[2 * start : 2 * i]))
        start = None
    return runs


def basemap_near(
    lines: BaseLines, area: Extent, crs: str, projector: Projector
) -> dict[str, list[list[list[float]]]]:
    """Each layer's lines inside ``area`` (lon/lat, see :func:`clip`), projected into ``crs``:
    per layer a list of lines, each a list of ``[x, y]``. Lines are split where a point does
    not project."""
    out: dict[str, list[list[list[float]]]] = {}
    for name, polylines in lines.layers.items():
        chosen = [run for p in polylines if _overlaps(p.box, area) for run in clip(p, area)]
        xs = [x for p in chosen for x in p.coords[0::2]]
        ys = [y for p in chosen for y in p.coords[1::2]]
        if crs.upper() != GEOGRAPHIC and xs:
            xs, ys = projector.transform_points(xs, ys, GEOGRAPHIC, crs)
        projected: list[list[list[float]]] = []
        start = 0
        for polyline in chosen:
            count = len(polyline.coords) // 2
            run: list[list[float]] = []
            for x, y in zip(xs[start : start + count], ys[start : start + count], strict=True):
                if math.isfinite(x) and math.isfinite(y):
                    run.append([round(x, 3), round(y, 3)])
                    continue
                if len(run) >= 2:
                    projected.append(run)
                run = []
            if len(run) >= 2:
                projected.append(run)
            start += count
        out[name] = projected
    return out


__all__ = ["BaseLines", "Polyline", "WORLD", "area_of_interest", "basemap_near", "clip"]
