"""Interfaces the domain core needs from the outside world (implemented in ``adapters``).

* :class:`CatalogStore` — mosaic datasets, their items, summaries, history, services and
  published snapshots (SQLite by default; PostgreSQL later).
* :class:`RasterSource` — inspect a file into items; read warped pixel blocks; sample points.
* :class:`Projector` — spatial reference resolution and coordinate transformation.
* :class:`ImageEncoder` — pixel blocks to PNG/JPEG/TIFF/LERC bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

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


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of adding the items of one or more files."""

    added: tuple[int, ...] = ()  # new OBJECTIDs
    skipped_paths: tuple[str, ...] = ()  # same path, size and mtime already in the catalog
    replaced_paths: tuple[str, ...] = ()  # same path with a new size/mtime: old items replaced


class CatalogStore(Protocol):
    """Persistent catalog of mosaic datasets, services and snapshots.

    Implementations keep the dataset summary current in the same transaction as every add
    and remove, so :meth:`summary` is a constant-time read; readers never see half a write.
    """

    def create_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Create a dataset (AlreadyExists if the name is taken); returns it with its id."""
        ...

    def get_dataset(self, name: str) -> MosaicDataset:
        """The dataset with this name, case-insensitive (DatasetNotFound otherwise)."""
        ...

    def list_datasets(self) -> list[MosaicDataset]:
        """All datasets by name."""
        ...

    def update_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        """Change settings of a dataset (crs only while it is empty)."""
        ...

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset, its items and history (never the files)."""
        ...

    def file_state(self, dataset: str, path: str) -> tuple[int, int] | None:
        """(size, mtime_ns) recorded for a path in a dataset, or None when absent."""
        ...

    def add_items(self, dataset: str, items: Sequence[RasterItem]) -> AddResult:
        """Add items in one transaction, idempotent per (path, size, mtime)."""
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

    def summary(self, dataset: str) -> DatasetSummary:
        """The current dataset summary, O(1)."""
        ...

    def history(self, dataset: str, limit: int = 100) -> list[HistoryEntry]:
        """Most recent geoprocessing-history entries first."""
        ...

    def save_service(self, definition: ServiceDefinition, *, create: bool) -> None:
        """Create (create=True, AlreadyExists if present) or replace a service definition."""
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
        """Persist a published snapshot; its version must exceed the stored one."""
        ...

    def latest_snapshot(self, folder: str, name: str) -> ServiceSnapshot | None:
        """The last persisted snapshot of a service, if any."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def snapshot_versions(self) -> dict[str, int]:
        """Newest stored snapshot version per service, keyed ``folder/name`` lower-cased.

        Keys are :func:`livemosaic.core.registry.service_key`; services without a snapshot
        are absent. One cheap indexed query, polled by every server process to notice
        refreshes done elsewhere.
        """
        ...


@dataclass(frozen=True, slots=True)
class InspectOptions:
    """How to turn a file into catalog items."""

    dataset_crs: str | None  # "EPSG:n"/WKT; None = keep the file's own CRS
    time_pattern: str | None = None  # regex with named groups Y m d H M S, applied to file names
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
    ) -> EncodedImage:
        """Bytes of ``block`` in ``fmt``; 8-bit formats expect uint8 data."""
        ...


ProgressCallback = Callable[[int, int, str], None]  # (done, total, current path)


__all__ = [
    "AddResult",
    "CatalogStore",
    "DimensionFilter",
    "EncodedImage",
    "ImageEncoder",
    "ImageFormat",
    "IngestJournal",
    "InspectOptions",
    "JournalEntry",
    "JournalState",
    "JobStore",
    "UserStore",
    "ItemQuery",
    "PixelBlock",
    "ProgressCallback",
    "Projector",
    "RasterSource",
    "ReadRequest",
    "RemoveFilter",
    "Resampling",
    "SigninAttempts",
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

    ``commit`` stores items and their journal rows in ONE catalog transaction, so after a
    crash at any point a file is either fully added and journaled, or neither.
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
        """Add items (idempotent per path, size, mtime) and write entries in one transaction."""
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
