"""Adding rasters to a mosaic dataset: files and folders in, catalog items out.

Rasters are referenced in place, never copied, and only from registered data folders. Each
file is inspected (and its pixels read) before anything is written; a file that fails is
reported with its reason and contributes nothing. Items of many files are written in batches,
one catalog transaction per batch; re-adding an unchanged file (same path, size and mtime) is
a no-op.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from livemosaic.core.folders import real_folders, resolve_inside
from livemosaic.core.models import MosaicDataset, RasterItem
from livemosaic.core.objects import ObjectStore, StoredObject, check_allowed_object, gdal_name
from livemosaic.core.ports import (
    CatalogStore,
    InspectOptions,
    ProgressCallback,
    RasterSource,
    RemoveFilter,
)
from livemosaic.core.publishing import validate_name
from livemosaic.errors import InvalidParameter, LiveMosaicError, PathNotAllowed, RasterRejected

# Files GDAL looks for beside a raster and opens or reads as part of it (masks, overviews,
# headers, world files): never rasters of their own. The raster adapters check each of them
# against the data folders.
GDAL_SIDECAR_SUFFIXES = (
    ".msk",
    ".aux.xml",
    ".ovr",
    ".gri",
    ".hdr",
    ".aux",
    ".rrd",
    ".tfw",
    ".tifw",
    ".wld",
    ".jgw",
    ".pgw",
    ".prj",
    ".tab",
)
# Files that are not rasters to add: GDAL's sidecars and producers' notes and markers.
SIDECAR_SUFFIXES = (*GDAL_SIDECAR_SUFFIXES, ".xml", ".txt", ".md", ".json", ".done")
# Names of files still being written or hidden.
TEMPORARY_PATTERNS = ("*.part", "*.tmp", "*.partial", "*.crdownload", "~*", ".*")


def rejection_reason(exc: LiveMosaicError, path: str) -> str:
    """Why a file was refused, with what to do about it (an HDF4 file says how to convert it),
    without the file name the caller already shows."""
    return str(exc).removeprefix(f"{path}: ")


@dataclass(slots=True)
class IngestReport:
    """What an add did: counts and, for every rejected file, its reason."""

    added: int = 0  # items added
    files_added: int = 0
    skipped: int = 0  # files already in the catalog unchanged
    replaced: int = 0  # files whose older items were replaced
    rejected: list[tuple[str, str]] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)


MAX_TIME_FIELD = 200  # characters of a time field name or format


def validate_time_field(time_field: str | None, time_format: str | None) -> None:
    """InvalidParameter for a malformed time-field mapping (``[DOMAIN:]NAME`` and a strftime
    format such as ``%Y-%m-%dT%H:%M:%S%z``)."""
    if time_field is not None:
        name = time_field.rpartition(":")[2].strip()
        if not name or len(time_field) > MAX_TIME_FIELD or any(c in time_field for c in "\r\n"):
            raise InvalidParameter(
                "time_field",
                f"'{time_field[:60]}' is not a metadata item name.",
                accepted="[DOMAIN:]NAME such as time_coverage_start, TIFFTAG_DATETIME or "
                f"IMAGERY:ACQUISITIONDATETIME (at most {MAX_TIME_FIELD} characters)",
            )
    if time_format is not None:
        if "%" not in time_format or len(time_format) > MAX_TIME_FIELD:
            raise InvalidParameter(
                "time_format",
                f"'{time_format[:60]}' is not a date format.",
                accepted="a strftime format such as %Y-%m-%dT%H:%M:%SZ or %Y%m%d",
            )
        if time_field is None:
            raise InvalidParameter(
                "time_format", "a time format needs a time field.", accepted="--time-field NAME"
            )


def inspect_options(ds: MosaicDataset, *, compute_stats: bool = True) -> InspectOptions:
    """How files are inspected for dataset ``ds``: its CRS, time pattern and time field."""
    return InspectOptions(
        dataset_crs=ds.crs,
        time_pattern=ds.time_pattern,
        time_field=ds.time_field,
        time_format=ds.time_format,
        compute_stats=compute_stats,
    )


def is_candidate(path: Path) -> bool:
    """True for a file that may be a raster (not a sidecar, not temporary or hidden)."""
    name = path.name
    lower = name.lower()
    if any(fnmatch.fnmatch(name, pat) for pat in TEMPORARY_PATTERNS):
        return False
    return not any(lower.endswith(suffix) for suffix in SIDECAR_SUFFIXES)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


class Ingestor:
    """Creates datasets and adds or removes their items, within the registered data folders."""

    def __init__(
        self,
        catalog: CatalogStore,
        source: RasterSource,
        allowed_folders: Sequence[Path],
        *,
        batch_size: int = 200,
        objects: ObjectStore | None = None,
        object_prefixes: Sequence[str] = (),
    ) -> None:
        self.catalog = catalog
        self.source = source
        self.allowed = real_folders(allowed_folders)
        self.objects = objects
        self.object_prefixes = tuple(object_prefixes)
        self.batch_size = batch_size

    # -- paths -------------------------------------------------------------------------
    def check_allowed(self, path: str | Path) -> Path:
        """The real path of ``path`` if it lies inside a registered data folder."""
        real = resolve_inside(path, self.allowed)
        if real is None:
            raise PathNotAllowed(str(path))
        return real

    def expand(
        self,
        paths: Sequence[str | Path],
        *,
        recursive: bool = True,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> Iterator[Path]:
        """Candidate raster files under the given files and folders, sorted per folder."""
        for raw in paths:
            real = self.check_allowed(raw)
            if real.is_file():
                yield real
                continue
            if not real.is_dir():
                raise InvalidParameter(
                    "path", f"{raw} does not exist.", accepted="an existing file or folder"
                )
            walker = os.walk(real) if recursive else [(str(real), [], os.listdir(real))]
            for root, dirs, files in walker:
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    p = Path(root) / name
                    rel = p.relative_to(real).as_posix()
                    if not p.is_file() or not is_candidate(p):
                        continue
                    if include and not _matches(rel, include):
                        continue
                    if exclude and _matches(rel, exclude):
                        continue
                    # a symlink inside a data folder must not lead outside of it
                    try:
                        yield self.check_allowed(p)
                    except PathNotAllowed:
                        continue

    def expand_objects(
        self,
        names: Sequence[str],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> Iterator[StoredObject]:
        """Candidate raster objects: each name is one object, or a prefix ending in ``/``
        whose objects are all candidates (recursively, as object stores have no folders)."""
        for raw in names:
            name = check_allowed_object(gdal_name(raw) or raw, self.object_prefixes)
            if self.objects is None:
                raise InvalidParameter(
                    "path",
                    f"{raw}: no object store is configured in this process.",
                    accepted="files inside the data folders",
                )
            if not name.endswith("/"):
                yield self.objects.stat(name)
                continue
            for obj in self.objects.list(name):
                rel = obj.name[len(name) :]
                if not is_candidate(Path(rel)) or (include and not _matches(rel, include)):
                    continue
                if exclude and _matches(rel, exclude):
                    continue
                yield obj

    # -- datasets ------------------------------------------------------------------------
    def create_dataset(
        self,
        name: str,
        crs: str | None = None,
        *,
        time_pattern: str | None = None,
        history: bool = True,
        description: str = "",
        time_field: str | None = None,
        time_format: str | None = None,
    ) -> MosaicDataset:
        """Create an empty mosaic dataset; ``crs`` None means "from the first raster added"."""
        validate_name("dataset", name)
        validate_time_field(time_field, time_format)
        return self.catalog.create_dataset(
            MosaicDataset(
                name=name,
                crs=crs or "",
                time_pattern=time_pattern,
                history_enabled=history,
                description=description,
                time_field=time_field or None,
                time_format=time_format or None,
            )
        )

    # -- adding ---------------------------------------------------------------------------
    def add_paths(
        self,
        dataset: str,
        paths: Sequence[str | Path],
        *,
        recursive: bool = True,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Add every raster found under ``paths`` to ``dataset``."""
        ds = self.catalog.get_dataset(dataset)
        local = [p for p in paths if gdal_name(str(p)) is None]
        remote = [str(p) for p in paths if gdal_name(str(p)) is not None]
        files: list[Path | StoredObject] = [
            *self.expand(local, recursive=recursive, include=include, exclude=exclude),
            *self.expand_objects(remote, include=include, exclude=exclude),
        ]
        report = IngestReport()
        pending: list[RasterItem] = []
        pending_files = 0
        total = len(files)
        for index, entry in enumerate(files):
            path = entry.name if isinstance(entry, StoredObject) else str(entry)
            if progress is not None:
                progress(index, total, path)
            if isinstance(entry, StoredObject):
                state = (entry.size, entry.mtime_ns)
            else:
                try:
                    st = entry.stat()
                except OSError as exc:
                    report.rejected.append((path, f"cannot be read: {exc.strerror}"))
                    continue
                state = (st.st_size, st.st_mtime_ns)
            if self.catalog.file_state(ds.name, path) == state:
                report.skipped += 1
                continue
            if not ds.crs:
                try:
                    crs = self.source.file_crs(path)
                except RasterRejected as exc:
                    report.rejected.append((path, rejection_reason(exc, path)))
                    continue
                ds = self.catalog.update_dataset(replace(ds, crs=crs))
            options = inspect_options(ds)
            try:
                items = self.source.inspect(path, options)
            except LiveMosaicError as exc:
                report.rejected.append((path, rejection_reason(exc, path)))
                continue
            if not items:
                report.rejected.append((path, "the file holds no raster data"))
                continue
            if isinstance(entry, StoredObject):  # the store's size and time, not the reader's
                items = [replace(i, file_size=entry.size, file_mtime_ns=entry.mtime_ns)
                         for i in items]  # fmt: skip
            pending.extend(items)
            pending_files += 1
            if len(pending) >= self.batch_size:
                self._flush(ds.name, pending, pending_files, report)
                pending, pending_files = [], 0
        if pending:
            self._flush(ds.name, pending, pending_files, report)
        if progress is not None:
            progress(total, total, "")
        return report

    def _flush(
        self, dataset: str, items: list[RasterItem], files: int, report: IngestReport
    ) -> None:
        result = self.catalog.add_items(dataset, items)
        report.added += len(result.added)
        report.item_ids.extend(result.added)
        report.skipped += len(result.skipped_paths)
        report.replaced += len(result.replaced_paths)
        report.files_added += files - len(result.skipped_paths)

    # -- removing -------------------------------------------------------------------------
    def remove(self, dataset: str, where: RemoveFilter) -> int:
        """Remove items matching a filter; returns how many."""
        if where.path is not None:
            folder = where.path.endswith("/")
            real = str(Path(os.path.realpath(where.path)))
            where = replace(where, path=real + "/" if folder else real)
        return self.catalog.remove_items(dataset, where)
