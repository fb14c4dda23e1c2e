"""The ingest pipeline: a batch of complete files in, one catalog transaction, at most one refresh.

:class:`IngestPipeline` is what the folder watcher, ``livemosaic add`` and the HTTP notify
endpoint all call. For one batch it

1. skips files whose version (path, size, mtime) the journal already settled,
2. marks the rest ``pending`` in the journal, builds overviews when configured, and inspects
   each file (reading its pixels) into items; a bad file is quarantined with the reason
   (moved or only recorded) and never stops the batch; a file that changed while it was
   read (size, mtime or inode), or that failed while a writer still holds it open, is
   deferred and left pending: only a file that fails while stable is quarantined, and a move
   never races with its writer (:mod:`livemosaic.core.quarantine`),
3. writes the items of every good file and their journal rows in ONE transaction,
4. applies the rule's retention (old items removed),
5. keeps the dataset's mosaic overviews current (:mod:`livemosaic.core.overview_build`): the
   area of the new items is marked dirty *before* the commit, so from the moment they can be
   drawn no request there uses the old overviews; after it (and after retention) the tiles
   of the dirty area are rebuilt, and
6. requests ONE refresh per service whose published snapshot now differs from the dataset
   summary in extent, resolution, time extent or dimension values; otherwise nothing (new
   items are drawn without a refresh).

Exactly-once follows from step 3: after a crash a file is either added and journaled or
neither, and re-adding the same file version is a no-op. Pipelines of several processes
(watchers on several nodes over one shared catalog) are given a ``batch_lock``: a lock per
dataset that the store holds across processes for the whole batch, so a file is read and
added by one of them; the others then find it settled in the journal.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from livemosaic.core.events import EventBus, ItemsChanged
from livemosaic.core.ingest import Ingestor, inspect_options, rejection_reason
from livemosaic.core.models import (
    Extent,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
)
from livemosaic.core.overview_build import MosaicOverviews
from livemosaic.core.overview_grid import EVERYWHERE
from livemosaic.core.ports import (
    CatalogStore,
    IngestJournal,
    JournalEntry,
    JournalState,
    RasterSource,
    RemoveFilter,
)
from livemosaic.core.quarantine import (
    Version,
    WriterCheck,
    file_version,
    move_aside,
    move_back,
    quarantine_target,
)
from livemosaic.core.refresh import SummaryField
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.retention import apply_retention
from livemosaic.core.triggers import (
    REFRESH_FIELDS,
    InProcessRefresh,
    RefreshTrigger,
    now_ms,
    summary_changes,
)
from livemosaic.core.watch_rules import Retention, WatchRule
from livemosaic.errors import AlreadyExists, DatasetNotFound, LiveMosaicError

log = logging.getLogger(__name__)

# a lock on one dataset's batches held across processes, taken with the dataset name
BatchLock = Callable[[str], AbstractContextManager[object]]

MARKER_SUFFIX = ".done"


class OverviewBuilder(Protocol):
    """Builds overviews for rasters that have none (non-COG GeoTIFFs)."""

    def build_overviews(self, path: str) -> bool:
        """Build missing overviews for ``path``; True when some were built."""
        ...


@dataclass(slots=True)
class BatchReport:
    """What one pipeline run did."""

    dataset: str
    files_added: list[str] = field(default_factory=list)  # files whose items were written
    items_added: int = 0
    replaced: list[str] = field(default_factory=list)  # files whose older items were replaced
    skipped: list[str] = field(default_factory=list)  # this file version was settled already
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    deferred: list[str] = field(default_factory=list)  # changing or held by a writer: pending
    # path -> (where the quarantine moved it, its (size, mtime) then)
    moved: dict[str, tuple[str, tuple[int, int]]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # refused, not journaled
    overviews: list[str] = field(default_factory=list)  # files overviews were built for
    overview_tiles: int = 0  # mosaic overview tiles rewritten
    removed: int = 0  # items removed by retention (or, see ``missing``, of vanished files)
    missing: list[str] = field(default_factory=list)  # vanished files whose items were removed
    changed: dict[str, list[SummaryField]] = field(default_factory=dict)  # service -> fields
    refreshed: list[str] = field(default_factory=list)  # services a refresh was requested for
    notes: list[str] = field(default_factory=list)  # warnings worth logging
    settled: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (size, mtime)

    @property
    def catalog_changed(self) -> bool:
        """True when items were added, replaced or removed."""
        return bool(self.items_added or self.replaced or self.removed)


def marker_paths(path: str) -> tuple[str, str]:
    """The two accepted marker names of a file: ``x.tif.done`` and ``x.done``."""
    return path + MARKER_SUFFIX, str(Path(path).with_suffix(MARKER_SUFFIX))


class IngestPipeline:
    """Batches of files into a mosaic dataset: one transaction, quarantine, retention, refresh."""

    def __init__(
        self,
        catalog: CatalogStore,
        source: RasterSource,
        journal: IngestJournal,
        ingestor: Ingestor,
        refresh_trigger: RefreshTrigger | None = None,
        registry: ServiceRegistry | None = None,
        *,
        overviews: OverviewBuilder | None = None,
        writers: WriterCheck | None = None,
        mosaic_overviews: MosaicOverviews | None = None,
        clock: Callable[[], int] = now_ms,
        events: EventBus | None = None,
        batch_lock: BatchLock | None = None,
    ) -> None:
        self.catalog = catalog
        self.source = source
        self.journal = journal
        self.ingestor = ingestor
        self.refresh_trigger = refresh_trigger
        # told (ItemsChanged) when a batch changed items but not the summary: no refresh is
        # needed, yet open maps should redraw
        self.events = events
        self.registry = registry
        self.overviews = overviews
        # tells whether a file is still open for writing (None: it cannot be told)
        self.writers = writers
        self.mosaic_overviews = mosaic_overviews
        self.clock = clock
        self._lock = threading.Lock()  # one batch at a time per pipeline
        # one batch at a time per dataset across processes (None: this process only)
        self.batch_lock = batch_lock

    def with_trigger(self, trigger: RefreshTrigger | None) -> IngestPipeline:
        """A pipeline sharing this one's stores and batch lock that refreshes via ``trigger``
        (e.g. jobs owned by the user of an HTTP ingest request)."""
        other = IngestPipeline(
            self.catalog,
            self.source,
            self.journal,
            self.ingestor,
            trigger,
            self.registry,
            overviews=self.overviews,
            writers=self.writers,
            mosaic_overviews=self.mosaic_overviews,
            clock=self.clock,
            events=self.events,
            batch_lock=self.batch_lock,
        )
        other._lock = self._lock  # batches of both still run one at a time
        return other

    # -- datasets and services -----------------------------------------------------------
    def dataset_for(self, rule: WatchRule) -> MosaicDataset:
        """The rule's dataset, created (CRS from the first raster) when it does not exist."""
        try:
            return self.catalog.get_dataset(rule.dataset)
        except DatasetNotFound:
            try:
                ds = self.ingestor.create_dataset(rule.dataset, time_pattern=rule.time_pattern)
                log.info("created mosaic dataset '%s' for %s", ds.name, rule.folder)
                return ds
            except AlreadyExists:  # created by another process meanwhile
                return self.catalog.get_dataset(rule.dataset)

    def services_for(self, rule: WatchRule, dataset: str) -> list[ServiceDefinition]:
        """The services a rule refreshes: its named service, or every service of the dataset."""
        named = rule.service_name
        if named is not None:
            return [self.catalog.get_service(*named)]
        return [
            s for s in self.catalog.list_services() if s.dataset.casefold() == dataset.casefold()
        ]

    def published(self, definition: ServiceDefinition) -> ServiceSnapshot | None:
        """The newest published snapshot of a service (registry or catalog)."""
        live = self.registry.find(definition.folder, definition.name) if self.registry else None
        stored = self.catalog.latest_snapshot(definition.folder, definition.name)
        if stored is not None and (live is None or stored.version > live.version):
            return stored
        return live

    # -- the batch -----------------------------------------------------------------------
    def process(
        self,
        rule: WatchRule,
        paths: Sequence[str | Path],
        *,
        explicit: bool = False,
        refresh: bool = True,
    ) -> BatchReport:
        """Ingest a batch of complete files under ``rule``.

        ``explicit`` (CLI add, HTTP notify): the journal does not stop a file; it is added
        unless its items are in the catalog (so files removed by hand or by retention come
        back, and a file recorded as bad is read again).
        ``refresh=False`` never requests a refresh.
        """
        shared = self.batch_lock(rule.dataset) if self.batch_lock else nullcontext()
        with self._lock, shared:
            ds = self.dataset_for(rule)
            report = BatchReport(ds.name)
            todo = self._select(ds, paths, explicit, report)
            if todo:
                self._ingest(rule, ds, todo, report)
            if rule.retention.active and (report.items_added or report.replaced):
                report.removed = self.apply_retention(ds.name, rule.retention)
            if report.catalog_changed:
                self._update_overviews(ds.name, report)
            if refresh and report.catalog_changed:
                self._refresh(rule, ds.name, report)
        for note in report.notes:
            log.warning("%s", note)
        return report

    def _select(
        self, ds: MosaicDataset, paths: Sequence[str | Path], explicit: bool, report: BatchReport
    ) -> dict[str, Version]:
        """The files of a batch that need inspecting, with their (size, mtime_ns, inode)."""
        found: dict[str, Version] = {}
        for raw in paths:
            try:
                real = str(self.ingestor.check_allowed(raw))
                st = os.stat(real)
            except LiveMosaicError as exc:
                report.rejected.append((str(raw), exc.reason))
                continue
            except OSError as exc:
                report.rejected.append((str(raw), f"cannot be read: {exc.strerror}"))
                continue
            if not stat.S_ISREG(st.st_mode):
                report.rejected.append((real, "is not a regular file"))
                continue
            found[real] = (st.st_size, st.st_mtime_ns, st.st_ino)
        known = self.journal.lookup(ds.name, list(found))
        todo: dict[str, Version] = {}
        catalog_known: list[JournalEntry] = []
        for path, version in found.items():
            key = version[:2]
            entry = known.get(path)
            settled = entry is not None and entry.key == key and entry.state != "pending"
            if settled and not explicit and not (entry is not None and entry.moved_to):
                report.skipped.append(path)  # this version was added or recorded bad already
                report.settled[path] = key
                continue
            if self.catalog.file_state(ds.name, path) == key:  # added by other means
                report.skipped.append(path)
                report.settled[path] = key
                if entry is None or entry.key != key or entry.state != "added":
                    catalog_known.append(self._entry(ds, path, key, "added"))
                continue
            todo[path] = version
        pending = [self._entry(ds, p, v[:2], "pending") for p, v in todo.items()]
        self.journal.record([*catalog_known, *pending])
        return todo

    def _entry(
        self,
        ds: MosaicDataset,
        path: str,
        key: tuple[int, int],
        state: JournalState,
        *,
        reason: str = "",
        item_count: int = 0,
        moved_to: str | None = None,
    ) -> JournalEntry:
        return JournalEntry(
            dataset=ds.name,
            path=path,
            size=key[0],
            mtime_ns=key[1],
            state=state,
            reason=reason,
            item_count=item_count,
            moved_to=moved_to,
            updated=self.clock(),
        )

    def _ingest(
        self,
        rule: WatchRule,
        ds: MosaicDataset,
        todo: dict[str, Version],
        report: BatchReport,
    ) -> None:
        items: list[RasterItem] = []
        entries: list[JournalEntry] = []
        bad: list[tuple[str, Version, str]] = []
        for path, version in todo.items():
            key = version[:2]
            ds, found, reason = self._read(rule, ds, path, report)
            if file_version(path) != version or any(
                (i.file_size, i.file_mtime_ns) != key for i in found
            ):
                report.deferred.append(path)  # still being written or replaced: stays pending
                continue
            if reason and self.writers is not None and self.writers(path):
                report.deferred.append(path)  # bad while a writer holds it: not judged yet
                continue
            if reason:
                bad.append((path, version, reason))
                continue
            items.extend(found)
            entries.append(self._entry(ds, path, key, "added", item_count=len(found)))
        moves: list[tuple[str, str, Version]] = []
        for path, version, reason in bad:
            if self.catalog.file_state(ds.name, path) is not None:
                # an earlier version was added: its items no longer describe the file
                self._invalidate_overviews(ds.name, [EVERYWHERE], report)
                report.removed += self.catalog.remove_items(ds.name, RemoveFilter(path=path))
            target = quarantine_target(rule, path) if rule.quarantine == "move" else None
            if target is not None:
                moves.append((path, target, version))
            entries.append(
                self._entry(ds, path, version[:2], "quarantined", reason=reason, moved_to=target)
            )
            report.quarantined.append((path, reason))
        if not entries:
            return
        self._invalidate_overviews(ds.name, [it.extent for it in items], report)
        result = self.journal.commit(ds.name, items, entries)
        report.items_added += len(result.added)
        report.replaced.extend(result.replaced_paths)
        report.files_added.extend(
            e.path for e in entries if e.state == "added" and e.path not in result.skipped_paths
        )
        report.skipped.extend(result.skipped_paths)
        for e in entries:
            if e.state == "added" or not e.moved_to:
                report.settled[e.path] = e.key
        self._move_quarantined(moves, entries, report)

    def _read(
        self, rule: WatchRule, ds: MosaicDataset, path: str, report: BatchReport
    ) -> tuple[MosaicDataset, list[RasterItem], str]:
        """Inspect one file: (the dataset, its CRS set by a first file; items; why it is bad
        or "")."""
        if not ds.crs:
            try:
                ds = self.catalog.update_dataset(replace(ds, crs=self.source.file_crs(path)))
            except LiveMosaicError as exc:
                return ds, [], rejection_reason(exc, path)
        if rule.build_overviews and self.overviews is not None:
            try:
                if self.overviews.build_overviews(path):
                    report.overviews.append(path)
            except LiveMosaicError as exc:
                report.notes.append(f"{path}: overviews not built: {exc.reason}")
        options = inspect_options(ds, compute_stats=rule.compute_statistics)
        try:
            found = self.source.inspect(path, options)
        except LiveMosaicError as exc:
            return ds, [], rejection_reason(exc, path)
        return ds, found, _problem(found)

    # -- quarantine ----------------------------------------------------------------------
    def _move_quarantined(
        self,
        moves: list[tuple[str, str, Version]],
        entries: list[JournalEntry],
        report: BatchReport,
    ) -> None:
        """Move journaled bad files into the quarantine, unless they changed meanwhile."""
        fixes: list[JournalEntry] = []
        for path, target, version in moves:
            entry = next(e for e in entries if e.path == path)
            move = move_aside(path, target, version)
            if move.result == "changed":  # its writer came back: read it again later
                fixes.append(replace(entry, state="pending", reason="", moved_to=None))
                report.quarantined = [q for q in report.quarantined if q[0] != path]
                report.deferred.append(path)
                continue
            if move.result == "kept":
                reason = f"{entry.reason} ({move.why})"
                fixes.append(replace(entry, moved_to=None, reason=reason))
                report.notes.append(f"{path}: quarantined in place, {reason}")
                report.settled[path] = entry.key
                continue
            report.moved[path] = (target, entry.key)
            for marker in marker_paths(path):
                try:
                    if os.path.exists(marker):
                        shutil.move(marker, target + MARKER_SUFFIX)
                except OSError as exc:
                    report.notes.append(f"{marker}: not moved to the quarantine: {exc.strerror}")
        if fixes:
            self.journal.record(fixes)

    def move_back(self, rule: WatchRule, path: str, moved_to: str) -> bool:
        """Bring a quarantined file that changed since back to where it arrived, ``pending``
        in the journal, to be read again; False when another file took its name meanwhile."""
        with self._lock:
            ds = self.dataset_for(rule)
            if not move_back(moved_to, path):
                return False
            marker = moved_to + MARKER_SUFFIX
            if os.path.exists(marker) and not os.path.exists(path + MARKER_SUFFIX):
                try:
                    os.replace(marker, path + MARKER_SUFFIX)
                except OSError as exc:
                    log.warning("%s: not moved back: %s", marker, exc.strerror)
            version = file_version(path)
            if version is not None:
                self.journal.record([self._entry(ds, path, version[:2], "pending")])
        return True

    # -- mosaic overviews ----------------------------------------------------------------
    def _invalidate_overviews(
        self, dataset: str, areas: list[Extent] | None, report: BatchReport
    ) -> None:
        """Mark changed areas (None: all) so no request draws them from stale overviews."""
        if self.mosaic_overviews is None:
            return
        try:
            self.mosaic_overviews.invalidate(dataset, areas)
        except (LiveMosaicError, OSError) as exc:
            report.notes.append(f"overviews of '{dataset}' not invalidated: {exc}")

    def _update_overviews(self, dataset: str, report: BatchReport) -> None:
        """Rebuild the dirty overview tiles (and build them when the trigger is reached)."""
        if self.mosaic_overviews is None:
            return
        if report.removed:  # removed items: their areas are unknown here, so all of it
            self._invalidate_overviews(dataset, [EVERYWHERE], report)
        try:
            done = self.mosaic_overviews.update(dataset)
        except (LiveMosaicError, OSError) as exc:
            # the dirty marks stay: the area is drawn from the items until a later update
            report.notes.append(f"overviews of '{dataset}' not rebuilt: {exc}")
            return
        if done is not None:
            report.overview_tiles += done.written

    def apply_retention(self, dataset: str, retention: Retention) -> int:
        """Remove the items a retention policy no longer keeps; returns how many."""
        return apply_retention(self.catalog, dataset, retention, self.clock())

    # -- refresh -------------------------------------------------------------------------
    def _refresh(self, rule: WatchRule, dataset: str, report: BatchReport) -> None:
        try:
            services = self.services_for(rule, dataset)
        except LiveMosaicError as exc:
            report.notes.append(f"no refresh: {exc}")
            return
        summary = self.catalog.summary(dataset)
        for definition in services:
            changed = summary_changes(self.published(definition), summary)
            if not changed:
                if self.events is not None and (report.items_added or report.removed):
                    self.events.publish(
                        ItemsChanged(
                            definition.folder, definition.name, report.items_added, report.removed
                        )
                    )
                continue
            name = definition.qualified_name
            report.changed[name] = changed
            if not definition.has_live_data:
                report.notes.append(
                    f"service '{name}' changed ({', '.join(changed)}) but has hasLiveData=false; "
                    f"enable it with `livemosaic service set {name} --live` to refresh it."
                )
                continue
            if self.refresh_trigger is None:
                continue
            try:
                self.refresh_trigger.request_refresh(definition.folder, definition.name)
            except LiveMosaicError as exc:
                report.notes.append(f"refresh of '{name}' not requested: {exc}")
                continue
            report.refreshed.append(name)

    def maintain(self, rule: WatchRule) -> BatchReport:
        """Apply retention and request the refreshes still due (at start-up and every rescan).

        Catches what no batch triggers: items ageing past ``max_age_days``, and a refresh left
        out by a crash or a failed trigger.
        """
        with self._lock:
            ds = self.dataset_for(rule)
            report = BatchReport(ds.name)
            if rule.retention.active:
                report.removed = self.apply_retention(ds.name, rule.retention)
            if report.removed:
                self._update_overviews(ds.name, report)
            self._refresh(rule, ds.name, report)
        for note in report.notes:
            log.log(logging.WARNING if report.removed else logging.DEBUG, "%s", note)
        return report

    def remove_missing(self, rule: WatchRule, paths: Sequence[str]) -> BatchReport:
        """Remove the items of files that are gone (``remove_missing`` rules), forget them in
        the journal and request the refreshes that follows. A path that exists again is
        left alone, and so is every path while the rule's folder itself is missing (an
        unmounted share must not empty the catalog)."""
        with self._lock:
            ds = self.dataset_for(rule)
            report = BatchReport(ds.name)
            if not os.path.isdir(rule.folder):
                report.notes.append(f"{rule.folder} is missing: no item removed")
                return report
            for path in dict.fromkeys(paths):
                if os.path.lexists(path):
                    continue
                removed = self.catalog.remove_items(ds.name, RemoveFilter(path=path))
                report.missing.append(path)
                report.removed += removed
            if report.missing:
                self.journal.forget(ds.name, paths=report.missing)
            if report.removed:
                self._refresh(rule, ds.name, report)
        for note in report.notes:
            log.warning("%s", note)
        return report

    def pending_paths(self, rule: WatchRule) -> list[str]:
        """Files of the rule's dataset left ``pending`` by an interrupted run (vanished ones
        are forgotten)."""
        entries = self.journal.entries(self.dataset_for(rule).name, "pending")
        gone = [e.path for e in entries if not os.path.exists(e.path)]
        if gone:
            self.journal.forget(rule.dataset, state="pending", paths=gone)
        return [e.path for e in entries if e.path not in set(gone)]


def _problem(items: Sequence[RasterItem]) -> str:
    """Why inspected items cannot be added ("" when they can)."""
    if not items:
        return "the file holds no raster data"
    for item in items:
        if not item.extent.is_valid():
            return f"its extent {item.extent} is not a valid rectangle; check its georeferencing"
    return ""


__all__ = [
    "MARKER_SUFFIX",
    "REFRESH_FIELDS",
    "BatchReport",
    "InProcessRefresh",
    "IngestPipeline",
    "OverviewBuilder",
    "RefreshTrigger",
    "marker_paths",
    "summary_changes",
]
