"""Domain values: extents, spatial references, catalog items, datasets, summaries, services.

Everything here is an immutable value (frozen dataclass). Times are integers in epoch
milliseconds (UTC). Coordinates of an item's footprint and extent are in its mosaic dataset's
spatial reference. Spatial references are carried as :class:`SpatialRef`; adapters turn them
into library objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

WEB_MERCATOR_ALIASES = frozenset({3857, 102100, 102113, 900913})

# Integers the catalog stores (OBJECTIDs, times, sizes) are 64-bit signed.
MAX_CATALOG_INT = 2**63 - 1
# Times are epoch milliseconds of dates a calendar can name: 0001-01-01 … 9999-12-31 (UTC).
MIN_TIME_MS = -62135596800000
MAX_TIME_MS = 253402300799999

PixelType = Literal[
    "U1", "U2", "U4", "U8", "S8", "U16", "S16", "U32", "S32", "F32", "F64", "C64", "C128", "UNKNOWN"
]
MaskKind = Literal["none", "nodata", "alpha", "mask", "nan"]

# Item attributes holding per-band unpacking factors when a file's bands are packed
# differently (``RasterItem.scale``/``offset`` then hold the first band's).
BAND_SCALES = "band_scales"
BAND_OFFSETS = "band_offsets"
# Item attribute of a file without a CRS of its own: the CRS it was assumed to be in.
ASSUMED_CRS = "assumed_crs"


@dataclass(frozen=True, slots=True)
class Extent:
    """An axis-aligned rectangle in some spatial reference's units."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def width(self) -> float:
        """Width in map units."""
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        """Height in map units."""
        return self.ymax - self.ymin

    @property
    def center(self) -> tuple[float, float]:
        """The centre point (x, y)."""
        return ((self.xmin + self.xmax) / 2.0, (self.ymin + self.ymax) / 2.0)

    def is_valid(self) -> bool:
        """True when all four numbers are finite and min <= max on both axes."""
        vals = (self.xmin, self.ymin, self.xmax, self.ymax)
        return (
            all(math.isfinite(v) for v in vals)
            and self.xmin <= self.xmax
            and self.ymin <= self.ymax
        )

    def intersects(self, other: Extent) -> bool:
        """True when the two rectangles share at least a boundary point."""
        return not (
            other.xmin > self.xmax
            or other.xmax < self.xmin
            or other.ymin > self.ymax
            or other.ymax < self.ymin
        )

    def intersection(self, other: Extent) -> Extent | None:
        """The shared rectangle, or None when they do not overlap."""
        if not self.intersects(other):
            return None
        return Extent(
            max(self.xmin, other.xmin),
            max(self.ymin, other.ymin),
            min(self.xmax, other.xmax),
            min(self.ymax, other.ymax),
        )

    def union(self, other: Extent | None) -> Extent:
        """The smallest rectangle holding both."""
        if other is None:
            return self
        return Extent(
            min(self.xmin, other.xmin),
            min(self.ymin, other.ymin),
            max(self.xmax, other.xmax),
            max(self.ymax, other.ymax),
        )

    @staticmethod
    def union_all(extents: Iterable[Extent]) -> Extent | None:
        """Union of many extents (None for none)."""
        out: Extent | None = None
        for e in extents:
            out = e if out is None else out.union(e)
        return out


@dataclass(frozen=True, slots=True)
class SpatialRef:
    """A spatial reference as ArcGIS clients spell it: a well-known id or a WKT string.

    ``wkid`` is the Esri/EPSG code as sent (102100 stays 102100); ``latest_wkid`` the current
    code (3857). ``wkt`` is set for systems without a code.
    """

    wkid: int | None = None
    latest_wkid: int | None = None
    wkt: str | None = None

    @property
    def epsg(self) -> int | None:
        """The EPSG code to use for this system, folding web mercator aliases to 3857."""
        code = self.latest_wkid or self.wkid
        if code in WEB_MERCATOR_ALIASES:
            return 3857
        return code

    @property
    def key(self) -> str:
        """A string any CRS library accepts: ``EPSG:n`` or the WKT."""
        if self.epsg is not None:
            return f"EPSG:{self.epsg}"
        if self.wkt:
            return self.wkt
        raise ValueError("spatial reference has neither wkid nor wkt")

    def same_as(self, other: SpatialRef) -> bool:
        """True when both name the same system by code or by identical WKT."""
        if self.epsg is not None or other.epsg is not None:
            return self.epsg == other.epsg
        return self.wkt == other.wkt

    def to_json(self) -> dict[str, Any]:
        """The ArcGIS JSON form (7.1): wkid + latestWkid, or wkt."""
        if self.epsg is not None:
            wkid = self.wkid if self.wkid is not None else self.epsg
            if self.epsg == 3857:
                return {"wkid": 102100, "latestWkid": 3857}
            return {"wkid": wkid, "latestWkid": self.latest_wkid or wkid}
        return {"wkt": self.wkt}

    @staticmethod
    def from_epsg(code: int) -> SpatialRef:
        """A reference by EPSG/Esri code."""
        if code in WEB_MERCATOR_ALIASES:
            return SpatialRef(wkid=102100, latest_wkid=3857)
        return SpatialRef(wkid=code, latest_wkid=code)


@dataclass(frozen=True, slots=True)
class BandStats:
    """Statistics of one band over valid pixels."""

    min: float
    max: float
    mean: float
    std: float
    count: int = 0  # number of valid pixels the statistics were computed from (0 = unknown)


@dataclass(frozen=True, slots=True)
class RasterItem:
    """One catalog item: a raster file, or one band-slice of a multidimensional file.

    ``uri`` is what the raster reader opens (a path or a GDAL subdataset string such as
    ``netcdf:"/data/x.nc":temp``); ``bands`` are the 1-based band indexes of ``uri`` that make
    up this item (a multidimensional slice is one band of a subdataset).
    """

    path: str
    uri: str
    name: str
    bands: tuple[int, ...]
    footprint: tuple[tuple[float, float], ...]  # closed outer ring, dataset CRS, clockwise
    extent: Extent  # bounding box of the footprint, dataset CRS
    native_crs: str  # "EPSG:n" or WKT of the file itself
    native_extent: Extent  # in native_crs
    width: int
    height: int
    cell_size_x: float  # native units
    cell_size_y: float
    low_ps: float  # cell size in dataset units (finest level)
    high_ps: float  # coarsest overview cell size in dataset units
    pixel_type: PixelType
    band_names: tuple[str, ...]
    nodata: float | None
    mask_kind: MaskKind
    stats: tuple[BandStats, ...]
    file_size: int
    file_mtime_ns: int
    time: int | None = None  # acquisition time / StdTime, epoch ms
    end_time: int | None = None  # for items covering an interval
    variable: str | None = None
    dimensions: Mapping[str, float] = field(default_factory=dict)  # e.g. {"StdZ": -10.0}
    attributes: Mapping[str, Any] = field(default_factory=dict)  # extra: units, descriptions, tags
    scale: float | None = None  # packed data: value = raw * scale + offset
    offset: float | None = None
    overview_count: int = 0
    id: int | None = None  # OBJECTID, set by the catalog
    date_added: int | None = None  # epoch ms, set by the catalog

    @property
    def band_count(self) -> int:
        """Number of bands of this item."""
        return len(self.bands)

    @property
    def is_packed(self) -> bool:
        """True when stored values are unpacked with a scale and an offset."""
        return self.scale is not None or self.offset is not None

    def unpack_factors(self, positions: Iterable[int]) -> tuple[list[float], list[float]]:
        """(scales, offsets) of the bands at 0-based ``positions`` of ``bands``.

        Each band uses its own factors (attributes :data:`BAND_SCALES`/:data:`BAND_OFFSETS`)
        when the file packs its bands differently, else the item's ``scale``/``offset``.
        """
        scale = 1.0 if self.scale is None else self.scale
        offset = 0.0 if self.offset is None else self.offset
        scales = self.attributes.get(BAND_SCALES) or ()
        offsets = self.attributes.get(BAND_OFFSETS) or ()
        out_s: list[float] = []
        out_o: list[float] = []
        for pos in positions:
            out_s.append(float(scales[pos]) if pos < len(scales) else scale)
            out_o.append(float(offsets[pos]) if pos < len(offsets) else offset)
        return out_s, out_o

    @property
    def min_ps(self) -> float:
        """ArcGIS MinPS: the finest cell size the item is displayed at (0 = no limit)."""
        return 0.0

    @property
    def max_ps(self) -> float:
        """ArcGIS MaxPS: the coarsest cell size the item is displayed at."""
        return self.high_ps * 2.0 if self.high_ps > 0 else 0.0

    def with_id(self, oid: int, date_added: int) -> RasterItem:
        """The same item with its catalog identity."""
        return replace(self, id=oid, date_added=date_added)


@dataclass(frozen=True, slots=True)
class MosaicDataset:
    """A catalog of raster items in one spatial reference."""

    name: str
    crs: str  # "EPSG:n" or WKT; "" until the first raster sets it
    time_pattern: str | None = None  # regex with named groups Y, m, d, H, M, S for file names
    history_enabled: bool = True
    description: str = ""
    id: int | None = None
    created: int | None = None
    # Time-field mapping: the metadata item holding a file's acquisition time
    # ("[DOMAIN:]NAME", e.g. "time_coverage_start" or "IMAGERY:ACQUISITIONDATETIME") and the
    # strftime format of its value (None: ISO 8601 and the other date forms of the REST API).
    time_field: str | None = None
    time_format: str | None = None


@dataclass(frozen=True, slots=True)
class DimensionSummary:
    """The values one dimension of one variable takes in the catalog."""

    name: str  # StdTime, StdZ, or the file's own dimension name
    values: tuple[float, ...]  # sorted, distinct; StdTime in epoch ms
    unit: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class VariableSummary:
    """One variable of a multidimensional dataset."""

    name: str
    dimensions: tuple[DimensionSummary, ...]
    unit: str = ""
    description: str = ""
    stats: BandStats | None = None
    item_count: int = 0


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """Aggregate description of a mosaic dataset, kept current by the catalog on every change."""

    item_count: int = 0
    extent: Extent | None = None
    min_cell_size_x: float | None = None  # smallest LowPS (x)
    min_cell_size_y: float | None = None
    max_cell_size_x: float | None = None  # largest HighPS (x)
    max_cell_size_y: float | None = None
    time_extent: tuple[int, int] | None = None
    variables: tuple[VariableSummary, ...] = ()
    band_count: int = 0  # the largest band count of any item
    band_names: tuple[str, ...] = ()
    pixel_type: PixelType = "UNKNOWN"  # widest pixel type of any item
    band_stats: tuple[BandStats, ...] = ()  # per band over all items (pooled)
    nodata: float | None = None
    version: int = 0  # increases with every change of the catalog


@dataclass(frozen=True, slots=True)
class Geometry:
    """A query/identify geometry in some spatial reference (ArcGIS JSON kinds)."""

    kind: Literal["point", "multipoint", "polyline", "polygon", "envelope"]
    # point/multipoint: points; polyline: paths; polygon: rings; envelope: one ring of 5 points
    parts: tuple[tuple[tuple[float, float], ...], ...]
    sr: SpatialRef | None = None

    @property
    def bbox(self) -> Extent:
        """Bounding box of all coordinates."""
        xs = [p[0] for part in self.parts for p in part]
        ys = [p[1] for part in self.parts for p in part]
        return Extent(min(xs), min(ys), max(xs), max(ys))

    @staticmethod
    def from_extent(ext: Extent, sr: SpatialRef | None = None) -> Geometry:
        """An envelope geometry."""
        ring = (
            (ext.xmin, ext.ymin),
            (ext.xmin, ext.ymax),
            (ext.xmax, ext.ymax),
            (ext.xmax, ext.ymin),
            (ext.xmin, ext.ymin),
        )
        return Geometry("envelope", (ring,), sr)


SERVICE_NAME_PATTERN = r"^[A-Za-z0-9_]+$"


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    """How a mosaic dataset is published: the admin configuration of an image service.

    ``properties`` holds the ArcGIS admin ``properties`` (string values, e.g. ``hasLiveData``;
    read them typed with :func:`livemosaic.core.service_properties.service_properties`);
    ``config`` the other top-level keys of the admin configuration JSON that are stored as-is.
    """

    name: str
    dataset: str
    folder: str = ""  # "" = root
    description: str = ""
    copyright: str = ""
    capabilities: str = "Image,Metadata,Catalog"
    configured_state: Literal["STARTED", "STOPPED"] = "STARTED"
    private: bool = False
    properties: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        """``Folder/Name`` or ``Name``."""
        return f"{self.folder}/{self.name}" if self.folder else self.name

    @property
    def has_live_data(self) -> bool:
        """True when ``properties.hasLiveData`` is "true" (see core.service_properties)."""
        from livemosaic.core.service_properties import service_properties  # imports this module

        return service_properties(self).has_live_data

    def prop(self, key: str, default: str) -> str:
        """An admin property as a string, with a default."""
        return str(self.properties.get(key, default))


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    """The published, immutable description of a service: what ``{svc}?f=json`` shows.

    A refresh builds a new snapshot from the dataset summary and swaps it in one step.
    ``version`` increases with every swap and is sent with every response.
    """

    definition: ServiceDefinition
    dataset: MosaicDataset
    summary: DatasetSummary
    spatial_reference: SpatialRef
    version: int
    published_at: int  # epoch ms

    @property
    def qualified_name(self) -> str:
        """``Folder/Name`` or ``Name``."""
        return self.definition.qualified_name


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One geoprocessing-history record of a mosaic dataset."""

    time: int
    operation: str
    details: Mapping[str, Any]
