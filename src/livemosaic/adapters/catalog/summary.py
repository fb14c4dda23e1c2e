"""Incremental dataset summaries for the SQLite catalog.

A :class:`SummaryDelta` collects what adding (+1) or removing (-1) items changes: counts,
running sums for pooled statistics, distinct-value counters. :func:`apply_delta` writes it in
the caller's transaction and then recomputes every bound (extent, cell sizes, time extent,
statistics minima and maxima) with indexed ``MIN()``/``MAX()`` lookups, so an add or remove
costs O(log n) per bound and :func:`read_summary` is a handful of small indexed reads. The
rules (pooling, pixel type, band names, nodata) are :mod:`livemosaic.core.summary`'s, and the
result equals its ``summarize`` of the dataset's items.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from livemosaic.core.models import (
    BandStats,
    DatasetSummary,
    DimensionSummary,
    Extent,
    RasterItem,
    VariableSummary,
)
from livemosaic.core.summary import (
    Moments,
    band_names_key,
    choose_band_names,
    choose_nodata,
    dimension_order,
    item_dimension_values,
    item_meta,
    nodata_key,
    pooled,
    widest_pixel_type,
)


class SummaryDelta:
    """What adding or removing a set of items changes in a dataset summary."""

    def __init__(self) -> None:
        self.item_count = 0
        self.counters: Counter[tuple[str, str]] = Counter()
        self.bands: dict[int, Moments] = {}
        self.variables: dict[str, Moments] = {}
        self.var_meta: dict[str, tuple[str, str]] = {}
        self.dims: Counter[tuple[str, str]] = Counter()
        self.dim_meta: dict[tuple[str, str], tuple[str, str]] = {}
        self.dim_values: Counter[tuple[str, str, float]] = Counter()

    @property
    def empty(self) -> bool:
        """True when no item was counted."""
        return not self.counters

    def add(self, item: RasterItem, sign: int) -> None:
        """Count one item in (sign=1) or out (sign=-1)."""
        self.item_count += sign
        self.counters[("pixel_type", item.pixel_type)] += sign
        self.counters[("band_count", str(item.band_count))] += sign
        self.counters[("band_names", band_names_key(item.band_names))] += sign
        if item.nodata is not None:
            self.counters[("nodata", nodata_key(item.nodata))] += sign
        fallback = float(item.width * item.height)
        for b, stats in enumerate(item.stats):
            m = self.bands.setdefault(b, Moments())
            m.items += sign
            m.add(stats, fallback, sign)
        if not item.variable:
            return
        var = item.variable
        vm = self.variables.setdefault(var, Moments())
        vm.items += sign
        for stats in item.stats:
            vm.add(stats, fallback, sign)
        if sign > 0 and (item_meta(item, "unit") or item_meta(item, "description")):
            self.var_meta[var] = (item_meta(item, "unit"), item_meta(item, "description"))
        for dim, value in item_dimension_values(item).items():
            self.dims[(var, dim)] += sign
            self.dim_values[(var, dim, value)] += sign
            unit = item_meta(item, "dimension_units", dim)
            desc = item_meta(item, "dimension_descriptions", dim)
            if sign > 0 and (unit or desc):
                self.dim_meta[(var, dim)] = (unit, desc)


BOUNDS_SQL = """
UPDATE summary SET
    version = version + 1,
    item_count = item_count + ?2,
    xmin = (SELECT MIN(xmin) FROM items WHERE dataset_id = ?1),
    ymin = (SELECT MIN(ymin) FROM items WHERE dataset_id = ?1),
    xmax = (SELECT MAX(xmax) FROM items WHERE dataset_id = ?1),
    ymax = (SELECT MAX(ymax) FROM items WHERE dataset_id = ?1),
    min_cell_x = (SELECT MIN(low_ps) FROM items WHERE dataset_id = ?1),
    min_cell_y = (SELECT MIN(low_ps_y) FROM items WHERE dataset_id = ?1),
    max_cell_x = (SELECT MAX(high_ps) FROM items WHERE dataset_id = ?1),
    max_cell_y = (SELECT MAX(high_ps_y) FROM items WHERE dataset_id = ?1),
    time_min = (SELECT MIN(time) FROM items WHERE dataset_id = ?1),
    time_max = (SELECT MAX(time_end) FROM items WHERE dataset_id = ?1)
WHERE dataset_id = ?1
"""


def apply_delta(conn: sqlite3.Connection, ds: int, delta: SummaryDelta) -> None:
    """Write a delta into the summary tables; the item rows must already be changed."""
    conn.execute(BOUNDS_SQL, (ds, delta.item_count))
    conn.executemany(
        "INSERT INTO summary_counters (dataset_id, kind, key, count) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (dataset_id, kind, key) DO UPDATE SET count = summary_counters.count + excluded.count",
        [(ds, kind, key, n) for (kind, key), n in delta.counters.items() if n],
    )
    conn.execute("DELETE FROM summary_counters WHERE dataset_id = ? AND count <= 0", (ds,))
    conn.executemany(
        "INSERT INTO summary_bands (dataset_id, band, item_count, weight, total, total_sq) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id, band) DO UPDATE SET "
        "item_count = summary_bands.item_count + excluded.item_count, "
        "weight = summary_bands.weight + excluded.weight, "
        "total = summary_bands.total + excluded.total, "
        "total_sq = summary_bands.total_sq + excluded.total_sq",
        [(ds, b, m.items, m.weight, m.total, m.total_sq) for b, m in delta.bands.items()],
    )
    conn.executemany(
        "UPDATE summary_bands SET "
        "min = (SELECT MIN(min) FROM item_band_stats WHERE dataset_id = ?1 AND band = ?2), "
        "max = (SELECT MAX(max) FROM item_band_stats WHERE dataset_id = ?1 AND band = ?2) "
        "WHERE dataset_id = ?1 AND band = ?2",
        [(ds, b) for b in delta.bands],
    )
    conn.execute("DELETE FROM summary_bands WHERE dataset_id = ? AND item_count <= 0", (ds,))
    _apply_variables(conn, ds, delta)


def _apply_variables(conn: sqlite3.Connection, ds: int, delta: SummaryDelta) -> None:
    conn.executemany(
        "INSERT INTO summary_variables (dataset_id, variable, item_count, weight, total, "
        "total_sq) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id, variable) DO UPDATE SET "
        "item_count = summary_variables.item_count + excluded.item_count, "
        "weight = summary_variables.weight + excluded.weight, "
        "total = summary_variables.total + excluded.total, "
        "total_sq = summary_variables.total_sq + excluded.total_sq",
        [(ds, v, m.items, m.weight, m.total, m.total_sq) for v, m in delta.variables.items()],
    )
    conn.executemany(
        "UPDATE summary_variables SET unit = ?, description = ? "
        "WHERE dataset_id = ? AND variable = ?",
        [(u, d, ds, v) for v, (u, d) in delta.var_meta.items()],
    )
    conn.executemany(
        "UPDATE summary_variables SET "
        "min = (SELECT MIN(min) FROM item_band_stats WHERE dataset_id = ?1 AND variable = ?2), "
        "max = (SELECT MAX(max) FROM item_band_stats WHERE dataset_id = ?1 AND variable = ?2) "
        "WHERE dataset_id = ?1 AND variable = ?2",
        [(ds, v) for v in delta.variables],
    )
    conn.execute("DELETE FROM summary_variables WHERE dataset_id = ? AND item_count <= 0", (ds,))
    conn.executemany(
        "INSERT INTO summary_dimensions (dataset_id, variable, dimension, item_count) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (dataset_id, variable, dimension) DO UPDATE SET "
        "item_count = summary_dimensions.item_count + excluded.item_count",
        [(ds, v, d, n) for (v, d), n in delta.dims.items() if n],
    )
    conn.executemany(
        "UPDATE summary_dimensions SET unit = ?, description = ? "
        "WHERE dataset_id = ? AND variable = ? AND dimension = ?",
        [(u, desc, ds, v, d) for (v, d), (u, desc) in delta.dim_meta.items()],
    )
    conn.execute("DELETE FROM summary_dimensions WHERE dataset_id = ? AND item_count <= 0", (ds,))
    conn.executemany(
        "INSERT INTO summary_dimension_values (dataset_id, variable, dimension, value, count) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (dataset_id, variable, dimension, value) "
        "DO UPDATE SET count = summary_dimension_values.count + excluded.count",
        [(ds, v, d, x, n) for (v, d, x), n in delta.dim_values.items() if n],
    )
    conn.execute("DELETE FROM summary_dimension_values WHERE dataset_id = ? AND count <= 0", (ds,))


def read_summary(conn: sqlite3.Connection, ds: int) -> DatasetSummary:
    """The current summary of a dataset from the summary tables."""
    row = conn.execute("SELECT * FROM summary WHERE dataset_id = ?", (ds,)).fetchone()
    if row is None or row["item_count"] <= 0:
        return DatasetSummary(version=row["version"] if row is not None else 0)
    counters: dict[str, dict[str, int]] = {}
    for kind, key, n in conn.execute(
        "SELECT kind, key, count FROM summary_counters WHERE dataset_id = ?", (ds,)
    ):
        counters.setdefault(kind, {})[key] = n
    band_stats: list[BandStats] = []
    for b in conn.execute(
        "SELECT * FROM summary_bands WHERE dataset_id = ? ORDER BY band", (ds,)
    ).fetchall():
        if b["band"] != len(band_stats):
            break
        band_stats.append(pooled(b["weight"], b["total"], b["total_sq"], b["min"], b["max"]))
    time_extent = None
    if row["time_min"] is not None and row["time_max"] is not None:
        time_extent = (int(row["time_min"]), int(row["time_max"]))
    return DatasetSummary(
        item_count=int(row["item_count"]),
        extent=Extent(row["xmin"], row["ymin"], row["xmax"], row["ymax"]),
        min_cell_size_x=row["min_cell_x"],
        min_cell_size_y=row["min_cell_y"],
        max_cell_size_x=row["max_cell_x"],
        max_cell_size_y=row["max_cell_y"],
        time_extent=time_extent,
        variables=_read_variables(conn, ds),
        band_count=max((int(k) for k in counters.get("band_count", {})), default=0),
        band_names=choose_band_names(counters.get("band_names", {})),
        pixel_type=widest_pixel_type(counters.get("pixel_type", {})),
        band_stats=tuple(band_stats),
        nodata=choose_nodata(counters.get("nodata", {})),
        version=int(row["version"]),
    )


def _read_variables(conn: sqlite3.Connection, ds: int) -> tuple[VariableSummary, ...]:
    values: dict[tuple[str, str], list[float]] = {}
    for var, dim, value in conn.execute(
        "SELECT variable, dimension, value FROM summary_dimension_values "
        "WHERE dataset_id = ? ORDER BY variable, dimension, value",
        (ds,),
    ):
        values.setdefault((var, dim), []).append(float(value))
    dims: dict[str, list[DimensionSummary]] = {}
    for d in conn.execute("SELECT * FROM summary_dimensions WHERE dataset_id = ?", (ds,)):
        key = (d["variable"], d["dimension"])
        dims.setdefault(d["variable"], []).append(
            DimensionSummary(
                d["dimension"], tuple(values.get(key, ())), d["unit"], d["description"]
            )
        )
    out = []
    for v in conn.execute(
        "SELECT * FROM summary_variables WHERE dataset_id = ? ORDER BY variable", (ds,)
    ).fetchall():
        vdims = sorted(dims.get(v["variable"], []), key=lambda x: dimension_order(x.name))
        stats = None
        if v["weight"] > 0 or v["min"] is not None:
            stats = pooled(v["weight"], v["total"], v["total_sq"], v["min"], v["max"])
        out.append(
            VariableSummary(
                name=v["variable"],
                dimensions=tuple(vdims),
                unit=v["unit"],
                description=v["description"],
                stats=stats,
                item_count=int(v["item_count"]),
            )
        )
    return tuple(out)
