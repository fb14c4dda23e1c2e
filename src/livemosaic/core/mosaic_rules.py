"""Mosaic rules: which catalog items take part in a request and in what priority.

``MosaicRule`` is the parsed ``mosaicRule`` (spec 7.4); ``order_items`` sorts candidate items
by the method (7.4.2) and ``MosaicRule.operation`` says how overlapping valid pixels combine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from livemosaic.core.fields import CATALOG_FIELDS, item_attributes, resolve_field
from livemosaic.core.models import DatasetSummary, Extent, RasterItem, ServiceDefinition
from livemosaic.core.planar import point_in_ring
from livemosaic.core.ports import DimensionFilter, ItemQuery
from livemosaic.core.rendering import RenderingRule
from livemosaic.core.where import parse_date
from livemosaic.core.where_ast import And, Compare, Condition, Const, Field, IsNull, Literal_

MosaicMethod = Literal[
    "None", "Center", "Nadir", "Viewpoint", "Attribute", "LockRaster", "Northwest", "Seamline"
]
MosaicOperation = Literal["First", "Last", "Min", "Max", "Mean", "Blend", "Sum"]

# ArcGIS wire names <-> domain names
METHOD_BY_WIRE: dict[str, MosaicMethod] = {
    "esrimosaicnone": "None",
    "esrimosaiccenter": "Center",
    "esrimosaicnadir": "Nadir",
    "esrimosaicviewpoint": "Viewpoint",
    "esrimosaicattribute": "Attribute",
    "esrimosaiclockraster": "LockRaster",
    "esrimosaicnorthwest": "Northwest",
    "esrimosaicseamline": "Seamline",
}
# names used in allowedMosaicMethods / defaultMosaicMethod
METHOD_BY_SERVICE_NAME: dict[str, MosaicMethod] = {
    "none": "None",
    "center": "Center",
    "nadir": "Nadir",
    "viewpoint": "Viewpoint",
    "byattribute": "Attribute",
    "lockraster": "LockRaster",
    "northwest": "Northwest",
    "seamline": "Seamline",
}
OPERATION_BY_WIRE: dict[str, MosaicOperation] = {
    "mt_first": "First",
    "mt_last": "Last",
    "mt_min": "Min",
    "mt_max": "Max",
    "mt_mean": "Mean",
    "mt_blend": "Blend",
    "mt_sum": "Sum",
}


@dataclass(frozen=True, slots=True)
class MosaicRule:
    """A parsed mosaic rule.

    ``sort_value`` for date fields is epoch ms. ``viewpoint`` is in the dataset CRS.
    """

    method: MosaicMethod = "Northwest"
    where: Condition | None = None
    sort_field: str | None = None
    sort_value: float | None = None
    ascending: bool = True
    lock_raster_ids: tuple[int, ...] = ()
    fids: tuple[int, ...] | None = None
    viewpoint: tuple[float, float] | None = None
    operation: MosaicOperation = "First"
    dimensions: tuple[DimensionFilter, ...] = ()
    item_rendering_rule: RenderingRule | None = None  # run on each item before mosaicking


# --- defaults from the service definition ----------------------------------------------------


def method_from_name(name: str | None, default: MosaicMethod = "Northwest") -> MosaicMethod:
    """A mosaic method from a service name (``ByAttribute``) or wire name (``esriMosaicCenter``)."""
    if not name:
        return default
    key = name.strip().lower()
    return METHOD_BY_SERVICE_NAME.get(key) or METHOD_BY_WIRE.get(key) or default


def operation_from_name(name: str | None, default: MosaicOperation = "First") -> MosaicOperation:
    """A mosaic operation from ``MT_FIRST`` or ``First`` (any case)."""
    if not name:
        return default
    key = name.strip().lower()
    if not key.startswith("mt_"):
        key = "mt_" + key
    return OPERATION_BY_WIRE.get(key, default)


def parse_sort_value(value: object) -> float | None:
    """A sortValue as a number: numbers as-is, dates as epoch ms (UTC).

    Dates are read by :func:`livemosaic.core.where.parse_date`, the one date parser of the
    REST API (``yyyy/mm/dd [hh:mm:ss]``, ISO 8601 with ``Z`` or an offset, US dates).

    Returns None for empty input; raises ValueError for text that is neither.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"sortValue {str(value)[:40]!r} is neither a number nor a date")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"sortValue {str(value)[:40]} is out of range") from None
    text = value.strip().strip("'\"")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    moment = parse_date(text)
    if moment is not None:
        return float(moment)
    raise ValueError(f"sortValue {value!r} is neither a number nor a date like 2024/09/12")


def default_mosaic_rule(definition: ServiceDefinition) -> MosaicRule:
    """The rule used when a request has no mosaicRule: the service's admin properties.

    ``defaultMosaicMethod`` (default Northwest), ``mosaicOperator`` (default First),
    ``sortField``, ``sortValue`` and ``sortAscending`` (typed service properties).
    """
    from livemosaic.core.service_properties import service_properties  # imports this module

    props = service_properties(definition)
    return MosaicRule(
        method=props.default_mosaic_method,
        sort_field=props.sort_field,
        sort_value=props.sort_value,
        ascending=props.sort_ascending,
        operation=props.mosaic_operator,
    )


def mosaic_item_cap(definition: ServiceDefinition, limit: int) -> int:
    """At most this many items take part: ``limit``, lowered by ``maxMosaicImageCount``."""
    from livemosaic.core.service_properties import lower_limit, service_properties

    return lower_limit(service_properties(definition).max_mosaic_image_count, limit)


def _has_where(rule: MosaicRule) -> bool:
    return rule.where is not None and not (isinstance(rule.where, Const) and rule.where.value)


def effective_dimensions(
    rule: MosaicRule,
    summary: DatasetSummary,
    definition: ServiceDefinition,
    *,
    time_given: bool,
    probe: Callable[[tuple[DimensionFilter, ...]], RasterItem | None] | None = None,
) -> tuple[DimensionFilter, ...]:
    """Dimension filters of a request, completed so a multidimensional service draws one slice.

    Like ArcGIS: without a multidimensional definition (and without where, fids or lock ids)
    the default variable (``defaultVariable`` or the first one) at the first value of each of
    its dimensions is drawn. When the filters name exactly one variable, its dimensions the
    filters leave open are set to their first value. ``StdTime`` is left open when the
    request has a ``time`` (items intersecting it are eligible).

    Dimensions need not combine freely (a GRIB ``StdZ`` of 2 m exists only for the level type
    "height above ground"): with ``probe`` (the first item matching some filters, or None),
    when no item has every first value, the open dimensions take the values of the first item
    matching the given filters instead.
    """
    if not summary.variables:
        return rule.dimensions
    by_name = {v.name.lower(): v for v in summary.variables}
    if not rule.dimensions:
        if _has_where(rule) or rule.fids or rule.method == "LockRaster":
            return ()
        from livemosaic.core.service_properties import service_properties

        wanted = (service_properties(definition).default_variable or "").lower()
        variable = by_name.get(wanted, summary.variables[0])
        out: list[DimensionFilter] = [DimensionFilter(variable.name, None)]
    else:
        named = {f.variable.lower() for f in rule.dimensions if f.variable}
        if len(named) != 1 or next(iter(named)) not in by_name:
            return rule.dimensions
        variable = by_name[next(iter(named))]
        out = list(rule.dimensions)
    constrained = {
        (f.dimension or "").lower()
        for f in out
        if f.dimension and (not f.variable or f.variable.lower() == variable.name.lower())
    }
    given = tuple(out)
    opened = [
        dim
        for dim in variable.dimensions
        if dim.name.lower() not in constrained
        and dim.values
        and not (time_given and dim.name.lower() == "stdtime")
    ]
    out.extend(DimensionFilter(variable.name, d.name, (d.values[0],)) for d in opened)
    if probe is None or not opened or probe(tuple(out)) is not None:
        return tuple(out)
    first = probe(given)
    if first is None:
        return tuple(out)
    completed = list(given)
    for dim in opened:
        value = first.time if dim.name.lower() == "stdtime" else first.dimensions.get(dim.name)
        if value is not None:
            completed.append(DimensionFilter(variable.name, dim.name, (float(value),)))
    return tuple(completed)


# --- item priority -------------------------------------------------------------------------


def filter_by_resolution(items: Sequence[RasterItem], pixel_size: float) -> list[RasterItem]:
    """Items whose MinPS..MaxPS range holds the request pixel size — softly.

    ArcGIS hides items outside their pixel-size range. livemosaic applies only the MaxPS
    bound (MinPS is always 0) and, when that would leave nothing, keeps every item: a small
    demo must never render blank just because the view is zoomed out past the overviews.
    """
    kept = [it for it in items if fits_resolution(it, pixel_size)]
    return kept or list(items)


def fits_resolution(item: RasterItem, pixel_size: float) -> bool:
    """True when an item may draw at this pixel size (its MaxPS bound; any size not > 0 fits)."""
    if not (pixel_size > 0 and math.isfinite(pixel_size)):
        return True
    return item.max_ps <= 0 or pixel_size <= item.max_ps * (1 + 1e-9)


def item_contains_point(item: RasterItem, x: float, y: float) -> bool:
    """True when (x, y) lies in the item's extent and, for non-rectangular footprints, inside
    the footprint ring (a point on an edge is inside, as everywhere: core.planar)."""
    ext = item.extent
    if not (ext.xmin <= x <= ext.xmax and ext.ymin <= y <= ext.ymax):
        return False
    ring = item.footprint
    corners = {
        (ext.xmin, ext.ymin),
        (ext.xmin, ext.ymax),
        (ext.xmax, ext.ymin),
        (ext.xmax, ext.ymax),
    }
    if len(ring) < 4 or {(p[0], p[1]) for p in ring} == corners:
        return True
    return point_in_ring(x, y, ring)


def _oid(item: RasterItem) -> int:
    return item.id if item.id is not None else -1


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, str):
        try:
            return parse_sort_value(value)
        except ValueError:
            return None
    return None


def attribute_value(item: RasterItem, field_name: str) -> float | None:
    """A numeric value of a catalog field (dates as epoch ms) or user attribute; None if absent."""
    known = resolve_field(field_name)
    if known is not None:
        return _number(item_attributes(item).get(known.name))
    wanted = field_name.strip().strip('"').lower()
    for key, value in item.attributes.items():
        if key.lower() == wanted:
            return _number(value)
    return None


# catalog field types whose stored values order like ``attribute_value`` (numbers, dates)
_NUMERIC_FIELD_TYPES = frozenset(
    {"esriFieldTypeOID", "esriFieldTypeInteger", "esriFieldTypeDouble", "esriFieldTypeDate"}
)


def sortable_fields() -> tuple[str, ...]:
    """The catalog fields ByAttribute can order by: number and date fields (as in ArcGIS)."""
    return tuple(f.name for f in CATALOG_FIELDS if f.type in _NUMERIC_FIELD_TYPES)


def sort_field_problem(name: str | None) -> str | None:
    """Why ``name`` cannot be a ByAttribute sort field, or None when it can.

    ArcGIS orders ByAttribute by ``abs(value - sortValue)``, which only numeric and date
    fields have: a text field of the catalog is refused rather than silently ignored. Names
    that are not catalog fields are item attributes, ordered by their numeric values.
    """
    known = resolve_field(name) if name and name.strip() else None
    if known is None or known.type in _NUMERIC_FIELD_TYPES:
        return None
    return (
        f"sortField {known.name} is a text field; ByAttribute orders by the distance of a "
        "number or date to sortValue. Use one of: " + ", ".join(sortable_fields()) + "."
    )


def catalog_sort_field(name: str | None) -> str | None:
    """The catalog field an Attribute order can be asked of the catalog by (a number or date
    field, canonical name); None for text fields and item attributes, which only
    ``order_items`` can order."""
    known = resolve_field(name) if name else None
    return known.name if known is not None and known.type in _NUMERIC_FIELD_TYPES else None


def and_where(where: Condition | None, extra: Condition) -> Condition:
    """``where AND extra`` (just ``extra`` without a where)."""
    return extra if where is None else And((where, extra))


def attribute_queries(base: ItemQuery, rule: MosaicRule, limit: int) -> list[ItemQuery] | None:
    """Catalog queries that together hold the first ``limit`` items of an Attribute order.

    Without a sort value: one query ordered by the field. With one: items with
    ``field >= sortValue`` and items with ``field < sortValue``, each ordered from the sort
    value outwards (inwards for ``ascending=False``) and cut at ``limit``; the first
    ``limit`` by ``abs(field - sortValue)`` (ties to the lower OBJECTID) are among their
    union, which is exact. Items without a value come last (see :func:`missing_value_query`).
    Without a sort field (or with a sort value that is not finite) every item lacks a value:
    OBJECTID order. None when the sort field is not a number or date field of the catalog.
    """
    no_value = rule.sort_value is not None and not math.isfinite(rule.sort_value)
    if not (rule.sort_field or "").strip() or no_value:
        return [replace(base, order_by=(("OBJECTID", True),), limit=limit)]
    name = catalog_sort_field(rule.sort_field)
    if name is None:
        return None
    if rule.sort_value is None:
        return [replace(base, order_by=((name, rule.ascending),), limit=limit)]
    field, value = Field(name), Literal_(rule.sort_value)
    return [
        replace(
            base,
            where=and_where(base.where, Compare(">=", field, value)),
            order_by=((name, rule.ascending),),
            limit=limit,
        ),
        replace(
            base,
            where=and_where(base.where, Compare("<", field, value)),
            order_by=((name, not rule.ascending),),
            limit=limit,
        ),
    ]


def missing_value_query(base: ItemQuery, rule: MosaicRule, limit: int) -> ItemQuery | None:
    """The items of an Attribute order without a value (they come last, by OBJECTID); None
    when :func:`attribute_queries` asks for every item already (OBJECTID order)."""
    name = catalog_sort_field(rule.sort_field)
    no_value = rule.sort_value is not None and not math.isfinite(rule.sort_value)
    if name is None or no_value or not (rule.sort_field or "").strip():
        return None
    return replace(base, where=and_where(base.where, IsNull(Field(name))), limit=limit)


def _distance(item: RasterItem, point: tuple[float, float]) -> float:
    cx, cy = item.extent.center
    return math.hypot(cx - point[0], cy - point[1])


def order_items(
    items: Sequence[RasterItem],
    rule: MosaicRule,
    view_center: tuple[float, float],
    nw_corner: tuple[float, float] | None = None,
) -> list[RasterItem]:
    """Items in mosaic priority order (highest first) per the rule's method (spec 7.4.2).

    Distances are between item extent centres and a point, in the dataset CRS: the view
    centre (Center, Nadir — no nadir is stored), ``rule.viewpoint`` (Viewpoint; the view
    centre when absent) or the north-west corner of the dataset extent (Northwest,
    Seamline; ``nw_corner`` or the items' own when None). Attribute sorts by
    ``abs(value - sort_value)`` (by the value itself without a sort value); items without
    a value come last. LockRaster keeps only ``lock_raster_ids``, in that order.
    ``ascending=False`` reverses the order; ties always go to the lower OBJECTID.
    """
    method = rule.method
    if method == "LockRaster":
        pos: dict[int, int] = {}
        for i, oid in enumerate(rule.lock_raster_ids):
            pos.setdefault(oid, i)
        chosen = sorted((it for it in items if _oid(it) in pos), key=lambda it: pos[_oid(it)])
        return chosen if rule.ascending else chosen[::-1]

    key: Callable[[RasterItem], float | None]
    if method == "None":
        key = lambda it: float(_oid(it))  # noqa: E731
    elif method in ("Center", "Nadir"):
        key = lambda it: _distance(it, view_center)  # noqa: E731
    elif method == "Viewpoint":
        point = rule.viewpoint or view_center
        key = lambda it: _distance(it, point)  # noqa: E731
    elif method == "Attribute":
        field_name = rule.sort_field or ""
        base = rule.sort_value

        def key(it: RasterItem) -> float | None:
            value = attribute_value(it, field_name) if field_name else None
            if value is None:
                return None
            return value if base is None else abs(value - base)

    else:  # Northwest, Seamline
        corner = nw_corner
        if corner is None:
            ext = Extent.union_all(it.extent for it in items)
            corner = (ext.xmin, ext.ymax) if ext is not None else view_center
        nw = corner
        key = lambda it: _distance(it, nw)  # noqa: E731

    sign = 1.0 if rule.ascending else -1.0
    present: list[tuple[float, int, RasterItem]] = []
    missing: list[RasterItem] = []
    for it in items:
        k = key(it)
        if k is None or not math.isfinite(k):
            missing.append(it)
        else:
            present.append((sign * k, _oid(it), it))
    present.sort(key=lambda p: (p[0], p[1]))
    missing.sort(key=_oid)
    return [p[2] for p in present] + missing
