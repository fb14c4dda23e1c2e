"""ArcGIS geometries (spec 7.2): parsing, reprojection and the clockwise wire form of rings.

``parse_geometry`` accepts the JSON forms and the simple ``x,y`` / ``xmin,ymin,xmax,ymax``
forms; envelopes are read (corners in any order) by :mod:`livemosaic.rest.envelopes`. The
plane geometry (footprint tests, densifying, sample grids) is :mod:`livemosaic.core.planar`'s;
its names are re-exported here for the REST modules.
"""

from __future__ import annotations

import math
from typing import Any, Literal, cast

from livemosaic.core.models import Geometry
from livemosaic.core.planar import (
    Point,
    Ring,
    area_samples,
    densify_path,
    densify_ring,
    intersects_footprint,
    point_in_polygon,
    point_in_ring,
    segments_intersect,
    signed_area,
)
from livemosaic.core.ports import Projector
from livemosaic.errors import InvalidParameter
from livemosaic.rest.envelopes import envelope_from_json, envelope_from_text
from livemosaic.rest.params import parse_json, split_numbers, sr_from_json

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


# --- wire form ----------------------------------------------------------------------------


def clockwise(ring: Ring) -> list[list[float]]:
    """The ring as JSON coordinates in clockwise order (ArcGIS outer-ring rule), closed."""
    pts = [(float(x), float(y)) for x, y in ring]
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])
    if signed_area(pts) > 0:
        pts.reverse()
    return [[x, y] for x, y in pts]


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
