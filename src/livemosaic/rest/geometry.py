"""ArcGIS geometries (spec 7.2): parsing, reprojection and the plane geometry the REST layer needs.

``parse_geometry`` accepts the JSON forms and the simple ``x,y`` / ``xmin,ymin,xmax,ymax``
forms; envelopes are read (corners in any order) by :mod:`livemosaic.rest.envelopes`. The helpers test footprints against query geometries, densify polylines for
getSamples and lay sample grids over areas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, cast

from livemosaic.core.models import Extent, Geometry
from livemosaic.core.ports import Projector
from livemosaic.errors import InvalidParameter
from livemosaic.rest.envelopes import envelope_from_json, envelope_from_text
from livemosaic.rest.params import parse_json, split_numbers, sr_from_json

Point = tuple[float, float]
Ring = Sequence[Point]
GeometryKind = Literal["point", "multipoint", "polyline", "polygon", "envelope"]

GEOMETRY_TYPES: dict[str, GeometryKind] = {
    "esrigeometrypoint": "point",
    "esrigeometrymultipoint": "multipoint",
    "esrigeometrypolyline": "polyline",
    "esrigeometrypolygon": "polygon",
    "esrigeometryenvelope": "envelope",
}
GEOMETRY_ACCEPTED = (
    'a point {"x":..,"y":..}, multipoint {"points":[[x,y],..]}, polyline {"paths":[[[x,y],..]]}, '
    'polygon {"rings":[[[x,y],..]]} or envelope {"xmin":..,"ymin":..,"xmax":..,"ymax":..} '
    "(optionally with spatialReference), or the simple forms x,y and xmin,ymin,xmax,ymax"
)


def parse_geometry_type(text: str | None, name: str = "geometryType") -> GeometryKind | None:
    """``esriGeometryPoint`` … ``esriGeometryEnvelope`` (case-insensitive)."""
    if text is None:
        return None
    kind = GEOMETRY_TYPES.get(text.strip().lower())
    if kind is None:
        raise InvalidParameter(
            name,
            f"'{text[:40]}' is not a geometry type.",
            accepted="esriGeometryPoint, esriGeometryMultipoint, esriGeometryPolyline, "
            "esriGeometryPolygon or esriGeometryEnvelope",
        )
    return kind


def _coord(value: Any, name: str) -> Point:
    if (
        not isinstance(value, list | tuple)
        or len(value) < 2
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value[:2])
    ):
        raise InvalidParameter(
            name, "a coordinate must be [x, y] numbers.", accepted=GEOMETRY_ACCEPTED
        )
    x, y = float(value[0]), float(value[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidParameter(name, "coordinates must be finite.", accepted=GEOMETRY_ACCEPTED)
    return x, y


def _part(value: Any, name: str, minimum: int) -> tuple[Point, ...]:
    if not isinstance(value, list) or len(value) < minimum:
        raise InvalidParameter(
            name, f"each part needs at least {minimum} coordinates.", accepted=GEOMETRY_ACCEPTED
        )
    return tuple(_coord(c, name) for c in value)


def _parts(value: Any, name: str, minimum: int) -> tuple[tuple[Point, ...], ...]:
    if not isinstance(value, list) or not value:
        raise InvalidParameter(name, "the geometry has no parts.", accepted=GEOMETRY_ACCEPTED)
    return tuple(_part(p, name, minimum) for p in value)


def geometry_from_json(value: Any, name: str) -> Geometry:
    """A Geometry from decoded ArcGIS JSON (its kind follows from its keys)."""
    if not isinstance(value, dict):
        raise InvalidParameter(
            name, "a geometry must be a JSON object.", accepted=GEOMETRY_ACCEPTED
        )
    obj = {str(k).lower(): v for k, v in value.items()}
    sr = sr_from_json(obj["spatialreference"], name) if obj.get("spatialreference") else None
    if "rings" in obj:
        rings = tuple(_close(r) for r in _parts(obj["rings"], name, 3))
        return Geometry("polygon", rings, sr)
    if "paths" in obj:
        return Geometry("polyline", _parts(obj["paths"], name, 1), sr)
    if "points" in obj:
        return Geometry("multipoint", (_part(obj["points"], name, 1),), sr)
    if "xmin" in obj:
        ext, env_sr = envelope_from_json(value, name, GEOMETRY_ACCEPTED)
        return Geometry.from_extent(ext, env_sr)
    if "x" in obj and "y" in obj:
        return Geometry("point", ((_coord([obj["x"], obj["y"]], name),),), sr)
    raise InvalidParameter(name, "the JSON object is not a geometry.", accepted=GEOMETRY_ACCEPTED)


def _close(ring: tuple[Point, ...]) -> tuple[Point, ...]:
    return ring if ring[0] == ring[-1] else (*ring, ring[0])


def parse_geometry(
    text: str | None, kind: GeometryKind | None, name: str = "geometry"
) -> Geometry | None:
    """A geometry from JSON text or the simple ``x,y`` / ``xmin,ymin,xmax,ymax`` forms."""
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        return geometry_from_json(parse_json(text, name, GEOMETRY_ACCEPTED), name)
    values = split_numbers(text, name, GEOMETRY_ACCEPTED)
    if len(values) == 2 and kind in (None, "point", "multipoint"):
        point = (values[0], values[1])
        return Geometry("multipoint" if kind == "multipoint" else "point", ((point,),))
    if len(values) == 4 and kind in (None, "envelope", "polygon"):
        return Geometry.from_extent(envelope_from_text(text, name, GEOMETRY_ACCEPTED))
    raise InvalidParameter(
        name, f"{len(values)} numbers do not form a geometry.", accepted=GEOMETRY_ACCEPTED
    )


# --- reprojection --------------------------------------------------------------------------


def densify_ring(ring: Ring, steps: int = 16) -> list[Point]:
    """A ring with ``steps`` points per edge, so that reprojected edges follow curves."""
    out: list[Point] = []
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        for i in range(steps):
            t = i / steps
            out.append((x1 + (x2 - x1) * t, y1 + (y2 - y1) * t))
    x, y = ring[-1]
    out.append((x, y))
    return out


def transform_geometry(projector: Projector, geom: Geometry, src: str, dst: str) -> Geometry:
    """The geometry in ``dst`` (envelopes become densified polygons); unchanged if src == dst."""
    if src == dst:
        return geom
    parts = geom.parts
    kind = geom.kind
    if kind == "envelope":
        parts = (tuple(densify_ring(parts[0])),)
        kind = "polygon"
    out: list[tuple[Point, ...]] = []
    for part in parts:
        xs, ys = projector.transform_points([p[0] for p in part], [p[1] for p in part], src, dst)
        pts = tuple(
            (x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)
        )
        if pts:
            out.append(pts)
    if not out:
        raise InvalidParameter(
            "geometry", "the geometry lies outside the area the service's spatial reference covers."
        )
    return Geometry(cast(GeometryKind, kind), tuple(out), geom.sr)


# --- plane geometry -------------------------------------------------------------------------


def signed_area(ring: Ring) -> float:
    """Shoelace area: positive for counter-clockwise rings (y up)."""
    area = 0.0
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        area += x1 * y2 - x2 * y1
    return area / 2.0


def clockwise(ring: Ring) -> list[list[float]]:
    """The ring as JSON coordinates in clockwise order (ArcGIS outer-ring rule), closed."""
    pts = [(float(x), float(y)) for x, y in ring]
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])
    if signed_area(pts) > 0:
        pts.reverse()
    return [[x, y] for x, y in pts]


def point_in_ring(x: float, y: float, ring: Ring) -> bool:
    """Even-odd test of a point against one closed ring (points on an edge count as inside)."""
    inside = False
    n = len(ring)
    for i in range(n - 1):
        (x1, y1), (x2, y2) = ring[i], ring[i + 1]
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        if (y1 > y) != (y2 > y):
            xcross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < xcross:
                inside = not inside
    return inside


def point_in_polygon(x: float, y: float, rings: Sequence[Ring]) -> bool:
    """Even-odd over all rings (holes excluded)."""
    count = sum(1 for ring in rings if point_in_ring(x, y, ring))
    return count % 2 == 1


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    scale = max(abs(x2 - x1), abs(y2 - y1), 1e-12)
    if abs(cross) > 1e-9 * scale * scale:
        return False
    return (
        min(x1, x2) - 1e-12 <= x <= max(x1, x2) + 1e-12
        and min(y1, y2) - 1e-12 <= y <= max(y1, y2) + 1e-12
    )


def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when two closed segments share a point."""
    d1 = _orient(*q1, *q2, *p1)
    d2 = _orient(*q1, *q2, *p2)
    d3 = _orient(*p1, *p2, *q1)
    d4 = _orient(*p1, *p2, *q2)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and d1 and d2 and d3 and d4:
        return True
    return (
        _on_segment(*p1, *q1, *q2)
        or _on_segment(*p2, *q1, *q2)
        or _on_segment(*q1, *p1, *p2)
        or _on_segment(*q2, *p1, *p2)
    )


def _edges(parts: Sequence[Ring]) -> list[tuple[Point, Point]]:
    return [(a, b) for part in parts for a, b in zip(part, part[1:], strict=False)]


def _bbox(points: Sequence[Point]) -> Extent:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return Extent(min(xs), min(ys), max(xs), max(ys))


def intersects_footprint(geom: Geometry, footprint: Ring) -> bool:
    """True when a geometry (in the footprint's CRS) touches a footprint polygon."""
    if not footprint:
        return False
    fp_box = _bbox(footprint)
    if not fp_box.intersects(geom.bbox):
        return False
    if geom.kind in ("point", "multipoint"):
        return any(point_in_ring(x, y, footprint) for part in geom.parts for x, y in part)
    rings = [footprint]
    if any(point_in_ring(x, y, footprint) for part in geom.parts for x, y in part):
        return True
    if geom.kind in ("polygon", "envelope"):
        poly = geom.parts
        if any(point_in_polygon(x, y, poly) for x, y in footprint):
            return True
    edges_fp = _edges(rings)
    for a, b in _edges(geom.parts):
        for c, d in edges_fp:
            if segments_intersect(a, b, c, d):
                return True
    return False


# --- sampling ---------------------------------------------------------------------------------


def densify_path(
    path: Ring, *, distance: float | None = None, count: int | None = None
) -> list[Point]:
    """Points along a path: every ``distance`` units, or ``count`` evenly spaced points.

    Both ends are always included; without either option the vertices are returned.
    """
    pts = [(float(x), float(y)) for x, y in path]
    if len(pts) < 2 or (distance is None and count is None):
        return pts
    lengths = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(pts, pts[1:], strict=False)]
    total = sum(lengths)
    if total == 0:
        return [pts[0]]
    if count is not None:
        if count <= 1:
            return [pts[0]]
        stations = [total * i / (count - 1) for i in range(count)]
    else:
        step = cast(float, distance)
        n = int(math.floor(total / step + 1e-9))
        stations = [step * i for i in range(n + 1)]
        if total - stations[-1] > 1e-9 * total:
            stations.append(total)
    out: list[Point] = []
    seg = 0
    start = 0.0
    for s in stations:
        while seg < len(lengths) - 1 and s > start + lengths[seg]:
            start += lengths[seg]
            seg += 1
        a, b = pts[seg], pts[seg + 1]
        t = 0.0 if lengths[seg] == 0 else min(1.0, max(0.0, (s - start) / lengths[seg]))
        out.append((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))
    return out


def area_samples(geom: Geometry, count: int) -> list[Point]:
    """About ``count`` points on a regular grid over an area (cell centres inside the polygon)."""
    box = geom.bbox
    if box.width <= 0 or box.height <= 0 or count < 1:
        return [box.center]
    aspect = box.width / box.height
    # at most ``count`` columns and rows, however thin the area (1e30 x 1 must not loop forever)
    cols = max(1, min(count, round(math.sqrt(count * min(aspect, float(count))))))
    rows = max(1, min(count, math.ceil(count / cols)))
    pts: list[Point] = []
    for r in range(rows):
        y = box.ymax - (r + 0.5) * box.height / rows
        for c in range(cols):
            x = box.xmin + (c + 0.5) * box.width / cols
            if geom.kind == "envelope" or point_in_polygon(x, y, geom.parts):
                pts.append((x, y))
    return pts[:count]


__all__ = [
    "GEOMETRY_TYPES",
    "area_samples",
    "clockwise",
    "densify_path",
    "densify_ring",
    "geometry_from_json",
    "intersects_footprint",
    "parse_geometry",
    "parse_geometry_type",
    "point_in_polygon",
    "point_in_ring",
    "segments_intersect",
    "signed_area",
    "transform_geometry",
]
