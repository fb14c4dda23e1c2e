"""The JSON of an image service and its descriptive child resources, built from a snapshot.

``service_info`` is the ``{svc}?f=json`` resource with every field of spec 5.1;
``time_info``, ``key_properties``, ``statistics`` and
``raster_function_infos`` are the other resources derived from the same snapshot. Nothing
here touches the catalog or pixels: a request sees exactly the published snapshot.
"""

from __future__ import annotations

import math
from typing import Any

from livemosaic.core.fields import CATALOG_FIELDS, OBJECTID
from livemosaic.core.geographic import clamp_geographic
from livemosaic.core.models import (
    BandStats,
    DatasetSummary,
    DimensionSummary,
    Extent,
    ServiceSnapshot,
)
from livemosaic.core.rendering import templates_for
from livemosaic.core.service_properties import (
    ServiceLimits,
    effective_limits,
    service_properties,
)
from livemosaic.errors import InvalidParameter
from livemosaic.rest.multidim_json import time_regularity
from livemosaic.settings import Settings

DEFAULT_METHOD_NAMES = {
    "None": "None",
    "Center": "Center",
    "Nadir": "Nadir",
    "Viewpoint": "Viewpoint",
    "Attribute": "ByAttribute",
    "LockRaster": "LockRaster",
    "Northwest": "Northwest",
    "Seamline": "Seamline",
}
PIXEL_BYTES = {"U1": 1, "U2": 1, "U4": 1, "U8": 1, "S8": 1, "U16": 2, "S16": 2, "U32": 4, "S32": 4,
               "F32": 4, "F64": 8, "C64": 8, "C128": 16, "UNKNOWN": 1}  # fmt: skip


def server_limits(settings: Settings) -> ServiceLimits:
    """The server-wide limits of image requests (settings); services may only lower them."""
    return ServiceLimits(
        max_image_width=settings.max_image_width,
        max_image_height=settings.max_image_height,
        max_record_count=settings.max_record_count,
        max_mosaic_image_count=settings.max_mosaic_image_count,
        max_sample_count=settings.max_sample_count,
    )


def service_limits(snapshot: ServiceSnapshot, settings: Settings) -> ServiceLimits:
    """The limits a service advertises and every operation enforces (one computation)."""
    return effective_limits(service_properties(snapshot.definition), server_limits(settings))


def extent_json(extent: Extent | None, sr: dict[str, Any]) -> dict[str, Any]:
    """An envelope with its spatial reference; an empty envelope has null coordinates."""
    if extent is None:
        return {"xmin": None, "ymin": None, "xmax": None, "ymax": None, "spatialReference": sr}
    return {
        "xmin": extent.xmin,
        "ymin": extent.ymin,
        "xmax": extent.xmax,
        "ymax": extent.ymax,
        "spatialReference": sr,
    }


def band_names(summary: DatasetSummary) -> list[str]:
    """One name per band (Band_n where the catalog has none)."""
    names = list(summary.band_names[: summary.band_count])
    names += [f"Band_{i + 1}" for i in range(len(names), summary.band_count)]
    return names


def service_data_type(snapshot: ServiceSnapshot) -> str:
    """``serviceDataType`` (a property; Generic by default)."""
    value = snapshot.definition.prop("serviceDataType", "").strip()
    return value or "esriImageServiceDataTypeGeneric"


def default_variable(snapshot: ServiceSnapshot) -> str | None:
    """The variable drawn by default (``defaultVariable`` property or the first variable)."""
    variables = snapshot.summary.variables
    if not variables:
        return None
    wanted = (service_properties(snapshot.definition).default_variable or "").lower()
    for v in variables:
        if v.name.lower() == wanted:
            return v.name
    return variables[0].name


def time_field(summary: DatasetSummary) -> str:
    """The catalog time field: StdTime for multidimensional data, else AcquisitionDate."""
    return "StdTime" if summary.variables else "AcquisitionDate"


def _time_dimension(summary: DatasetSummary) -> DimensionSummary | None:
    for variable in summary.variables:
        for dim in variable.dimensions:
            if dim.name.lower() == "stdtime" and len(dim.values) > 1:
                return dim
    return None


def time_info(snapshot: ServiceSnapshot) -> dict[str, Any] | None:
    """The ``timeInfo`` object (5.3), or None when the service has no time extent."""
    summary = snapshot.summary
    if summary.time_extent is None:
        return None
    field = time_field(summary)
    interval, units = 1.0, "esriTimeUnitsDays"
    dim = _time_dimension(summary)
    if dim is not None:
        regular, step, unit = time_regularity(dim.values)
        if regular and step is not None and unit is not None:
            interval, units = step, "esriTimeUnits" + unit
    return {
        "startTimeField": field,
        "endTimeField": field,
        "timeExtent": [summary.time_extent[0], summary.time_extent[1]],
        "timeReference": None,
        "defaultTimeInterval": interval,
        "defaultTimeIntervalUnits": units,
        "hasLiveData": snapshot.definition.has_live_data,
    }


def service_band_stats(snapshot: ServiceSnapshot) -> tuple[BandStats, ...]:
    """Band statistics clients should stretch with.

    A multidimensional service draws one variable at a time, so its statistics are the default
    variable's; pooling temperature with salinity or bathymetry would be meaningless.
    """
    variable = default_variable(snapshot)
    if variable is not None:
        for v in snapshot.summary.variables:
            if v.name == variable and v.stats is not None:
                return (v.stats,)
    return snapshot.summary.band_stats


def _stats_lists(snapshot: ServiceSnapshot) -> dict[str, list[float]]:
    summary = snapshot.summary
    stats = service_band_stats(snapshot)
    if len(stats) != summary.band_count:
        return {"minValues": [], "maxValues": [], "meanValues": [], "stdvValues": []}
    return {
        "minValues": [s.min for s in stats],
        "maxValues": [s.max for s in stats],
        "meanValues": [s.mean for s in stats],
        "stdvValues": [s.std for s in stats],
    }


def service_info(
    snapshot: ServiceSnapshot, settings: Settings, sr: dict[str, Any], *, geographic: bool = False
) -> dict[str, Any]:
    """The image service resource (5.1) from a snapshot; ``sr`` is its spatial reference JSON.

    ``geographic``: the service's spatial reference is in degrees, and its extent is published
    within the valid range (:func:`livemosaic.core.geographic.clamp_geographic`).
    """
    d = snapshot.definition
    s = snapshot.summary
    limits = service_limits(snapshot, settings)
    props = service_properties(d)
    published = clamp_geographic(s.extent) if geographic and s.extent is not None else s.extent
    extent = extent_json(published, sr)
    px = s.min_cell_size_x or 0.0
    py = s.min_cell_size_y or px
    sort_value: Any = d.prop("sortValue", "").strip() if props.sort_value is not None else None
    info: dict[str, Any] = {
        "currentVersion": settings.current_version,
        "serviceDescription": d.description or snapshot.dataset.description,
        "name": d.name,
        "description": d.description or snapshot.dataset.description,
        "copyrightText": d.copyright or d.prop("copyright", ""),
        "capabilities": d.capabilities,
        "serviceSourceType": d.prop(
            "esriImageServiceSourceType", "esriImageServiceSourceTypeMosaicDataset"
        ),
        "extent": extent,
        "initialExtent": dict(extent),
        "fullExtent": dict(extent),
        "spatialReference": sr,
        "pixelSizeX": px,
        "pixelSizeY": py,
        "bandCount": s.band_count,
        "bandNames": band_names(s),
        "pixelType": s.pixel_type,
        "minPixelSize": 0,
        "maxPixelSize": 0,
        "minScale": props.min_scale,
        "maxScale": props.max_scale,
        "serviceDataType": service_data_type(snapshot),
        **_stats_lists(snapshot),
    }
    if s.nodata is not None and math.isfinite(s.nodata):
        info["noDataValue"] = s.nodata
        info["noDataValues"] = [s.nodata] * s.band_count
    info["objectIdField"] = OBJECTID
    info["fields"] = [f.to_json() for f in CATALOG_FIELDS]
    ti = time_info(snapshot)
    if ti is not None:
        info["timeInfo"] = ti
    info.update(
        {
            "hasMultidimensions": bool(s.variables),
            "hasHistograms": s.item_count > 0 and s.band_count > 0,
            "hasColormap": False,
            "hasRasterAttributeTable": False,
            "allowRasterFunction": props.allow_function,
            "rasterFunctionInfos": function_infos(s.band_count),
            "defaultMosaicMethod": DEFAULT_METHOD_NAMES[props.default_mosaic_method],
            "allowedMosaicMethods": props.allowed_mosaic_methods_text,
            "sortField": props.sort_field or "",
            "sortValue": sort_value,
            "sortAscending": props.sort_ascending,
            "mosaicOperator": props.mosaic_operator,
            "defaultCompressionQuality": props.default_compression_quality,
            "defaultResamplingMethod": props.default_resampling_method,
            "maxImageHeight": limits.max_image_height,
            "maxImageWidth": limits.max_image_width,
            "maxRecordCount": limits.max_record_count,
            "maxDownloadImageCount": 0,
            "maxDownloadSizeLimit": 0,
            "maxMosaicImageCount": limits.max_mosaic_image_count,
            "mensurationCapabilities": "",
            "supportsStatistics": True,
            "supportsAdvancedQueries": True,
            "useStandardizedQueries": True,
            "advancedQueryCapabilities": {
                "useStandardizedQueries": True,
                "supportsStatistics": True,
                "supportsOrderBy": True,
                "supportsDistinct": True,
                "supportsPagination": True,
            },
            "exportTilesAllowed": False,
            "singleFusedMapCache": False,
            "datasetFormat": "AMD",
            "compressionType": "None",
            "uncompressedSize": _uncompressed_size(s),
            "blockWidth": 2048,
            "blockHeight": 256,
            "allowCopy": props.allow_copy,
            "allowAnalysis": props.allow_analysis,
            "allowComputeTiePoints": False,
            "editFieldsInfo": None,
            "ownershipBasedAccessControlForRasters": None,
        }
    )
    variable = default_variable(snapshot)
    if variable is not None:
        info["defaultVariable"] = variable
    return info


def _uncompressed_size(s: DatasetSummary) -> int:
    if s.extent is None or not s.min_cell_size_x or not s.min_cell_size_y:
        return 0
    cols = s.extent.width / s.min_cell_size_x
    rows = s.extent.height / s.min_cell_size_y
    size = cols * rows * max(s.band_count, 1) * PIXEL_BYTES.get(s.pixel_type, 1)
    return int(size) if math.isfinite(size) else 0


def key_properties(snapshot: ServiceSnapshot) -> dict[str, Any]:
    """The service ``keyProperties`` (6.6)."""
    s = snapshot.summary
    data_type = service_data_type(snapshot).removeprefix("esriImageServiceDataType") or "Generic"
    out: dict[str, Any] = {
        "DataType": data_type,
        "BandProperties": [{"BandName": n} for n in band_names(s)]
        if not s.variables
        else [{"BandName": default_variable(snapshot)}],
        "LowCellSize": s.min_cell_size_x or 0.0,
        "HighCellSize": s.max_cell_size_x or s.min_cell_size_x or 0.0,
    }
    variable = default_variable(snapshot)
    if variable is not None:
        out["DefaultVariable"] = variable
    return out


def stats_json(stats: BandStats) -> dict[str, Any]:
    """One band's statistics as the ``statistics`` resource spells them."""
    return {
        "min": stats.min,
        "max": stats.max,
        "mean": stats.mean,
        "standardDeviation": stats.std,
        "skipFactorX": 1,
        "skipFactorY": 1,
    }


def statistics(snapshot: ServiceSnapshot, variable: str | None) -> dict[str, Any]:
    """The ``statistics`` resource (6.7): per band, or of one variable."""
    if variable:
        for v in snapshot.summary.variables:
            if v.name.lower() == variable.lower():
                return {"statistics": [stats_json(v.stats)] if v.stats else []}
        raise InvalidParameter("variable", f"'{variable}' is not a variable of this service.")
    return {"statistics": [stats_json(b) for b in service_band_stats(snapshot)]}


def function_infos(band_count: int) -> list[dict[str, Any]]:
    """The raster function templates of a service (core.rendering.TEMPLATES that apply)."""
    return [
        {"name": t.name, "description": t.description, "help": ""}
        for t in templates_for(band_count)
    ]


def raster_function_infos(snapshot: ServiceSnapshot) -> dict[str, Any]:
    """The ``rasterFunctionInfos`` resource: the templates a client may ask for by name."""
    return {"rasterFunctionInfos": function_infos(snapshot.summary.band_count)}


__all__ = [
    "band_names",
    "default_variable",
    "extent_json",
    "key_properties",
    "raster_function_infos",
    "service_data_type",
    "service_info",
    "server_limits",
    "service_limits",
    "statistics",
    "stats_json",
    "time_info",
    "time_field",
]
