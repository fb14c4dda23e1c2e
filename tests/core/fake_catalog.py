"""An in-memory DatasetStore, ItemStore and ServiceStore (one process; see fake_stores)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from livemosaic.adapters.catalog.item_writes import HISTORY_PATHS
from livemosaic.core.fields import item_attributes
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
    FieldStatistic,
    ItemQuery,
    JournalEntry,
    RemoveFilter,
)
from livemosaic.core.registry import service_key
from livemosaic.core.summary import summarize
from livemosaic.core.where import evaluate
from livemosaic.errors import (
    AlreadyExists,
    DatasetNotFound,
    InvalidParameter,
    ItemNotFound,
    RasterRejected,
    ServiceNotFound,
)
from tests.core.fake_queries import matches, now_ms, nulls_first, ordered, page, statistic

# --- catalog: datasets, items, services --------------------------------------------------------


@dataclass
class DatasetState:
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
        self._datasets: dict[str, DatasetState] = {}
        self._services: dict[tuple[str, str], ServiceDefinition] = {}
        self._snapshots: dict[tuple[str, str], list[ServiceSnapshot]] = {}
        self._next_dataset = 1
        self._next_item = 1
        self.queries: list[ItemQuery] = []

    # -- datasets ----------------------------------------------------------------------------
    def states(self) -> list[DatasetState]:
        """The state of every dataset."""
        return list(self._datasets.values())

    def ds(self, name: str) -> DatasetState:
        """The state of a dataset (DatasetNotFound otherwise)."""
        found = self._datasets.get(name.strip().casefold())
        if found is None:
            raise _dataset_not_found(name)
        return found

    @staticmethod
    def _record(
        ds: MosaicDataset, state: DatasetState, operation: str, details: dict[str, Any]
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
            state = DatasetState(out)
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
        found = page(ordered(self._matching(dataset, query), query), query)
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
        for key in sorted(groups, key=nulls_first):
            row: dict[str, Any] = dict(zip(group_by, key, strict=True))
            for stat in statistics:
                row[stat.out_name] = statistic(stat, [a.get(stat.field) for a in groups[key]])
            rows.append(row)
        return page(rows, query)

    def distinct_values(
        self, dataset: str, query: ItemQuery, fields: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        found = {
            tuple(item_attributes(it).get(f) for f in fields)
            for it in self._matching(dataset, query)
        }
        rows = sorted(found, key=nulls_first)
        for name, ascending in reversed(query.order_by):
            if name in fields:
                at = list(fields).index(name)

                def by_field(row: tuple[Any, ...], at: int = at) -> tuple[tuple[int, Any], ...]:
                    return nulls_first((row[at],))

                rows.sort(key=by_field, reverse=not ascending)
        return page(rows, query)

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


__all__ = ["DatasetState", "InMemoryCatalog"]
