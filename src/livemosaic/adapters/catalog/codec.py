"""JSON forms of domain values for catalog storage.

Every ``*_to_json`` returns plain dicts, lists, strings, numbers, booleans and None (NaN and
infinities become None), so ``json.dumps(..., allow_nan=False)`` always succeeds; every
``*_from_json`` rebuilds the frozen dataclass. These are storage forms, not ArcGIS JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from livemosaic.core.models import (
    BandStats,
    DatasetSummary,
    DimensionSummary,
    Extent,
    MosaicDataset,
    PixelType,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
    VariableSummary,
)


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf → None, tuples → lists, mappings → dicts, others → str."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return json_safe(item())
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON text of ``json_safe(value)``."""
    try:  # fast path: plain finite values need no copy
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(json_safe(value), separators=(",", ":"), allow_nan=False)


def _num(value: Any) -> float:
    """A stored number, with None (a stored NaN) back to NaN."""
    return math.nan if value is None else float(value)


def _opt_num(value: Any) -> float | None:
    return None if value is None else float(value)


def float_to_text(value: float | None) -> str | None:
    """A float as exact text that keeps NaN and infinities (for nodata values)."""
    return None if value is None else repr(float(value))


def float_from_text(text: str | None) -> float | None:
    """The inverse of :func:`float_to_text`."""
    return None if text is None else float(text)


def extent_to_json(extent: Extent | None) -> list[float | None] | None:
    """``[xmin, ymin, xmax, ymax]``."""
    if extent is None:
        return None
    return cast(list[float | None], json_safe([extent.xmin, extent.ymin, extent.xmax, extent.ymax]))


def extent_from_json(data: Sequence[Any] | None) -> Extent | None:
    """The inverse of :func:`extent_to_json`."""
    if data is None:
        return None
    return Extent(_num(data[0]), _num(data[1]), _num(data[2]), _num(data[3]))


def stats_to_json(stats: Sequence[BandStats]) -> list[dict[str, Any]]:
    """Band statistics as a list of dicts."""
    return [
        json_safe({"min": s.min, "max": s.max, "mean": s.mean, "std": s.std, "count": s.count})
        for s in stats
    ]


def band_stats_from_json(data: Mapping[str, Any]) -> BandStats:
    """One band's statistics from its dict."""
    return BandStats(
        _num(data.get("min")),
        _num(data.get("max")),
        _num(data.get("mean")),
        _num(data.get("std")),
        int(data.get("count") or 0),
    )


def stats_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[BandStats, ...]:
    """The inverse of :func:`stats_to_json`."""
    return tuple(band_stats_from_json(d) for d in data)


def footprint_to_json(ring: Sequence[tuple[float, float]]) -> list[list[float]]:
    """A footprint ring as ``[[x, y], …]``."""
    return [[float(x), float(y)] for x, y in ring]


def footprint_from_json(data: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """The inverse of :func:`footprint_to_json`."""
    return tuple((float(p[0]), float(p[1])) for p in data)


def dimension_to_json(dim: DimensionSummary) -> dict[str, Any]:
    """A dimension summary as a dict."""
    return {
        "name": dim.name,
        "values": json_safe(list(dim.values)),
        "unit": dim.unit,
        "description": dim.description,
    }


def dimension_from_json(data: Mapping[str, Any]) -> DimensionSummary:
    """The inverse of :func:`dimension_to_json`."""
    return DimensionSummary(
        name=str(data["name"]),
        values=tuple(_num(v) for v in data.get("values", ())),
        unit=str(data.get("unit", "")),
        description=str(data.get("description", "")),
    )


def variable_to_json(var: VariableSummary) -> dict[str, Any]:
    """A variable summary as a dict."""
    return {
        "name": var.name,
        "dimensions": [dimension_to_json(d) for d in var.dimensions],
        "unit": var.unit,
        "description": var.description,
        "stats": stats_to_json([var.stats])[0] if var.stats is not None else None,
        "item_count": var.item_count,
    }


def variable_from_json(data: Mapping[str, Any]) -> VariableSummary:
    """The inverse of :func:`variable_to_json`."""
    stats = data.get("stats")
    return VariableSummary(
        name=str(data["name"]),
        dimensions=tuple(dimension_from_json(d) for d in data.get("dimensions", ())),
        unit=str(data.get("unit", "")),
        description=str(data.get("description", "")),
        stats=band_stats_from_json(stats) if stats is not None else None,
        item_count=int(data.get("item_count", 0)),
    )


def summary_to_json(summary: DatasetSummary) -> dict[str, Any]:
    """A dataset summary as a dict."""
    s = summary
    return {
        "item_count": s.item_count,
        "extent": extent_to_json(s.extent),
        "min_cell_size_x": json_safe(s.min_cell_size_x),
        "min_cell_size_y": json_safe(s.min_cell_size_y),
        "max_cell_size_x": json_safe(s.max_cell_size_x),
        "max_cell_size_y": json_safe(s.max_cell_size_y),
        "time_extent": list(s.time_extent) if s.time_extent is not None else None,
        "variables": [variable_to_json(v) for v in s.variables],
        "band_count": s.band_count,
        "band_names": list(s.band_names),
        "pixel_type": s.pixel_type,
        "band_stats": stats_to_json(s.band_stats),
        "nodata": float_to_text(s.nodata),
        "version": s.version,
    }


def summary_from_json(data: Mapping[str, Any]) -> DatasetSummary:
    """The inverse of :func:`summary_to_json`."""
    te = data.get("time_extent")
    return DatasetSummary(
        item_count=int(data.get("item_count", 0)),
        extent=extent_from_json(data.get("extent")),
        min_cell_size_x=_opt_num(data.get("min_cell_size_x")),
        min_cell_size_y=_opt_num(data.get("min_cell_size_y")),
        max_cell_size_x=_opt_num(data.get("max_cell_size_x")),
        max_cell_size_y=_opt_num(data.get("max_cell_size_y")),
        time_extent=(int(te[0]), int(te[1])) if te is not None else None,
        variables=tuple(variable_from_json(v) for v in data.get("variables", ())),
        band_count=int(data.get("band_count", 0)),
        band_names=tuple(str(n) for n in data.get("band_names", ())),
        pixel_type=cast(PixelType, data.get("pixel_type", "UNKNOWN")),
        band_stats=stats_from_json(data.get("band_stats", ())),
        nodata=float_from_text(data.get("nodata")),
        version=int(data.get("version", 0)),
    )


def dataset_to_json(ds: MosaicDataset) -> dict[str, Any]:
    """A mosaic dataset as a dict."""
    return {
        "name": ds.name,
        "crs": ds.crs,
        "time_pattern": ds.time_pattern,
        "time_field": ds.time_field,
        "time_format": ds.time_format,
        "history_enabled": ds.history_enabled,
        "description": ds.description,
        "id": ds.id,
        "created": ds.created,
    }


def dataset_from_json(data: Mapping[str, Any]) -> MosaicDataset:
    """The inverse of :func:`dataset_to_json`."""
    return MosaicDataset(
        name=str(data["name"]),
        crs=str(data.get("crs", "")),
        time_pattern=data.get("time_pattern"),
        time_field=data.get("time_field"),
        time_format=data.get("time_format"),
        history_enabled=bool(data.get("history_enabled", True)),
        description=str(data.get("description", "")),
        id=data.get("id"),
        created=data.get("created"),
    )


def spatial_ref_to_json(sr: SpatialRef) -> dict[str, Any]:
    """A spatial reference as a dict (storage form, not the ArcGIS one)."""
    return {"wkid": sr.wkid, "latest_wkid": sr.latest_wkid, "wkt": sr.wkt}


def spatial_ref_from_json(data: Mapping[str, Any]) -> SpatialRef:
    """The inverse of :func:`spatial_ref_to_json`."""
    return SpatialRef(data.get("wkid"), data.get("latest_wkid"), data.get("wkt"))


def definition_to_json(d: ServiceDefinition) -> dict[str, Any]:
    """A service definition as a dict."""
    return {
        "name": d.name,
        "dataset": d.dataset,
        "folder": d.folder,
        "description": d.description,
        "copyright": d.copyright,
        "capabilities": d.capabilities,
        "configured_state": d.configured_state,
        "private": d.private,
        "properties": {str(k): str(v) for k, v in d.properties.items()},
        "config": json_safe(d.config),
    }


def definition_from_json(data: Mapping[str, Any]) -> ServiceDefinition:
    """The inverse of :func:`definition_to_json`."""
    state: Literal["STARTED", "STOPPED"] = (
        "STOPPED" if data.get("configured_state") == "STOPPED" else "STARTED"
    )
    return ServiceDefinition(
        name=str(data["name"]),
        dataset=str(data["dataset"]),
        folder=str(data.get("folder", "")),
        description=str(data.get("description", "")),
        copyright=str(data.get("copyright", "")),
        capabilities=str(data.get("capabilities", "Image,Metadata,Catalog")),
        configured_state=state,
        private=bool(data.get("private", False)),
        properties={str(k): str(v) for k, v in data.get("properties", {}).items()},
        config=dict(data.get("config", {})),
    )


def snapshot_to_json(snap: ServiceSnapshot) -> dict[str, Any]:
    """A published service snapshot as a dict."""
    return {
        "definition": definition_to_json(snap.definition),
        "dataset": dataset_to_json(snap.dataset),
        "summary": summary_to_json(snap.summary),
        "spatial_reference": spatial_ref_to_json(snap.spatial_reference),
        "version": snap.version,
        "published_at": snap.published_at,
    }


def snapshot_from_json(data: Mapping[str, Any]) -> ServiceSnapshot:
    """The inverse of :func:`snapshot_to_json`."""
    return ServiceSnapshot(
        definition=definition_from_json(data["definition"]),
        dataset=dataset_from_json(data["dataset"]),
        summary=summary_from_json(data["summary"]),
        spatial_reference=spatial_ref_from_json(data["spatial_reference"]),
        version=int(data["version"]),
        published_at=int(data["published_at"]),
    )
