"""In-memory implementations of every store port, for unit tests of the domain core.

Honest, small implementations, not mocks: each one does what its port documents and passes
the same contract tests as the SQLite store (tests/contract). One process only; a lock makes
every method one atomic step, and a failing call changes nothing.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from livemosaic.adapters.catalog.jobs import MAX_RESTARTS, RESTARTED
from livemosaic.adapters.catalog.users import user_not_found, validate_role, validate_username
from livemosaic.core import jobs
from livemosaic.core.fields import NUMERIC_FIELDS, item_attributes, resolve_field
from livemosaic.core.jobs import ALLOWED, InvalidTransition, Job, transition
from livemosaic.core.models import (
    SERVICE_NAME_PATTERN,
    DatasetSummary,
    Extent,
    HistoryEntry,
    MosaicDataset,
    RasterItem,
    ServiceDefinition,
    ServiceSnapshot,
)
from livemosaic.core.ports import (
    AddResult,
    DimensionFilter,
    FieldStatistic,
    ItemQuery,
    JournalEntry,
    JournalState,
    RemoveFilter,
)
from livemosaic.core.registry import service_key
from livemosaic.core.security import User
from livemosaic.core.summary import summarize
from livemosaic.core.where import evaluate
from livemosaic.errors import (
    AlreadyExists,
    DatasetNotFound,
    InvalidParameter,
    ItemNotFound,
    NotFound,
    RasterRejected,
    ServiceNotFound,
    StoreError,
)

T = TypeVar("T")
HISTORY_PATHS = 20
JOURNAL_STATES = ("pending", "added", "quarantined")


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


# --- item queries ----------------------------------------------------------------------------


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


def matches(item: RasterItem, query: ItemQuery) -> bool:
    """Whether an item passes every filter of a query (paging and order aside)."""
    if query.object_ids is not None and item.id not in query.object_ids:
        return False
    if query.extent is not None and not item.extent.intersects(query.extent):
        return False
    if query.time is not None and not _time_ok(item, query.time):
        return False
    if not all(_dimension_ok(item, f) for f in query.dimensions):
        return False
    if query.where is not None and not evaluate(query.where, item_attributes(item)):
        return False
    return query.pixel_size is None or (
        item.low_ps <= query.pixel_size * 2
        and (item.max_ps <= 0 or item.max_ps >= query.pixel_size)
    )


def ordered(items: list[RasterItem], query: ItemQuery) -> list[RasterItem]:
    """Items in a query's order: nearest first (when asked), then its fields, then OBJECTID."""
    items = sorted(items, key=lambda it: it.id or 0)
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
    return items


def _nulls_first(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, 0) if v is None else (1, v) for v in key)


def _page(rows: list[T], query: ItemQuery) -> list[T]:
    end = None if query.limit is None else query.offset + max(query.limit, 0)
    return rows[max(query.offset, 0) : end]


def statistic(stat: FieldStatistic, values: Sequence[Any]) -> Any:
    """One statistic over the field values of a group, as the port documents it."""
    if stat.kind == "count":
        return sum(1 for v in values if v is not None)
    if stat.field not in NUMERIC_FIELDS:
        return None
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        return None
    if stat.kind == "min":
        return min(nums)
    if stat.kind == "max":
        return max(nums)
    if stat.kind == "sum":
        return sum(nums)
    mean = sum(nums) / len(nums)
    if stat.kind == "avg":
        return mean
    var = sum((v - mean) ** 2 for v in nums) / (len(nums) - 1) if len(nums) > 1 else 0.0
    return var if stat.kind == "var" else math.sqrt(var)


# --- catalog: datasets, items, services --------------------------------------------------------


@dataclass
class _Dataset:
    dataset: MosaicDataset
    items: list[RasterItem] = field(default_factory=list)  # in the order they were added
    history: list[HistoryEntry] = field(default_factory=list)
    version: int = 0
    journal: dict[str, JournalEntry] = field(default_factory=dict)  # by path


def _dataset_not_found(name: str) -> DatasetNotFound:
    return DatasetNotFound(f"Mosaic dataset '{name}' does not exist.")


def _service_not_found(folder: str, name: str) -> ServiceNotFound:
    return ServiceNotFound(f"Service '{folder}/{name}.ImageServer' was not found.")


class InMemoryCatalog:
    """A :class:`~livemosaic.core.ports.CatalogStore` in dicts.

    ``queries`` records every :meth:`find_items` query; :meth:`add` puts items that already
    carry their OBJECTIDs (test set-up).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._datasets: dict[str, _Dataset] = {}
        self._services: dict[tuple[str, str], ServiceDefinition] = {}
        self._snapshots: dict[tuple[str, str], list[ServiceSnapshot]] = {}
        self._next_dataset = 1
        self._next_item = 1
        self.queries: list[ItemQuery] = []

    # -- datasets ----------------------------------------------------------------------------
    def ds(self, name: str) -> _Dataset:
        """The state of a dataset (DatasetNotFound otherwise)."""
        found = self._datasets.get(name.strip().casefold())
        if found is None:
            raise _dataset_not_found(name)
        return found

    @staticmethod
    def _record(
        ds: MosaicDataset, state: _Dataset, operation: str, details: dict[str, Any]
    ) -> None:
        if ds.history_enabled:
            state.history.append(HistoryEntry(now_ms(), operation, details))

    def _published_by(self, name: str) -> list[ServiceDefinition]:
        return [d for d in self.list_services() if d.dataset.casefold() == name.casefold()]

    def _refuse_if_published(self, name: str, action: str) -> None:
        users = self._published_by(name)
        if users:
            names = ", ".join(d.qualified_name for d in users)
            raise InvalidParameter(
                "dataset", f"mosaic dataset '{name}' cannot be {action}: {names} publish it."
            )

    def create_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        name = dataset.name.strip()
        if not name:
            raise InvalidParameter("name", "a mosaic dataset needs a name.")
        with self.lock:
            if name.casefold() in self._datasets:
                raise AlreadyExists(f"Mosaic dataset '{name}' exists already.")
            out = replace(dataset, name=name, id=self._next_dataset, created=now_ms())
            self._next_dataset += 1
            state = _Dataset(out)
            self._datasets[name.casefold()] = state
            self._record(out, state, "create", {"name": name, "crs": dataset.crs})
        return out

    def get_dataset(self, name: str) -> MosaicDataset:
        with self.lock:
            return self.ds(name).dataset

    def list_datasets(self) -> list[MosaicDataset]:
        with self.lock:
            return sorted(
                (s.dataset for s in self._datasets.values()), key=lambda d: d.name.lower()
            )

    def update_dataset(self, dataset: MosaicDataset) -> MosaicDataset:
        with self.lock:
            if dataset.id is not None:
                state = next(
                    (s for s in self._datasets.values() if s.dataset.id == dataset.id), None
                )
                if state is None:
                    raise _dataset_not_found(dataset.name)
            else:
                state = self.ds(dataset.name)
            old = state.dataset
            name = dataset.name.strip() or old.name
            clash = self._datasets.get(name.casefold())
            if clash is not None and clash is not state:
                raise AlreadyExists(f"Mosaic dataset '{clash.dataset.name}' exists already.")
            if name.casefold() != old.name.casefold():
                self._refuse_if_published(old.name, "renamed")
            if dataset.crs != old.crs and state.items:
                raise InvalidParameter(
                    "crs", f"mosaic dataset '{old.name}' holds {len(state.items)} items."
                )
            new = replace(dataset, name=name, id=old.id, created=old.created)
            changed = {
                k: getattr(new, k)
                for k in ("name", "crs", "time_pattern", "history_enabled", "description")
                if getattr(new, k) != getattr(old, k)
            }
            del self._datasets[old.name.casefold()]
            state.dataset = new
            self._datasets[name.casefold()] = state
            if changed:
                self._record(new if new.history_enabled else old, state, "update", changed)
        return new

    def delete_dataset(self, name: str) -> None:
        with self.lock:
            state = self.ds(name)
            self._refuse_if_published(state.dataset.name, "deleted")
            del self._datasets[state.dataset.name.casefold()]

    # -- items ---------------------------------------------------------------------------
    def add(self, dataset: str, items: Sequence[RasterItem]) -> None:
        """Test set-up: add items that already carry their OBJECTIDs (no summary rules)."""
        with self.lock:
            state = self.ds(dataset)
            state.items.extend(items)
            state.version += 1
            self._next_item = max([self._next_item, *((it.id or 0) + 1 for it in items)])

    def file_state(self, dataset: str, path: str) -> tuple[int, int] | None:
        with self.lock:
            for item in self.ds(dataset).items:
                if item.path == path:
                    return (item.file_size, item.file_mtime_ns)
        return None

    def add_items(self, dataset: str, items: Sequence[RasterItem]) -> AddResult:
        with self.lock:
            state = self.ds(dataset)
            by_path: dict[str, list[RasterItem]] = {}
            for item in items:
                if not item.extent.is_valid():
                    raise RasterRejected(item.path, f"its extent {item.extent} is not valid.")
                by_path.setdefault(item.path, []).append(item)
            added: list[int] = []
            skipped: list[str] = []
            replaced: list[str] = []
            date_added = now_ms()
            for path, group in by_path.items():
                old = [it for it in state.items if it.path == path]
                if old:
                    first = group[0]
                    version = (first.file_size, first.file_mtime_ns)
                    if all((it.file_size, it.file_mtime_ns) == version for it in old):
                        skipped.append(path)
                        continue
                    state.items = [it for it in state.items if it.path != path]
                    replaced.append(path)
                for item in group:
                    oid = self._next_item
                    self._next_item += 1
                    state.items.append(item.with_id(oid, date_added))
                    added.append(oid)
            if added or replaced:
                state.version += 1
                paths = list(by_path)
                self._record(
                    state.dataset,
                    state,
                    "add",
                    {
                        "added": len(added),
                        "skipped": len(skipped),
                        "replaced": len(replaced),
                        "path_count": len(paths),
                        "paths": paths[:HISTORY_PATHS],
                    },
                )
        return AddResult(tuple(added), tuple(skipped), tuple(replaced))

    @staticmethod
    def _removable(item: RasterItem, f: RemoveFilter) -> bool:
        if f.object_ids is not None and item.id not in f.object_ids:
            return False
        if f.path:
            if f.path.endswith("/") and not item.path.startswith(f.path):
                return False
            if not f.path.endswith("/") and item.path != f.path:
                return False
        if f.older_than is not None and (item.time is None or item.time >= f.older_than):
            return False
        return f.where is None or evaluate(f.where, item_attributes(item))

    def remove_items(self, dataset: str, where: RemoveFilter) -> int:
        f = where
        if f.object_ids is None and f.where is None and not f.path and f.older_than is None:
            raise InvalidParameter("filter", "refusing to remove items without a filter.")
        with self.lock:
            state = self.ds(dataset)
            gone = [it for it in state.items if self._removable(it, f)]
            if not gone:
                return 0
            state.items = [it for it in state.items if not self._removable(it, f)]
            state.version += 1
            filt = {
                "object_ids": len(f.object_ids) if f.object_ids is not None else None,
                "where": f.where is not None,
                "path": f.path,
                "older_than": f.older_than,
            }
            self._record(state.dataset, state, "remove", {"removed": len(gone), "filter": filt})
        return len(gone)

    def find_items(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        with self.lock:
            self.queries.append(query)
            items = ordered([it for it in self.ds(dataset).items if matches(it, query)], query)
        end = None if query.limit is None else query.offset + max(query.limit, 0)
        return items[max(query.offset, 0) : end]

    def _matching(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        """Every item matching a query's filters, unordered and unpaged (for test oracles)."""
        with self.lock:
            return [it for it in self.ds(dataset).items if matches(it, query)]

    def count_items(self, dataset: str, query: ItemQuery) -> int:
        with self.lock:
            return sum(1 for it in self.ds(dataset).items if matches(it, query))

    def item_ids(self, dataset: str, query: ItemQuery) -> list[int]:
        found = _page(ordered(self._matching(dataset, query), query), query)
        return [it.id for it in found if it.id is not None]

    def item_extent(self, dataset: str, query: ItemQuery) -> Extent | None:
        return Extent.union_all(it.extent for it in self._matching(dataset, query))

    def item_statistics(
        self,
        dataset: str,
        query: ItemQuery,
        statistics: Sequence[FieldStatistic],
        group_by: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for it in self._matching(dataset, query):
            attrs = item_attributes(it)
            groups.setdefault(tuple(attrs.get(g) for g in group_by), []).append(attrs)
        if not group_by:
            groups.setdefault((), [])
        rows = []
        for key in sorted(groups, key=_nulls_first):
            row: dict[str, Any] = dict(zip(group_by, key, strict=True))
            for stat in statistics:
                row[stat.out_name] = statistic(stat, [a.get(stat.field) for a in groups[key]])
            rows.append(row)
        return _page(rows, query)

    def distinct_values(
        self, dataset: str, query: ItemQuery, fields: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        found = {
            tuple(item_attributes(it).get(f) for f in fields)
            for it in self._matching(dataset, query)
        }
        rows = sorted(found, key=_nulls_first)
        for name, ascending in reversed(query.order_by):
            if name in fields:
                at = list(fields).index(name)

                def by_field(row: tuple[Any, ...], at: int = at) -> tuple[tuple[int, Any], ...]:
                    return _nulls_first((row[at],))

                rows.sort(key=by_field, reverse=not ascending)
        return _page(rows, query)

    def get_item(self, dataset: str, object_id: int) -> RasterItem:
        with self.lock:
            for item in self.ds(dataset).items:
                if item.id == object_id:
                    return item
        raise ItemNotFound(f"Item {object_id} does not exist in mosaic dataset '{dataset}'.")

    def summary(self, dataset: str) -> DatasetSummary:
        with self.lock:
            state = self.ds(dataset)
            return summarize(state.items, state.version)

    def history(self, dataset: str, limit: int = 100) -> list[HistoryEntry]:
        with self.lock:
            entries = list(reversed(self.ds(dataset).history))
        return entries[: max(int(limit), 0)]

    # -- services and snapshots ------------------------------------------------------------
    @staticmethod
    def _key(folder: str, name: str) -> tuple[str, str]:
        return (folder.casefold(), name.casefold())

    def save_service(self, definition: ServiceDefinition, *, create: bool) -> None:
        d = definition
        if not re.match(SERVICE_NAME_PATTERN, d.name):
            raise InvalidParameter("serviceName", f"'{d.name}' is not a valid service name.")
        if d.folder and not re.match(SERVICE_NAME_PATTERN, d.folder):
            raise InvalidParameter("folderName", f"'{d.folder}' is not a valid folder name.")
        with self.lock:
            self.ds(d.dataset)
            key = self._key(d.folder, d.name)
            if key in self._services and create:
                raise AlreadyExists(f"Service '{d.qualified_name}' exists already.")
            self._services[key] = d

    def get_service(self, folder: str, name: str) -> ServiceDefinition:
        with self.lock:
            found = self._services.get(self._key(folder, name))
        if found is None:
            raise _service_not_found(folder, name)
        return found

    def list_services(self) -> list[ServiceDefinition]:
        with self.lock:
            return [self._services[k] for k in sorted(self._services)]

    def delete_service(self, folder: str, name: str) -> None:
        with self.lock:
            key = self._key(folder, name)
            if key not in self._services:
                raise _service_not_found(folder, name)
            del self._services[key]
            self._snapshots.pop(key, None)

    def save_snapshot(self, snapshot: ServiceSnapshot) -> ServiceSnapshot:
        d = snapshot.definition
        with self.lock:
            key = self._key(d.folder, d.name)
            if key not in self._services:
                raise _service_not_found(d.folder, d.name)
            kept = self._snapshots.setdefault(key, [])
            if kept and snapshot.version <= kept[-1].version:
                raise AlreadyExists(
                    f"Service '{d.qualified_name}' already has snapshot version "
                    f"{kept[-1].version}; version {snapshot.version} is not newer."
                )
            kept.append(snapshot)
        return snapshot

    def latest_snapshot(self, folder: str, name: str) -> ServiceSnapshot | None:
        with self.lock:
            kept = self._snapshots.get(self._key(folder, name))
            return kept[-1] if kept else None

    def snapshot_versions(self) -> dict[str, int]:
        with self.lock:
            return {
                service_key(d.folder, d.name): self._snapshots[k][-1].version
                for k, d in self._services.items()
                if self._snapshots.get(k)
            }

    def close(self) -> None:
        """Nothing to release."""


# --- ingest journal ------------------------------------------------------------------------


class InMemoryIngestJournal:
    """A :class:`~livemosaic.core.ports.IngestJournal` kept with the datasets of a catalog."""

    def __init__(self, catalog: InMemoryCatalog) -> None:
        self.catalog = catalog

    def lookup(self, dataset: str, paths: Sequence[str]) -> dict[str, JournalEntry]:
        with self.catalog.lock:
            rows = self.catalog.ds(dataset).journal
            return {p: rows[p] for p in paths if p in rows}

    @staticmethod
    def _check(entries: Sequence[JournalEntry]) -> None:
        for e in entries:
            if e.state not in JOURNAL_STATES:
                raise StoreError(f"'{e.state}' is not a journal state.")

    @staticmethod
    def _write(state: _Dataset, entries: Sequence[JournalEntry]) -> None:
        now = now_ms()
        for e in entries:
            old = state.journal.get(e.path)
            first = old.first_seen if old is not None else (e.first_seen or now)
            state.journal[e.path] = replace(
                e, dataset=state.dataset.name, first_seen=first, updated=e.updated or now
            )

    def record(self, entries: Sequence[JournalEntry]) -> None:
        self._check(entries)
        with self.catalog.lock:
            states = [self.catalog.ds(e.dataset) for e in entries]  # all found before writing
            for state, e in zip(states, entries, strict=True):
                self._write(state, [e])

    def commit(
        self, dataset: str, items: Sequence[RasterItem], entries: Sequence[JournalEntry]
    ) -> AddResult:
        self._check(entries)  # every check before the first change: all or nothing
        with self.catalog.lock:
            state = self.catalog.ds(dataset)
            result = self.catalog.add_items(dataset, items)
            self._write(state, entries)
        return result

    def entries(
        self,
        dataset: str | None = None,
        state: JournalState | None = None,
        *,
        under: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        with self.catalog.lock:
            if dataset is not None:
                sets = [self.catalog.ds(dataset)]
            else:
                sets = list(self.catalog._datasets.values())
            rows = [e for s in sets for e in s.journal.values()]
        if state is not None:
            rows = [e for e in rows if e.state == state]
        if under:
            prefix = under.rstrip("/") + "/"
            rows = [e for e in rows if e.path.startswith(prefix)]
        rows.sort(key=lambda e: (e.dataset.lower(), e.path))
        return rows if limit is None else rows[: max(int(limit), 0)]

    def forget(
        self,
        dataset: str | None = None,
        *,
        state: JournalState | None = None,
        paths: Sequence[str] | None = None,
    ) -> int:
        with self.catalog.lock:
            if dataset is not None:
                sets = [self.catalog.ds(dataset)]
            else:
                sets = list(self.catalog._datasets.values())
            count = 0
            for s in sets:
                for path, e in list(s.journal.items()):
                    if state is not None and e.state != state:
                        continue
                    if paths is not None and path not in paths:
                        continue
                    del s.journal[path]
                    count += 1
        return count


# --- jobs, users, sign-in attempts -----------------------------------------------------------


class InMemoryJobStore:
    """A :class:`~livemosaic.core.ports.JobStore` in a dict (claims are atomic under a lock)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}  # in the order they were created
        self.workers: dict[str, int] = {}

    def create_job(self, job: Job) -> Job:
        with self.lock:
            if job.id in self.jobs:
                raise AlreadyExists(f"Job '{job.id}' exists already.")
            self.jobs[job.id] = job
        return job

    def get_job(self, job_id: str) -> Job:
        with self.lock:
            found = self.jobs.get(job_id)
        if found is None:
            raise NotFound(f"Job '{job_id}' does not exist.", message="Job not found.")
        return found

    def _store(self, job: Job, expected_status: str) -> None:
        stored = self.jobs.get(job.id)
        if stored is None:
            raise NotFound(f"Job '{job.id}' does not exist.", message="Job not found.")
        if stored.status != expected_status:
            raise InvalidTransition(
                f"job {job.id} is {stored.status}, not {expected_status}: another process changed it"
            )
        self.jobs[job.id] = replace(
            stored,
            status=job.status,
            results=job.results,
            messages=job.messages,
            worker=job.worker,
            updated=job.updated,
            started=job.started,
            finished=job.finished,
        )

    def update_job(self, job: Job, *, expected_status: str) -> Job:
        if job.status != expected_status and job.status not in ALLOWED.get(
            expected_status, frozenset()
        ):
            raise InvalidTransition(f"job {job.id}: {expected_status} cannot become {job.status}")
        with self.lock:
            self._store(job, expected_status)
        return job

    def _running(self, job: Job) -> bool:
        return job.status in (jobs.EXECUTING, jobs.CANCELLING) and job.worker is not None

    def claim_next_job(self, task: str, worker: str, now: int) -> Job | None:
        with self.lock:
            busy = {j.service_key for j in self.jobs.values() if self._running(j)}
            waiting = [
                j
                for j in self.jobs.values()
                if j.task == task
                and j.status == jobs.SUBMITTED
                and (j.service_key == "" or j.service_key not in busy)
            ]
            if not waiting:
                return None
            oldest = min(waiting, key=lambda j: j.created)  # stable: creation order breaks ties
            job = transition(oldest, jobs.EXECUTING, now, worker=worker)
            self._store(job, jobs.SUBMITTED)
        return job

    def heartbeat(self, worker: str, now: int) -> None:
        with self.lock:
            self.workers[worker] = max(now, self.workers.get(worker, now))

    def requeue_orphans(self, stale_before: int, now: int) -> list[str]:
        requeued: list[str] = []
        with self.lock:
            for job in list(self.jobs.values()):
                beat = self.workers.get(job.worker or "")
                if not self._running(job) or (beat is not None and beat >= stale_before):
                    continue
                note = jobs.info(RESTARTED)
                restarts = sum(1 for m in job.messages if m.description == RESTARTED)
                if job.status == jobs.CANCELLING:
                    new = transition(job, jobs.CANCELLED, now, messages=(note,))
                elif restarts >= MAX_RESTARTS:
                    failure = jobs.error(
                        f"Failed: its server process stopped {MAX_RESTARTS + 1} times."
                    )
                    new = transition(job, jobs.FAILED, now, messages=(failure,))
                else:
                    new = transition(job, jobs.SUBMITTED, now, messages=(note,))
                    requeued.append(job.id)
                self._store(new, job.status)
            self.workers = {w: t for w, t in self.workers.items() if t >= stale_before}
        return requeued

    def delete_jobs_finished_before(self, when: int) -> int:
        with self.lock:
            old = [k for k, j in self.jobs.items() if j.finished is not None and j.finished < when]
            for k in old:
                del self.jobs[k]
        return len(old)


class InMemoryUserStore:
    """A :class:`~livemosaic.core.ports.UserStore` in a dict."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}

    def add_user(self, user: User) -> None:
        validate_username(user.username)
        validate_role(user.role)
        if not user.password_hash:
            raise InvalidParameter("password", "a user needs a password hash.")
        with self.lock:
            if user.username in self.users:
                raise AlreadyExists(f"User '{user.username}' exists already.")
            created = user.created if user.created is not None else now_ms()
            self.users[user.username] = replace(user, created=created)

    def get_user(self, username: str) -> User:
        with self.lock:
            found = self.users.get(username)
        if found is None:
            raise user_not_found(username)
        return found

    def list_users(self) -> list[User]:
        with self.lock:
            return [self.users[k] for k in sorted(self.users)]

    def save_user(self, user: User) -> None:
        validate_role(user.role)
        if not user.password_hash:
            raise InvalidParameter("password", "a user needs a password hash.")
        with self.lock:
            old = self.users.get(user.username)
            if old is None:
                raise user_not_found(user.username)
            self.users[user.username] = replace(
                old,
                role=user.role,
                password_hash=user.password_hash,
                token_epoch=user.token_epoch,
                disabled=user.disabled,
            )

    def remove_user(self, username: str) -> None:
        with self.lock:
            if self.users.pop(username, None) is None:
                raise user_not_found(username)


@dataclass
class InMemorySigninAttempts:
    """A :class:`~livemosaic.core.ports.SigninAttempts` in a dict (one process only)."""

    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, username: str, address: str, now_ms: int, window_ms: int, limit: int) -> int:
        with self.lock:
            for key in list(self.rows):
                self.rows[key] = [t for t in self.rows[key] if t > now_ms - window_ms]
            times = self.rows.setdefault((username, address), [])
            if len(times) >= limit:
                return max(1, times[len(times) - limit] + window_ms - now_ms)
            times.append(now_ms)
            return 0

    def succeeded(self, username: str, address: str) -> None:
        with self.lock:
            self.rows.pop((username, address), None)


@dataclass
class InMemoryStores:
    """Every store port in memory, bundled like ``adapters.catalog.Stores``."""

    catalog: InMemoryCatalog = field(default_factory=InMemoryCatalog)
    jobs: InMemoryJobStore = field(default_factory=InMemoryJobStore)
    users: InMemoryUserStore = field(default_factory=InMemoryUserStore)
    signins: InMemorySigninAttempts = field(default_factory=InMemorySigninAttempts)
    journal: InMemoryIngestJournal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = InMemoryIngestJournal(self.catalog)

    def close(self) -> None:
        """Nothing to release."""


__all__ = [
    "InMemoryCatalog",
    "InMemoryIngestJournal",
    "InMemoryJobStore",
    "InMemorySigninAttempts",
    "InMemoryStores",
    "InMemoryUserStore",
    "matches",
    "ordered",
]
