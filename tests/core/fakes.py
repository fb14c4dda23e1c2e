"""In-memory implementations of the core ports for unit tests of the domain core.

These are honest, small implementations, not mocks: the stores of :mod:`tests.core.fake_stores`
(each passes the store contract tests), a numpy-backed raster source on a simple north-up
grid in one CRS ("EPSG:3857"), an identity projector for that CRS and an encoder that returns
the raw bytes of a block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
from livemosaic.core.ports import EncodedImage, InspectOptions, PixelBlock, ReadRequest
from livemosaic.errors import NotSupported
from tests.core.fake_stores import InMemoryCatalog, InMemorySigninAttempts

CRS = "EPSG:3857"


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
        compression: str = "None",
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


__all__ = [
    "CRS",
    "GridRasterSource",
    "IdentityProjector",
    "InMemoryCatalog",
    "InMemorySigninAttempts",
    "RawEncoder",
    "World",
    "make_item",
    "variable",
]
