"""In-memory implementations of the core ports for unit tests of the domain core.

These are honest, small implementations, not mocks: a catalog that filters items the way
``CatalogStore.find_items`` documents, a numpy-backed raster source on a simple north-up
grid in one CRS ("EPSG:3857"), an identity projector for that CRS and an encoder that returns
the raw bytes of a block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livemosaic.core.fields import item_attributes, resolve_field
from livemosaic.core.models import (
    BandStats,
    DatasetSummary,
    DimensionSummary,
    Extent,
    MosaicDataset,
    PixelType,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
    VariableSummary,
)
from livemosaic.core.ports import (
    DimensionFilter,
    EncodedImage,
    InspectOptions,
    ItemQuery,
    PixelBlock,
    ReadRequest,
)
from livemosaic.errors import DatasetNotFound, ItemNotFound, NotSupported

CRS = "EPSG:3857"


# --- catalog ---------------------------------------------------------------------------------


def _matches_value(value: float | None, wanted: Sequence[float | tuple[float, float]]) -> bool:
    if not wanted:
        return True
    if value is None:
        return False
    for w in wanted:
        if isinstance(w, tuple):
            if w[0] <= value <= w[1]:
                return True
        elif value == w:
            return True
    return False


def _dimension_ok(item: RasterItem, f: DimensionFilter) -> bool:
    if f.variable and (item.variable or "").lower() != f.variable.lower():
        return False
    if not f.dimension:
        return True
    if f.dimension.lower() == "stdtime":
        return _matches_value(None if item.time is None else float(item.time), f.values)
    dims = {k.lower(): v for k, v in item.dimensions.items()}
    return _matches_value(dims.get(f.dimension.lower()), f.values)


def _time_ok(item: RasterItem, window: tuple[int | None, int | None]) -> bool:
    if item.time is None:
        return False
    start = item.time
    end = item.end_time if item.end_time is not None else item.time
    lo, hi = window
    return (hi is None or start <= hi) and (lo is None or end >= lo)


class InMemoryCatalog:
    """A dict-backed catalog: datasets and their items (the find_items part of CatalogStore)."""

    def __init__(self) -> None:
        self.datasets: dict[str, MosaicDataset] = {}
        self.items: dict[str, list[RasterItem]] = {}
        self.queries: list[ItemQuery] = []

    def create_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        self.datasets[dataset.name.lower()] = dataset
        self.items.setdefault(dataset.name.lower(), [])
        return dataset

    def get_dataset(self, name: str) -> MosaicDataset:
        try:
            return self.datasets[name.lower()]
        except KeyError:
            raise DatasetNotFound(f"Dataset '{name}' does not exist.") from None

    def add(self, dataset: str, items: Sequence[RasterItem]) -> None:
        """Add items that already carry their OBJECTIDs."""
        self.items.setdefault(dataset.lower(), []).extend(items)

    def _matching(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        from livemosaic.core.where import evaluate

        out = []
        for item in self.items.get(dataset.lower(), []):
            if query.object_ids is not None and item.id not in query.object_ids:
                continue
            if query.extent is not None and not item.extent.intersects(query.extent):
                continue
            if query.time is not None and not _time_ok(item, query.time):
                continue
            if not all(_dimension_ok(item, f) for f in query.dimensions):
                continue
            if query.where is not None and not evaluate(query.where, item_attributes(item)):
                continue
            if query.pixel_size is not None and not (
                item.low_ps <= query.pixel_size * 2
                and (item.max_ps <= 0 or item.max_ps >= query.pixel_size)
            ):
                continue
            out.append(item)
        return out

    def find_items(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        self.queries.append(query)
        items = sorted(self._matching(dataset, query), key=lambda it: it.id or 0)
        for name, ascending in reversed(query.order_by):
            known = resolve_field(name)
            key = known.name if known else name

            def sort_key(it: RasterItem, key: str = key) -> tuple[int, Any]:
                value = item_attributes(it).get(key)
                return (1, 0) if value is None else (0, value)

            present = [it for it in items if sort_key(it)[0] == 0]
            missing = [it for it in items if sort_key(it)[0] == 1]
            present.sort(key=sort_key, reverse=not ascending)
            items = present + missing
        if query.nearest_to is not None:
            px, py = query.nearest_to
            sign = 1.0 if query.nearest_ascending else -1.0

            def dist(it: RasterItem) -> float:
                cx, cy = it.extent.center
                return sign * ((cx - px) ** 2 + (cy - py) ** 2)

            items.sort(key=dist)  # stable: field order and OBJECTID break ties
        end = None if query.limit is None else query.offset + query.limit
        return items[query.offset : end]

    def count_items(self, dataset: str, query: ItemQuery) -> int:
        return len(self._matching(dataset, query))

    def get_item(self, dataset: str, object_id: int) -> RasterItem:
        for item in self.items.get(dataset.lower(), []):
            if item.id == object_id:
                return item
        raise ItemNotFound(f"Item {object_id} does not exist.")

    def summary(self, dataset: str) -> DatasetSummary:
        items = self.items.get(dataset.lower(), [])
        return DatasetSummary(
            item_count=len(items),
            extent=Extent.union_all(it.extent for it in items),
            band_count=max((it.band_count for it in items), default=0),
        )


# --- raster source -----------------------------------------------------------------------------


class GridRasterSource:
    """Items are numpy arrays (bands, rows, cols) on north-up grids in EPSG:3857.

    An item's grid starts at ``native_extent`` (xmin, ymax) with ``cell_size_x/y``. Reads
    sample the nearest source pixel under each output pixel centre. ``reads`` records the
    OBJECTIDs read, in order.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.reads: list[int | None] = []

    def register(self, uri: str, data: np.ndarray, valid: np.ndarray | None = None) -> None:
        if data.ndim == 2:
            data = data[None, :, :]
        if valid is None:
            valid = np.ones(data.shape[1:], dtype=bool)
        self.arrays[uri] = (data, valid)

    def inspect(self, path: str, options: InspectOptions) -> list[RasterItem]:
        raise NotSupported("The in-memory raster source cannot inspect files.")

    def file_crs(self, path: str) -> str:
        return CRS

    def read(self, item: RasterItem, request: ReadRequest) -> PixelBlock | None:
        if request.crs != CRS:
            raise NotSupported(f"GridRasterSource reads only {CRS}, not {request.crs}.")
        self.reads.append(item.id)
        data, valid = self.arrays[item.uri]
        bands, rows, cols = data.shape
        ext = request.extent
        xs = ext.xmin + (np.arange(request.width) + 0.5) * ext.width / request.width
        ys = ext.ymax - (np.arange(request.height) + 0.5) * ext.height / request.height
        col = np.floor((xs - item.native_extent.xmin) / item.cell_size_x).astype(int)
        row = np.floor((item.native_extent.ymax - ys) / item.cell_size_y).astype(int)
        col_ok = (col >= 0) & (col < cols)
        row_ok = (row >= 0) & (row < rows)
        inside = row_ok[:, None] & col_ok[None, :]
        if not inside.any():
            return None
        rr = np.clip(row, 0, rows - 1)[:, None]
        cc = np.clip(col, 0, cols - 1)[None, :]
        picked = data[:, rr, cc]
        out_valid = inside & valid[rr, cc]
        out = np.where(out_valid[None], picked, np.zeros((), dtype=data.dtype))
        if request.bands is not None:
            out = out[list(request.bands)]
        return PixelBlock(data=out.astype(data.dtype), valid=out_valid)


# --- projector and encoder ------------------------------------------------------------------


class IdentityProjector:
    """Knows one CRS (EPSG:3857, metres); transforms are the identity."""

    def describe(self, crs: str) -> SpatialRef:
        return SpatialRef.from_epsg(3857)

    def is_geographic(self, crs: str) -> bool:
        return False

    def validate(self, sr: SpatialRef) -> str:
        if sr.epsg != 3857:
            raise NotSupported(f"Only {CRS} is known to the identity projector.")
        return CRS

    def _check(self, src: str, dst: str) -> None:
        if src != CRS or dst != CRS:
            raise NotSupported(f"Only {CRS} is known to the identity projector.")

    def transform_extent(self, extent: Extent, src: str, dst: str) -> Extent:
        self._check(src, dst)
        return extent

    def transform_points(
        self, xs: Sequence[float], ys: Sequence[float], src: str, dst: str
    ) -> tuple[list[float], list[float]]:
        self._check(src, dst)
        return list(xs), list(ys)

    def meters_per_unit(self, crs: str) -> float:
        return 1.0


class RawEncoder:
    """Returns a block's raw bytes and keeps the blocks it was given."""

    def __init__(self) -> None:
        self.blocks: list[PixelBlock] = []

    def encode(
        self,
        block: PixelBlock,
        fmt: str,
        *,
        extent: Extent,
        crs: str,
        quality: int = 75,
        lerc_tolerance: float = 0.0,
        lerc_version: int = 2,
    ) -> EncodedImage:
        self.blocks.append(block)
        return EncodedImage(block.data.tobytes(), "application/octet-stream", "raw")


# --- builders -----------------------------------------------------------------------------


def make_item(
    oid: int,
    xmin: float,
    ymax: float,
    cols: int,
    rows: int,
    *,
    cell: float = 1.0,
    bands: int = 1,
    time: int | None = None,
    variable: str | None = None,
    dimensions: Mapping[str, float] | None = None,
    attributes: Mapping[str, Any] | None = None,
    high_ps: float | None = None,
    pixel_type: PixelType = "U8",
    footprint: tuple[tuple[float, float], ...] | None = None,
) -> RasterItem:
    """A catalog item on a north-up grid in EPSG:3857 (uri ``mem://<oid>``)."""
    ext = Extent(xmin, ymax - rows * cell, xmin + cols * cell, ymax)
    ring = footprint or (
        (ext.xmin, ext.ymin),
        (ext.xmin, ext.ymax),
        (ext.xmax, ext.ymax),
        (ext.xmax, ext.ymin),
        (ext.xmin, ext.ymin),
    )
    return RasterItem(
        path=f"/mem/{oid}.tif",
        uri=f"mem://{oid}",
        name=f"item{oid}",
        bands=tuple(range(1, bands + 1)),
        footprint=ring,
        extent=ext,
        native_crs=CRS,
        native_extent=ext,
        width=cols,
        height=rows,
        cell_size_x=cell,
        cell_size_y=cell,
        low_ps=cell,
        high_ps=cell if high_ps is None else high_ps,
        pixel_type=pixel_type,
        band_names=tuple(f"Band_{b}" for b in range(1, bands + 1)),
        nodata=None,
        mask_kind="none",
        stats=(),
        file_size=0,
        file_mtime_ns=0,
        time=time,
        variable=variable,
        dimensions=dict(dimensions or {}),
        attributes=dict(attributes or {}),
        id=oid,
    )


@dataclass
class World:
    """A catalog, source, projector and encoder around one dataset named "ds"."""

    catalog: InMemoryCatalog = field(default_factory=InMemoryCatalog)
    source: GridRasterSource = field(default_factory=GridRasterSource)
    projector: IdentityProjector = field(default_factory=IdentityProjector)
    encoder: RawEncoder = field(default_factory=RawEncoder)
    dataset: MosaicDataset = field(default_factory=lambda: MosaicDataset("ds", CRS, id=1))

    def __post_init__(self) -> None:
        self.catalog.create_dataset(self.dataset)

    def add(self, item: RasterItem, data: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add an item and its pixels."""
        self.catalog.add("ds", [item])
        self.source.register(item.uri, data, valid)

    def snapshot(
        self,
        *,
        properties: Mapping[str, str] | None = None,
        band_stats: tuple[BandStats, ...] = (),
        variables: tuple[VariableSummary, ...] = (),
        pixel_type: PixelType = "U8",
        nodata: float | None = None,
    ) -> ServiceSnapshot:
        """A published snapshot of the dataset's current state."""
        base = self.catalog.summary("ds")
        summary = DatasetSummary(
            item_count=base.item_count,
            extent=base.extent,
            band_count=base.band_count,
            band_stats=band_stats,
            variables=variables,
            pixel_type=pixel_type,
            nodata=nodata,
            min_cell_size_x=1.0,
        )
        definition = ServiceDefinition("svc", "ds", properties=dict(properties or {}))
        return ServiceSnapshot(definition, self.dataset, summary, SpatialRef.from_epsg(3857), 1, 0)


def variable(name: str, **dims: Sequence[float]) -> VariableSummary:
    """A variable summary with the given dimension values."""
    return VariableSummary(
        name, tuple(DimensionSummary(d, tuple(sorted(v))) for d, v in dims.items())
    )


# --- sign-in attempts ------------------------------------------------------------------------
@dataclass
class InMemorySigninAttempts:
    """A :class:`~livemosaic.core.ports.SigninAttempts` in a dict (one process only)."""

    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def begin(self, username: str, address: str, now_ms: int, window_ms: int, limit: int) -> int:
        for key in list(self.rows):
            self.rows[key] = [t for t in self.rows[key] if t > now_ms - window_ms]
        times = self.rows.setdefault((username, address), [])
        if len(times) >= limit:
            return max(1, times[len(times) - limit] + window_ms - now_ms)
        times.append(now_ms)
        return 0

    def succeeded(self, username: str, address: str) -> None:
        self.rows.pop((username, address), None)
