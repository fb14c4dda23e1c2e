"""Interfaces the domain core needs from the outside world (implemented in ``adapters``).

Stores, split by what they hold (one database holds them all; SQLite by default):

* :class:`DatasetStore` — mosaic datasets.
* :class:`ItemStore` — items of the datasets, with each dataset's summary and history.
* :class:`ServiceStore` — service definitions and published snapshots.
* :class:`CatalogStore` — the three above together (and ``close``).
* :class:`JobStore` — geoprocessing jobs, claimed once across processes.
* :class:`UserStore` — users.
* :class:`SigninAttempts` — failed sign-in attempts, for throttling.
* :class:`IngestJournal` — per-file ingest states; :meth:`IngestJournal.commit` is the unit of
  work that adds items and journals them in one transaction.

Other ports:

* :class:`RasterSource` — inspect a file into items; read warped pixel blocks; sample points.
* :class:`Projector` — spatial reference resolution and coordinate transformation.
* :class:`ImageEncoder` — pixel blocks to PNG/JPEG/TIFF/LERC bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from livemosaic.core.jobs import Job
from livemosaic.core.models import (
    DatasetSummary,
    Extent,
    HistoryEntry,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
    SpatialRef,
)
from livemosaic.core.security import User
from livemosaic.core.where_ast import Condition

Resampling = Literal["nearest", "bilinear", "cubic", "mode"]


@dataclass(frozen=True, slots=True)
class DimensionFilter:
    """Keep items whose variable / dimension value matches (multidimensionalDefinition)."""

    variable: str | None  # None or "" = any variable
    dimension: str | None  # "StdTime", "StdZ", or another dimension name; None = variable only
    values: tuple[float | tuple[float, float], ...] = ()  # exact values or [from, to] ranges


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """Which items of a dataset to return, and in what order.

    All filters combine with AND. ``extent`` is in the dataset's CRS and matches items whose
    bounding box intersects it (an index lookup); ``time`` is an inclusive window whose either
    end may be None (open). ``order_by`` holds (field name, ascending) pairs over catalog
    fields; the default order is OBJECTID ascending.
    """

    object_ids: tuple[int, ...] | None = None
    extent: Extent | None = None
    time: tuple[int | None, int | None] | None = None
    where: Condition | None = None
    dimensions: tuple[DimensionFilter, ...] = ()
    pixel_size: float | None = None  # keep items with LowPS <= pixel_size * 2 and MaxPS >= ..
    order_by: tuple[tuple[str, bool], ...] = ()
    offset: int = 0
    limit: int | None = None
    # order by the distance of item centres to this point (dataset CRS) before ``order_by``;
    # nearest first unless ``nearest_ascending`` is False
    nearest_to: tuple[float, float] | None = None
    nearest_ascending: bool = True


@dataclass(frozen=True, slots=True)
class RemoveFilter:
    """Which items to remove; fields combine with AND; at least one must be set."""

    object_ids: tuple[int, ...] | None = None
    where: Condition | None = None
    path: str | None = None  # exact file path, or a folder prefix ending in "/"
    older_than: int | None = None  # items whose time is before this epoch ms


StatisticType = Literal["count", "min", "max", "avg", "sum", "stddev", "var"]
STATISTIC_TYPES: tuple[StatisticType, ...] = ("count", "min", "max", "avg", "sum", "stddev", "var")


@dataclass(frozen=True, slots=True)
class FieldStatistic:
    """One statistic over a catalog field (ArcGIS ``outStatistics``).

    ``count`` counts the items whose field is not null (any field); the others take the
    numeric values of numeric fields (:data:`livemosaic.core.fields.NUMERIC_FIELD_TYPES`) and
    are None without any, or for other fields. ``stddev`` and ``var`` are the sample ones
    (n - 1; 0.0 for one value).
    """

    kind: StatisticType
    field: str  # canonical catalog field name
    out_name: str


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of adding the items of one or more files."""

    added: tuple[int, ...] = ()  # new OBJECTIDs
    skipped_paths: tuple[str, ...] = ()  # same path, size and mtime already in the catalog
    replaced_paths: tuple[str, ...] = ()  # same path with a new size/mtime: old items replaced


class DatasetStore(Protocol):
    """Mosaic datasets: their names, spatial reference and settings."""

    def create_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Create a dataset (AlreadyExists if the name is taken); returns it with its id.

        The new dataset has an empty summary, and a "create" history entry when its history
        is enabled.
        """
        ...

    def get_dataset(self, name: str) -> MosaicDataset:
        """The dataset with this name, case-insensitive (DatasetNotFound otherwise)."""
        ...

    def list_datasets(self) -> list[MosaicDataset]:
        """All datasets by name."""
        ...

    def update_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Change settings of a dataset, found by id (else by name).

        The crs changes only while the dataset is empty (InvalidParameter otherwise); a
        rename or delete is refused while a service publishes the dataset.
        """
        ...

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset, its items, summary, history and journal (never the files)."""
        ...


class ItemStore(Protocol):
    """The items of every dataset, with each dataset's summary and history.

    Implementations keep the dataset summary current in the same transaction as every add
    and remove, so :meth:`summary` is a constant-time read; readers never see half a write.
    Every method raises DatasetNotFound for an unknown dataset.
    """

    def file_state(self, dataset: str, path: str) -> tuple[int, int] | None:
        """(size, mtime_ns) recorded for a path in a dataset, or None when absent."""
        ...

    def add_items(self, dataset: str, items: Sequence[RasterItem]) -> AddResult:
        """Add items in one transaction, idempotent per (path, size, mtime).

        Items of a path already stored with the same size and mtime are skipped; with another
        size or mtime the stored items of that path are replaced. Items whose extent is not a
        valid rectangle are refused (RasterRejected) and nothing is added. To write the
        ingest journal's rows in the same transaction use :meth:`IngestJournal.commit`.
        """
        ...

    def remove_items(self, dataset: str, where: RemoveFilter) -> int:
        """Remove matching items in one transaction; returns how many."""
        ...

    def find_items(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        """Items matching a query: O(log n + k) through the spatial and time indexes."""
        ...

    def count_items(self, dataset: str, query: ItemQuery) -> int:
        """How many items match (offset and limit ignored)."""
        ...

    def get_item(self, dataset: str, object_id: int) -> RasterItem:
        """One item (ItemNotFound otherwise)."""
        ...

    def item_ids(self, dataset: str, query: ItemQuery) -> list[int]:
        """The OBJECTIDs :meth:`find_items` would return, in its order and page."""
        ...

    def item_extent(self, dataset: str, query: ItemQuery) -> Extent | None:
        """The union of the matching items' extents (None when none match), aggregated by
        the store; offset and limit are ignored."""
        ...

    def item_statistics(
        self,
        dataset: str,
        query: ItemQuery,
        statistics: Sequence[FieldStatistic],
        group_by: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Statistics of the matching items, aggregated by the store.

        One row per distinct combination of the ``group_by`` fields (canonical names),
        ordered by them ascending (nulls first), each holding those fields and every
        statistic under its ``out_name``. Without ``group_by`` one row, even when no item
        matches. The query's offset and limit page the rows; its order_by is ignored.
        """
        ...

    def distinct_values(
        self, dataset: str, query: ItemQuery, fields: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """The distinct combinations of ``fields`` (canonical names) among matching items.

        Ordered by the query's order_by fields that are among ``fields``, then by ``fields``
        ascending (nulls first); the query's offset and limit page the rows.
        """
        ...

    def summary(self, dataset: str) -> DatasetSummary:
        """The current dataset summary, O(1); its version grows with every change."""
        ...

    def history(self, dataset: str, limit: int = 100) -> list[HistoryEntry]:
        """Most recent geoprocessing-history entries first (when the dataset keeps them)."""
        ...


class ServiceStore(Protocol):
    """Image service definitions and their published snapshots."""

    def save_service(self, definition: ServiceDefinition, *, create: bool) -> None:
        """Create (create=True, AlreadyExists if present) or replace a service definition.

        The dataset must exist (DatasetNotFound); names follow SERVICE_NAME_PATTERN.
        """
        ...

    def get_service(self, folder: str, name: str) -> ServiceDefinition:
        """A service by folder and name, case-insensitive (ServiceNotFound otherwise)."""
        ...

    def list_services(self) -> list[ServiceDefinition]:
        """Every service, by folder then name."""
        ...

    def delete_service(self, folder: str, name: str) -> None:
        """Delete a service definition and its snapshots (not the dataset)."""
        ...

    def save_snapshot(self, snapshot: ServiceSnapshot) -> ServiceSnapshot:
        """Persist a published snapshot; its version must exceed the stored one.

        ServiceNotFound when the service is not defined; AlreadyExists when the version is
        not newer than the stored one. Only the newest few snapshots are kept.
        """
        ...

    def latest_snapshot(self, folder: str, name: str) -> ServiceSnapshot | None:
        """The last persisted snapshot of a service, if any."""
        ...

    def snapshot_versions(self) -> dict[str, int]:
        """Newest stored snapshot version per service, keyed ``folder/name`` lower-cased.

        Keys are :func:`livemosaic.core.registry.service_key`; services without a snapshot
        are absent. One cheap indexed query, polled by every server process to notice
        refreshes done elsewhere.
        """
        ...


class CatalogStore(DatasetStore, ItemStore, ServiceStore, Protocol):
    """The catalog database as a whole: datasets, items and services (SQLite by default).

    Use cases that need one part depend on that port alone (:class:`DatasetStore`,
    :class:`ItemStore`, :class:`ServiceStore`); this union is for those that span them and
    for whoever owns the connections.
    """

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class InspectOptions:
    """How to turn a file into catalog items."""

    dataset_crs: str | None  # "EPSG:n"/WKT; None = keep the file's own CRS
    time_pattern: str | None = None  # regex with named groups Y m d H M S, applied to file names
    time_field: str | None = None  # metadata item with the acquisition time ([DOMAIN:]NAME)
    time_format: str | None = None  # strftime format of its value (None: ISO 8601 & co.)
    validate_pixels: bool = True  # read pixels (overview-accelerated) to reject truncated files
    compute_stats: bool = True


@dataclass(slots=True)
class PixelBlock:
    """A block of pixels: ``data`` (bands, rows, cols) and ``valid`` (rows, cols) booleans."""

    data: npt.NDArray[np.generic]
    valid: npt.NDArray[np.bool_]
    band_names: tuple[str, ...] = ()
    nodata: float | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(bands, rows, cols)."""
        b, r, c = self.data.shape
        return int(b), int(r), int(c)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A target grid: extent in ``crs`` split into width x height pixels."""

    extent: Extent
    crs: str
    width: int
    height: int
    resampling: Resampling = "nearest"
    bands: tuple[int, ...] | None = None  # 0-based indexes into the item's bands; None = all
    # read an item in degrees as if its longitudes were moved by this much (a grid stored in
    # 0..360 drawn west of 0 is read with -360): one Earth in both conventions
    lon_shift: float = 0.0


class RasterSource(Protocol):
    """Reads raster files: metadata and validation at ingest, warped windows at request time."""

    def inspect(self, path: str, options: InspectOptions) -> list[RasterItem]:
        """Every item a file holds (one per slice for multidimensional files).

        Raises RasterRejected with a clear reason when the file cannot be opened, has no
        georeferencing, or its pixels cannot be read.
        """
        ...

    def file_crs(self, path: str) -> str:
        """The CRS of a file ("EPSG:n" or WKT), for datasets that take it from the first raster."""
        ...

    def read(self, item: RasterItem, request: ReadRequest) -> PixelBlock | None:
        """Item pixels resampled onto the request grid; None when nothing overlaps."""
        ...


class Projector(Protocol):
    """Spatial reference resolution and coordinate transformation."""

    def describe(self, crs: str) -> SpatialRef:
        """The ArcGIS spatial reference of a CRS string (wkid when one exists, else wkt)."""
        ...

    def validate(self, sr: SpatialRef) -> str:
        """The CRS key of a client spatial reference; InvalidParameter if unknown."""
        ...

    def transform_extent(self, extent: Extent, src: str, dst: str) -> Extent:
        """Bounding box of a densified extent transformed from src to dst."""
        ...

    def transform_points(
        self, xs: Sequence[float], ys: Sequence[float], src: str, dst: str
    ) -> tuple[list[float], list[float]]:
        """Transform coordinates (infinite where undefined)."""
        ...

    def meters_per_unit(self, crs: str) -> float:
        """Ground metres of one unit of a CRS (approximate for degrees)."""
        ...

    def is_geographic(self, crs: str) -> bool:
        """True for a CRS in degrees of longitude and latitude (EPSG:4326, NAD83, …)."""
        ...


ImageFormat = Literal[
    "png", "png8", "png24", "png32", "jpg", "jpgpng", "tiff", "lerc", "bmp", "gif", "bip", "bsq"
]
# exportImage's ``compression`` (6.1.1), which applies to TIFF only: None (ArcGIS's default:
# uncompressed), JPEG (8-bit data; other data is written with LZ77), LZ77 (deflate), LERC
# (within ``compressionTolerance``)
TiffCompression = Literal["None", "JPEG", "LZ77", "LERC"]
TIFF_COMPRESSIONS: tuple[TiffCompression, ...] = ("None", "JPEG", "LZ77", "LERC")


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """Encoded bytes with their content type and file extension."""

    content: bytes
    content_type: str
    extension: str


class ImageEncoder(Protocol):
    """Encodes pixel blocks in the exportImage formats (6.1.2)."""

    def encode(
        self,
        block: PixelBlock,
        fmt: ImageFormat,
        *,
        extent: Extent,
        crs: str,
        quality: int = 75,
        lerc_tolerance: float = 0.0,
        lerc_version: int = 2,
        compression: TiffCompression = "None",
    ) -> EncodedImage:
        """Bytes of ``block`` in ``fmt``; 8-bit formats expect uint8 data; ``compression``
        applies to TIFF."""
        ...


ProgressCallback = Callable[[int, int, str], None]  # (done, total, current path)


__all__ = [
    "TIFF_COMPRESSIONS",
    "TiffCompression",
    "AddResult",
    "CatalogStore",
    "DatasetStore",
    "DimensionFilter",
    "EncodedImage",
    "FieldStatistic",
    "ImageEncoder",
    "ImageFormat",
    "IngestJournal",
    "InspectOptions",
    "JournalEntry",
    "JournalState",
    "JobStore",
    "ItemQuery",
    "ItemStore",
    "PixelBlock",
    "ProgressCallback",
    "Projector",
    "RasterSource",
    "ReadRequest",
    "RemoveFilter",
    "Resampling",
    "STATISTIC_TYPES",
    "ServiceStore",
    "SigninAttempts",
    "StatisticType",
    "UserStore",
]


class JobStore(Protocol):
    """Persistent geoprocessing jobs (in the catalog database), shared by server processes."""

    def create_job(self, job: Job) -> Job:
        """Store a new job."""
        ...

    def get_job(self, job_id: str) -> Job:
        """A job by id (NotFound "Job not found." otherwise)."""
        ...

    def update_job(self, job: Job, *, expected_status: str) -> Job:
        """Store a job's new state if its stored status is still ``expected_status``.

        Raises InvalidTransition when another process changed it first.
        """
        ...

    def claim_next_job(self, task: str, worker: str, now: int) -> Job | None:
        """Atomically move the oldest submitted job to executing for ``worker``.

        A job is not claimed while another job of the same ``service_key`` is executing, so
        jobs of one service never run at the same time, in any process.
        """
        ...

    def heartbeat(self, worker: str, now: int) -> None:
        """Record that a worker process is alive."""
        ...

    def requeue_orphans(self, stale_before: int, now: int) -> list[str]:
        """Put jobs executing on workers silent since ``stale_before`` back to submitted."""
        ...

    def delete_jobs_finished_before(self, when: int) -> int:
        """Delete finished jobs older than ``when``; returns how many."""
        ...


class UserStore(Protocol):
    """Users and the server secret, in the catalog database."""

    def add_user(self, user: User) -> None:
        """Create a user (AlreadyExists if the name is taken)."""
        ...

    def get_user(self, username: str) -> User:
        """A user by exact name (NotFound otherwise)."""
        ...

    def list_users(self) -> list[User]:
        """All users by name."""
        ...

    def save_user(self, user: User) -> None:
        """Replace a user's role, hash, epoch or disabled flag."""
        ...

    def remove_user(self, username: str) -> None:
        """Delete a user (NotFound otherwise)."""
        ...


class SigninAttempts(Protocol):
    """Failed sign-in attempts per (username, address), in the store every server process
    shares (the catalog database), so N processes allow no more attempts than one.

    An implementation must make :meth:`begin` atomic across processes: SQLite with a write
    transaction (``BEGIN IMMEDIATE``), PostgreSQL with a transaction that locks the key
    (e.g. ``pg_advisory_xact_lock``) around the same count and insert.
    """

    def begin(self, username: str, address: str, now_ms: int, window_ms: int, limit: int) -> int:
        """Count one attempt unless ``limit`` attempts are already in the window.

        Atomically: forget attempts older than ``now_ms - window_ms``; if fewer than ``limit``
        remain for the key, record one at ``now_ms`` and return 0 (go ahead); otherwise
        record nothing and return the milliseconds until the oldest counted attempt leaves
        the window.
        """
        ...

    def succeeded(self, username: str, address: str) -> None:
        """Forget the attempts of a key after a good sign-in."""
        ...


JournalState = Literal["pending", "added", "quarantined"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One file's ingest state in a dataset: the durable record behind exactly-once ingest.

    Keyed by (dataset, path); ``size`` and ``mtime_ns`` say which version of the file the
    state is about, so a changed file (a fixed copy dropped again) is taken anew.
    """

    dataset: str
    path: str
    size: int
    mtime_ns: int
    state: JournalState
    reason: str = ""  # why a file was quarantined
    item_count: int = 0  # items the file gave when added
    moved_to: str | None = None  # where a quarantined file was moved (move mode)
    first_seen: int = 0  # epoch ms, kept across updates
    updated: int = 0  # epoch ms of the last change

    @property
    def key(self) -> tuple[int, int]:
        """(size, mtime_ns): the file version this entry describes."""
        return (self.size, self.mtime_ns)


class IngestJournal(Protocol):
    """Durable per-file ingest states, written with the items they describe.

    The journal lives in the catalog database. :meth:`commit` is the unit of work of
    exactly-once ingest: it adds items exactly as :meth:`ItemStore.add_items` does (summary,
    history, idempotence) and writes their journal rows in ONE transaction, so after a crash
    or an error at any point a file is either fully added and journaled, or neither. An
    implementation therefore shares the item store's database and transactions; it is
    opened together with it (``adapters.catalog.open_stores``), never derived from it.
    Every method naming a dataset raises DatasetNotFound for an unknown one; deleting a
    dataset deletes its entries.
    """

    def lookup(self, dataset: str, paths: Sequence[str]) -> dict[str, JournalEntry]:
        """The entries of these paths in a dataset (absent paths are left out)."""
        ...

    def record(self, entries: Sequence[JournalEntry]) -> None:
        """Insert or replace entries in one transaction (first_seen is kept)."""
        ...

    def commit(
        self, dataset: str, items: Sequence[RasterItem], entries: Sequence[JournalEntry]
    ) -> AddResult:
        """Add items and write ``entries`` (all of ``dataset``) in one transaction.

        Items are added as by :meth:`ItemStore.add_items`; entries are upserted as by
        :meth:`record`. If anything fails (a rejected item, a database error), neither the
        items nor the entries are stored.
        """
        ...

    def entries(
        self,
        dataset: str | None = None,
        state: JournalState | None = None,
        *,
        under: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries by dataset then path; ``under`` keeps paths inside a folder."""
        ...

    def forget(
        self,
        dataset: str | None = None,
        *,
        state: JournalState | None = None,
        paths: Sequence[str] | None = None,
    ) -> int:
        """Delete matching entries; returns how many."""
        ...
