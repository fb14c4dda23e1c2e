"""Catalog items as rows of the SQLite ``items`` table, and back."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from livemosaic.adapters.catalog import codec
from livemosaic.core.fields import item_attributes
from livemosaic.core.models import Extent, MaskKind, MosaicDataset, PixelType, RasterItem
from livemosaic.core.summary import y_cell_size
from livemosaic.errors import AlreadyExists, DatasetNotFound, InvalidParameter

ITEM_COLUMNS = (
    "dataset_id",
    "path",
    "uri",
    "name",
    "bands",
    "footprint",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "native_crs",
    "native_extent",
    "width",
    "height",
    "cell_size_x",
    "cell_size_y",
    "low_ps",
    "high_ps",
    "low_ps_y",
    "high_ps_y",
    "min_ps",
    "max_ps",
    "pixel_type",
    "band_count",
    "band_names",
    "nodata",
    "mask_kind",
    "stats",
    "file_size",
    "file_mtime_ns",
    "time",
    "end_time",
    "time_end",
    "duration",
    "variable",
    "std_z",
    "dimensions",
    "dimension_names",
    "attributes",
    "value_scale",
    "value_offset",
    "overview_count",
    "category",
    "tag",
    "group_name",
    "product_name",
    "center_x",
    "center_y",
    "zorder",
    "shape_length",
    "shape_area",
    "date_added",
)
INSERT_ITEM = (
    f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in ITEM_COLUMNS)})"
)
INSERT_RTREE = (
    "INSERT INTO items_rtree (id, xmin, xmax, ymin, ymax, ds_min, ds_max, t_min, t_max) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The time interval of an item without a time: the whole (32-bit) float range, so queries
# without a time find it. Must match migration 0004_rtree_time.sql.
UNTIMED_RANGE = (-3.4e38, 3.4e38)


def _scalar(value: Any) -> Any:
    """A value SQLite can bind (None for NaN, text for anything unusual)."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def item_row(item: RasterItem, dataset_id: int, date_added: int) -> dict[str, Any]:
    """The column values of one item."""
    attrs = item_attributes(item)
    time_end = item.end_time if item.end_time is not None else item.time
    return {
        "dataset_id": dataset_id,
        "path": item.path,
        "uri": item.uri,
        "name": item.name,
        "bands": json.dumps(list(item.bands)),
        "footprint": codec.dumps(codec.footprint_to_json(item.footprint)),
        "xmin": item.extent.xmin,
        "ymin": item.extent.ymin,
        "xmax": item.extent.xmax,
        "ymax": item.extent.ymax,
        "native_crs": item.native_crs,
        "native_extent": codec.dumps(codec.extent_to_json(item.native_extent)),
        "width": item.width,
        "height": item.height,
        "cell_size_x": item.cell_size_x,
        "cell_size_y": item.cell_size_y,
        "low_ps": item.low_ps,
        "high_ps": item.high_ps,
        "low_ps_y": y_cell_size(item.low_ps, item),
        "high_ps_y": y_cell_size(item.high_ps, item),
        "min_ps": item.min_ps,
        "max_ps": item.max_ps,
        "pixel_type": item.pixel_type,
        "band_count": item.band_count,
        "band_names": json.dumps(list(item.band_names)),
        "nodata": codec.float_to_text(item.nodata),
        "mask_kind": item.mask_kind,
        "stats": codec.dumps(codec.stats_to_json(item.stats)),
        "file_size": item.file_size,
        "file_mtime_ns": item.file_mtime_ns,
        "time": item.time,
        "end_time": item.end_time,
        "time_end": time_end,
        "duration": None if item.time is None or time_end is None else time_end - item.time,
        "variable": item.variable,
        "std_z": _scalar(item.dimensions.get("StdZ")),
        "dimensions": codec.dumps(dict(item.dimensions)),
        "dimension_names": attrs["Dimensions"],
        "attributes": codec.dumps(dict(item.attributes)),
        "value_scale": item.scale,
        "value_offset": item.offset,
        "overview_count": item.overview_count,
        "category": _scalar(attrs["Category"]),
        "tag": _scalar(attrs["Tag"]),
        "group_name": _scalar(attrs["GroupName"]),
        "product_name": _scalar(attrs["ProductName"]),
        "center_x": attrs["CenterX"],
        "center_y": attrs["CenterY"],
        "zorder": _scalar(attrs["ZOrder"]),
        "shape_length": attrs["Shape_Length"],
        "shape_area": attrs["Shape_Area"],
        "date_added": date_added,
    }


def rtree_time_range(time: int | None, time_end: int | None) -> tuple[float, float]:
    """The R*Tree time interval of an item: [time, time_end], or the whole range without a time."""
    if time is None:
        return UNTIMED_RANGE
    end = time if time_end is None else time_end
    return (min(time, end), max(time, end))


def rtree_row(oid: int, item: RasterItem, dataset_id: int) -> tuple[Any, ...]:
    """The ``items_rtree`` row of one item (SQLite rounds the bounds outwards to float32)."""
    e = item.extent
    t_min, t_max = rtree_time_range(item.time, item.end_time)
    return (oid, e.xmin, e.xmax, e.ymin, e.ymax, dataset_id, dataset_id, t_min, t_max)


def item_from_row(row: sqlite3.Row) -> RasterItem:
    """The item stored in a row of ``items``."""
    native = codec.extent_from_json(json.loads(row["native_extent"]))
    return RasterItem(
        path=row["path"],
        uri=row["uri"],
        name=row["name"],
        bands=tuple(int(b) for b in json.loads(row["bands"])),
        footprint=codec.footprint_from_json(json.loads(row["footprint"])),
        extent=Extent(row["xmin"], row["ymin"], row["xmax"], row["ymax"]),
        native_crs=row["native_crs"],
        native_extent=native if native is not None else Extent(0.0, 0.0, 0.0, 0.0),
        width=row["width"],
        height=row["height"],
        cell_size_x=row["cell_size_x"],
        cell_size_y=row["cell_size_y"],
        low_ps=row["low_ps"],
        high_ps=row["high_ps"],
        pixel_type=cast(PixelType, row["pixel_type"]),
        band_names=tuple(str(n) for n in json.loads(row["band_names"])),
        nodata=codec.float_from_text(row["nodata"]),
        mask_kind=cast(MaskKind, row["mask_kind"]),
        stats=codec.stats_from_json(json.loads(row["stats"])),
        file_size=row["file_size"],
        file_mtime_ns=row["file_mtime_ns"],
        time=row["time"],
        end_time=row["end_time"],
        variable=row["variable"],
        dimensions={
            str(k): math.nan if v is None else float(v)
            for k, v in json.loads(row["dimensions"]).items()
        },
        attributes=json.loads(row["attributes"]),
        scale=row["value_scale"],
        offset=row["value_offset"],
        overview_count=row["overview_count"],
        id=row["id"],
        date_added=row["date_added"],
    )


def band_stat_rows(item: RasterItem, oid: int, dataset_id: int) -> list[tuple[Any, ...]]:
    """Rows of ``item_band_stats`` for one item (NaN minima/maxima stored as NULL)."""
    return [
        (oid, dataset_id, item.variable or "", b, _scalar(s.min), _scalar(s.max))
        for b, s in enumerate(item.stats)
    ]


def dimension_rows(item: RasterItem, oid: int) -> list[tuple[Any, ...]]:
    """Rows of ``item_dims`` for the dimensions without a column of their own."""
    return [
        (oid, name, float(value))
        for name, value in item.dimensions.items()
        if name.lower() not in ("stdz", "stdtime") and math.isfinite(float(value))
    ]


# the dataset columns a user may change (recorded in the history when they do)
DATASET_SETTINGS = (
    "name",
    "crs",
    "time_pattern",
    "time_field",
    "time_format",
    "history_enabled",
    "description",
)


def write_dataset_update(
    conn: Any,
    old: MosaicDataset,
    dataset: MosaicDataset,
    refuse_if_published: Callable[[str], None],
) -> tuple[MosaicDataset, dict[str, Any]]:
    """Check and store a dataset's new settings (both catalog stores, in their write
    transaction): a name no other dataset has, a rename or a CRS change only where allowed
    (``refuse_if_published`` raises for a published dataset), the CRS only while empty.
    Returns the stored dataset and the settings that changed."""
    name = dataset.name.strip() or old.name
    clash = conn.execute(
        "SELECT name FROM datasets WHERE name = ? AND id <> ?", (name, old.id)
    ).fetchone()
    if clash is not None:
        raise AlreadyExists(f"Mosaic dataset '{clash['name']}' exists already.")
    if name.casefold() != old.name.casefold():
        refuse_if_published("renamed")
    found = conn.execute(
        "SELECT item_count FROM summary WHERE dataset_id = ?", (old.id,)
    ).fetchone()
    count = int(found[0]) if found is not None else 0
    if dataset.crs != old.crs and count > 0:
        raise InvalidParameter(
            "crs",
            f"mosaic dataset '{old.name}' holds {count} items; its spatial reference "
            "can only change while it is empty.",
            accepted="remove its items first (`livemosaic items remove`)",
        )
    new = replace(dataset, name=name, id=old.id, created=old.created)
    conn.execute(
        "UPDATE datasets SET name = ?, crs = ?, time_pattern = ?, history_enabled = ?, "
        "description = ?, time_field = ?, time_format = ? WHERE id = ?",
        (
            new.name,
            new.crs,
            new.time_pattern,
            int(new.history_enabled),
            new.description,
            new.time_field,
            new.time_format,
            new.id,
        ),
    )
    changed = {k: getattr(new, k) for k in DATASET_SETTINGS if getattr(new, k) != getattr(old, k)}
    return new, changed


def dataset_from_row(row: sqlite3.Row) -> MosaicDataset:
    """The dataset a ``datasets`` row stores."""
    return MosaicDataset(
        name=row["name"],
        crs=row["crs"],
        time_pattern=row["time_pattern"],
        time_field=row["time_field"],
        time_format=row["time_format"],
        history_enabled=bool(row["history_enabled"]),
        description=row["description"],
        id=row["id"],
        created=row["created"],
    )


def dataset_not_found(name: str) -> DatasetNotFound:
    """The error for an unknown dataset name."""
    return DatasetNotFound(
        f"Mosaic dataset '{name}' does not exist.",
        next_step=f"Create it with `livemosaic dataset create {name}`.",
    )


def load_dataset(conn: sqlite3.Connection, name: str) -> MosaicDataset:
    """The dataset with this name, case-insensitive (DatasetNotFound otherwise)."""
    row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name.strip(),)).fetchone()
    if row is None:
        raise dataset_not_found(name)
    return dataset_from_row(row)
