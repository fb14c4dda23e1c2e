"""The folder watcher: OS file events plus periodic rescans, feeding the ingest pipeline.

watchdog delivers created/modified/moved events (inotify on Linux, or polling for network
filesystems); a full rescan runs at start-up — catching up with everything that arrived
while the watcher was down — and then every ``rescan_seconds``, because events get lost on
network filesystems. Either way a file only becomes a *candidate*. A file written in place
is taken once its size and mtime stayed unchanged for ``settle_seconds`` (and, in marker
mode, once ``x.done`` exists). A file *delivered* — renamed into the folder (a move event:
``x.tif.part`` renamed to ``x.tif``, or a file moved in from elsewhere; OS events only, not
polling), or whose marker just arrived — is complete the moment it appears and is taken at once, unless a process still
holds it open for writing (:mod:`.writers`); a later write to it, a rescan that finds it
without its event, and the retry of a deferred file all go back to the settle wait.
Temporary and hidden names (``*.part``, ``*.tmp``, dotfiles) and sidecars are never
candidates. Ready files are batched: a batch goes to :meth:`IngestPipeline.process` once no
further file became ready for ``batch_quiet_seconds``, at the latest ``batch_window_seconds``
after its first file (or when it holds ``max_batch_files``): one catalog transaction and at
most one refresh.

With ``remove_missing``, a settled file that is deleted or renamed away (a ``deleted`` or
``moved`` event, or a rescan that no longer finds it) loses its items and the dataset's
services are refreshed (:meth:`IngestPipeline.remove_missing`); nothing is removed while the
watched folder itself is missing. Without it, the items stay.

Files the pipeline moved into the quarantine stay watched (by events where the folder's
watch covers the quarantine folder or a watch of its own does, and at every rescan): one
that changes afterwards — its writer was not finished, or someone replaced it — is moved back
where it arrived once it settles, and read again.

Everything runs on one worker thread (``start()``/``stop()``, or ``start_async()``/
``stop_async()`` from an event loop); the observer thread only queues paths.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from livemosaic.adapters.watch.writers import held_for_writing
from livemosaic.core.ingest import is_candidate
from livemosaic.core.pipeline import MARKER_SUFFIX, BatchReport, IngestPipeline, marker_paths
from livemosaic.core.watch_rules import WatchRule
from livemosaic.errors import InvalidParameter, ServiceNotFound

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"created", "modified", "moved", "closed", "deleted"})
DIRECTORY_EVENT_TYPES = frozenset({"created", "moved", "deleted"})  # scan it, or its files went
WRITE_EVENT_TYPES = frozenset({"modified", "closed"})  # written in place: settle again
Arrival = str  # the event type that brought a path: "moved", "created", "modified", ...
HeldCheck = Callable[[Collection[str]], set[str]]  # the files some process holds open to write
Key = tuple[int, int]  # (size, mtime_ns), as the journal keeps it
Stat = tuple[int, int, int]  # (size, mtime_ns, inode): a file is settled while this holds


@dataclass(slots=True)
class _Candidate:
    """A file waiting to be complete."""

    path: str
    key: Stat | None = None
    changed_at: float = 0.0  # monotonic time of the last observed change
    not_before: float = 0.0  # retry back-off after a failed batch
    origin: str | None = None  # a quarantined file: where it arrived (to move it back to)
    delivered: bool = False  # renamed in, or its marker arrived: complete, no settle wait


def _stat_key(path: str) -> Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino) if os.path.isfile(path) else None


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


class _Handler(FileSystemEventHandler):
    """Queues the paths of one rule's file events for the worker thread."""

    def __init__(self, watcher: FolderWatcher, index: int) -> None:
        self.watcher = watcher
        self.index = index

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Queue the path an event leaves behind (the destination of a move)."""
        if event.event_type not in EVENT_TYPES:
            return
        if event.is_directory and event.event_type not in DIRECTORY_EVENT_TYPES:
            return  # a folder's own "modified" follows every change inside it
        if event.event_type == "moved" and event.src_path:  # the old name is gone
            self.watcher.enqueue(self.index, os.fsdecode(event.src_path), event.is_directory,
                                 "deleted")  # fmt: skip
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        if not raw:
            return  # moved out of the watched tree (inotify's unmatched move)
        self.watcher.enqueue(self.index, os.fsdecode(raw), event.is_directory, event.event_type)


def _native_observer() -> BaseObserver:
    """The platform's observer; with inotify, one that reports a file moved in from outside the
    watched tree as a move rather than as a created file, so it is known to be complete."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except (ImportError, OSError, AttributeError):  # not Linux
        return Observer()
    if Observer is InotifyObserver:
        return InotifyObserver(generate_full_events=True)
    return Observer()


class FolderWatcher:
    """Watches the folders of a set of rules and feeds complete files to the pipeline."""

    def __init__(
        self,
        rules: Sequence[WatchRule],
        pipeline: IngestPipeline,
        *,
        tick_seconds: float = 0.05,
        retry_seconds: float = 5.0,
        report_history: int = 1000,
        writers: HeldCheck | None = held_for_writing,
    ) -> None:
        if not rules:
            raise InvalidParameter("watch", "no folder to watch.", accepted="at least one rule")
        self.rules = list(rules)
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.retry_seconds = retry_seconds
        # which delivered files a process still writes (None: nobody can tell)
        self.writers = writers
        self.roots = [os.path.realpath(r.folder) for r in self.rules]
        self.reports: deque[BatchReport] = deque(maxlen=report_history)
        self.batches = 0  # pipeline runs so far
        self.failures = 0  # pipeline runs that raised (retried later)
        self._events: queue.SimpleQueue[tuple[int, str, bool, Arrival]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: dict[tuple[int, str], _Candidate] = {}
        # rule index -> (when its first file became ready, when its last one did, the files)
        self._batches: dict[int, tuple[float, float, list[str]]] = {}
        self._known: list[dict[str, Key]] = [{} for _ in self.rules]
        # settled files found gone, whose items remove_missing rules remove
        self._missing: list[set[str]] = [set() for _ in self.rules]
        # files the quarantine moved: where they are -> (where they arrived, their key then)
        self._moved: list[dict[str, tuple[str, Key]]] = [{} for _ in self.rules]
        self._quarantine_watched: set[str] = set()
        self._next_scan = [0.0 for _ in self.rules]
        self._started = False
        self._caught_up = False
        self._idle = threading.Condition()
        self._idle_since: float | None = None
        self._thread: threading.Thread | None = None
        self._observers: list[BaseObserver] = []
        self._native: BaseObserver | None = None
        self._polling: BaseObserver | None = None

    # -- life cycle ----------------------------------------------------------------------
    def check(self) -> None:
        """Refuse rules whose folder is missing or outside the data folders, or whose service
        publishes another dataset."""
        for rule, root in zip(self.rules, self.roots, strict=True):
            if not os.path.isdir(root):
                raise InvalidParameter(
                    "folder", f"{rule.folder} is not an existing folder.", accepted="a folder"
                )
            self.pipeline.ingestor.check_allowed(root)
            named = rule.service_name
            if named is not None:
                try:
                    definition = self.pipeline.catalog.get_service(*named)
                except ServiceNotFound:
                    log.warning(
                        "service '%s' does not exist yet: no refresh until it is published",
                        rule.service,
                    )
                    continue
                if definition.dataset.casefold() != rule.dataset.casefold():
                    raise InvalidParameter(
                        "service",
                        f"service '{rule.service}' publishes dataset '{definition.dataset}', "
                        f"not '{rule.dataset}'.",
                        accepted="the service that publishes the watched dataset",
                    )

    def start(self) -> None:
        """Check the rules, start watching and catch up with files that arrived meanwhile."""
        if self._started:
            return
        self.check()
        self._stop.clear()
        self._caught_up = False
        self._next_scan = [0.0 for _ in self.rules]  # catch up with what arrived meanwhile
        self._start_observers()
        self._thread = threading.Thread(target=self._run, name="livemosaic-watcher", daemon=True)
        self._started = True
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop watching; a batch being ingested is finished first."""
        self._stop.set()
        self._wake.set()
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout)
        self._observers = []
        self._native = self._polling = None
        self._quarantine_watched.clear()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._started = False

    async def start_async(self) -> None:
        """:meth:`start` from an event loop (the rule checks touch the catalog)."""
        await asyncio.to_thread(self.start)

    async def stop_async(self) -> None:
        """:meth:`stop` from an event loop."""
        await asyncio.to_thread(self.stop)

    def _start_observers(self) -> None:
        self._native = _native_observer()
        self._polling = PollingObserver(timeout=1.0)
        for index, root in enumerate(self.roots):
            self._schedule(index, root, self.rules[index].recursive)
        for observer in (self._native, self._polling):
            if observer.emitters:
                observer.start()
                self._observers.append(observer)

    def _schedule(self, index: int, folder: str, recursive: bool) -> None:
        observer = self._polling if self.rules[index].polling else self._native
        if observer is None:
            return
        try:
            observer.schedule(_Handler(self, index), folder, recursive=recursive)
        except OSError as exc:  # e.g. the inotify watch limit: rescans still find files
            log.warning("no file events for %s (%s); relying on rescans", folder, exc)
            return
        if observer.emitters and observer not in self._observers and self._started:
            observer.start()
            self._observers.append(observer)

    def _watch_quarantine(self, index: int) -> None:
        """Make sure changes of files in rule ``index``'s quarantine folder are events."""
        rule, root = self.rules[index], self.roots[index]
        qdir = os.path.realpath(rule.effective_quarantine_dir)
        if rule.recursive and qdir.startswith(root + os.sep):
            return  # the folder's own watch covers it
        if qdir in self._quarantine_watched or not os.path.isdir(qdir):
            return
        self._quarantine_watched.add(qdir)
        self._schedule(index, qdir, True)

    # -- inputs from other threads -------------------------------------------------------
    def enqueue(
        self, index: int, path: str, is_directory: bool = False, arrival: Arrival = "created"
    ) -> None:
        """Note a path of rule ``index`` that may have changed (thread-safe); ``arrival`` is the
        event type: ``"moved"`` (renamed into place) delivers a complete file."""
        self._events.put((index, path, is_directory, arrival))
        self._wake.set()

    def notify(self, paths: Sequence[str | Path]) -> list[str]:
        """Treat paths as if events had been seen (other scripts); returns those no rule takes."""
        unmatched: list[str] = []
        for raw in paths:
            real = os.path.realpath(raw)
            hits = [i for i in range(len(self.rules)) if self._accepts(i, real)]
            for i in hits:
                self.enqueue(i, real, os.path.isdir(real))
            if not hits:
                unmatched.append(str(raw))
        return unmatched

    def rescan_now(self) -> None:
        """Rescan every folder at once."""
        self._next_scan = [0.0 for _ in self.rules]
        self._wake.set()

    def wait_idle(self, timeout: float = 30.0, quiet_seconds: float = 0.3) -> bool:
        """Wait until the watcher caught up and nothing was pending for ``quiet_seconds``."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while True:
                now = time.monotonic()
                since = self._idle_since
                if since is not None and now - since >= quiet_seconds:
                    return True
                if now >= deadline:
                    return False
                wait = quiet_seconds if since is None else quiet_seconds - (now - since)
                self._idle.wait(min(max(wait, 0.01), deadline - now))

    # -- the worker ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._catch_up()
                break
            except Exception:  # the database may be busy or away: try again
                log.exception("watcher start-up failed; retrying in %.0f s", self.retry_seconds)
                self._stop.wait(self.retry_seconds)
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # never let one failure end the watcher
                log.exception("watcher step failed")
                self._stop.wait(self.retry_seconds)
                continue
            self._wake.wait(self._timeout())
            self._wake.clear()

    def _catch_up(self) -> None:
        """Load settled files from the journal, re-queue interrupted ones, do due refreshes."""
        now = time.monotonic()
        for index, (rule, root) in enumerate(zip(self.rules, self.roots, strict=True)):
            ds = self.pipeline.dataset_for(rule)
            known = self._known[index]
            for entry in self.pipeline.journal.entries(ds.name, under=root):
                if entry.state == "added" or (entry.state == "quarantined" and not entry.moved_to):
                    known[entry.path] = entry.key
                elif entry.state == "quarantined" and entry.moved_to:
                    self._moved[index][entry.moved_to] = (entry.path, entry.key)
            if self._moved[index]:
                self._watch_quarantine(index)
            for path in self.pipeline.pending_paths(rule):
                known.pop(path, None)
                self._pending.setdefault((index, path), _Candidate(path, changed_at=now))
            self.pipeline.maintain(rule)

    def _step(self) -> None:
        self._drain()
        now = time.monotonic()
        rescanned = False
        for index, rule in enumerate(self.rules):
            if now >= self._next_scan[index]:
                self._next_scan[index] = now + rule.rescan_seconds
                self._scan(index, self.roots[index])
                if self._caught_up:
                    self.pipeline.maintain(rule)
                rescanned = True
        if rescanned:
            self._caught_up = True
        self._settle(time.monotonic())
        self._flush(time.monotonic())
        self._remove_missing()
        self._update_idle()

    def _timeout(self) -> float:
        if self._pending or self._batches:
            return self.tick_seconds
        now = time.monotonic()
        return max(self.tick_seconds, min(self._next_scan) - now)

    def _update_idle(self) -> None:
        busy = bool(self._pending or self._batches or any(self._missing))
        busy = busy or not self._caught_up
        with self._idle:
            if busy or not self._events.empty():
                self._idle_since = None
            elif self._idle_since is None:
                self._idle_since = time.monotonic()
            self._idle.notify_all()

    def _drain(self) -> None:
        now = time.monotonic()
        while True:
            try:
                index, path, is_dir, arrival = self._events.get_nowait()
            except queue.Empty:
                return
            # a rename, as OS events report it; polling cannot tell one from a new file that
            # reuses a deleted file's inode, so polled folders settle every file
            moved = arrival == "moved" and not self.rules[index].polling
            if arrival == "deleted":
                self._gone(index, path)
                continue
            if is_dir:
                if self._inside(index, path):
                    self._scan(index, path, delivered=moved)
                continue
            if path.endswith(MARKER_SUFFIX) and self.rules[index].marker_mode:
                for data in self._marked(path):
                    self._add(index, data, now, delivered=True)
                continue
            if path in self._moved[index]:
                self._add_moved(index, path, now)
                continue
            self._add(index, path, now, delivered=moved)
            if arrival in WRITE_EVENT_TYPES:
                self._written(index, path, now)

    def _marked(self, marker: str) -> list[str]:
        """Data files a marker names: ``x.tif`` for ``x.tif.done``, ``x.*`` for ``x.done``."""
        base = marker[: -len(MARKER_SUFFIX)]
        found = [base] if os.path.isfile(base) else []
        folder, stem = os.path.split(base)
        try:
            names = os.listdir(folder or ".")
        except OSError:
            return found
        found += [
            os.path.join(folder, n)
            for n in names
            if n.startswith(stem + ".") and not n.endswith(MARKER_SUFFIX)
        ]
        return found

    def _add(self, index: int, path: str, now: float, *, delivered: bool = False) -> None:
        """Make ``path`` a candidate; ``delivered``: it arrived complete (no settle wait)."""
        if not self._accepts(index, path):
            return
        cand = self._pending.setdefault((index, path), _Candidate(path, changed_at=now))
        if delivered and cand.origin is None:
            cand.delivered = True

    def _written(self, index: int, path: str, now: float) -> None:
        """A delivered file written to in place afterwards: it settles like any other."""
        cand = self._pending.get((index, path))
        if cand is not None and cand.delivered:
            cand.delivered = False
            cand.key, cand.changed_at = None, now

    def _add_moved(self, index: int, moved_to: str, now: float) -> None:
        """Follow a quarantined file that may have changed."""
        origin = self._moved[index][moved_to][0]
        self._pending.setdefault(
            (index, moved_to), _Candidate(moved_to, changed_at=now, origin=origin)
        )

    def _inside(self, index: int, path: str) -> bool:
        root = self.roots[index]
        if path != root and not path.startswith(root + os.sep):
            return False
        rel = os.path.relpath(path, root)
        if rel == ".":
            return True
        parts = rel.split(os.sep)
        if any(p.startswith(".") for p in parts):
            return False  # hidden files and folders, the default quarantine folder among them
        rule = self.rules[index]
        qdir = os.path.realpath(rule.effective_quarantine_dir)
        return not (path == qdir or path.startswith(qdir + os.sep))

    def _accepts(self, index: int, path: str) -> bool:
        """True when ``path`` is a file rule ``index`` takes (by name; not yet by content)."""
        if not self._inside(index, path) or not is_candidate(Path(path)):
            return False
        rule = self.rules[index]
        rel = os.path.relpath(path, self.roots[index]).replace(os.sep, "/")
        if not rule.recursive and "/" in rel:
            return False
        if rule.include and not _matches(rel, rule.include):
            return False
        return not (rule.exclude and _matches(rel, rule.exclude))

    def _scan(self, index: int, folder: str, *, delivered: bool = False) -> None:
        """Queue every file under ``folder`` that is new or changed since it was settled
        (``delivered``: the folder was renamed into place, its files are complete)."""
        now = time.monotonic()
        known = self._known[index]
        recursive = self.rules[index].recursive
        seen: set[str] = set()
        for base, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
            for name in sorted(files):
                path = os.path.join(base, name)
                if not self._accepts(index, path):
                    continue
                seen.add(path)
                key = _stat_key(path)
                if key is not None and known.get(path) != key[:2]:
                    self._add(index, path, now, delivered=delivered)
        if folder == self.roots[index]:  # forget files that are gone (keeps memory bounded)
            for path in [p for p in known if p not in seen]:
                if self.rules[index].remove_missing:
                    self._missing[index].add(path)  # forgotten once its items are removed
                else:
                    del known[path]
            self._check_moved(index, now)

    def _gone(self, index: int, path: str) -> None:
        """A file or folder was deleted or renamed away: with ``remove_missing``, its settled
        files (every one under a folder) lose their items at the next step."""
        if not self.rules[index].remove_missing:
            return
        known = self._known[index]
        prefix = path.rstrip(os.sep) + os.sep
        for settled in [p for p in known if p == path or p.startswith(prefix)]:
            self._missing[index].add(settled)

    def _remove_missing(self) -> None:
        """Hand the files found gone to the pipeline: their items go, services refresh."""
        for index, paths in enumerate(self._missing):
            if not paths:
                continue
            rule = self.rules[index]
            batch = sorted(paths)[: rule.max_batch_files]
            try:
                report = self.pipeline.remove_missing(rule, batch)
            except Exception:
                self.failures += 1
                log.exception("removing the items of %d vanished files failed", len(batch))
                self._next_scan[index] = time.monotonic() + self.retry_seconds
                paths.difference_update(batch)  # the next rescan finds them again
                continue
            paths.difference_update(batch)
            for path in report.missing:
                self._known[index].pop(path, None)
            self.reports.append(report)
            _log_report(report)

    def _check_moved(self, index: int, now: float) -> None:
        """Follow quarantined files that changed since they were moved; forget gone ones."""
        moved = self._moved[index]
        for moved_to, (_, key) in list(moved.items()):
            current = _stat_key(moved_to)
            if current is None:
                del moved[moved_to]
            elif current[:2] != key:
                self._add_moved(index, moved_to, now)

    def _settle(self, now: float) -> None:
        """Move candidates that are complete into their rule's batch: delivered ones at once
        (unless still open for writing), the others once unchanged for the settle time."""
        ready: list[tuple[tuple[int, str], _Candidate, Stat]] = []
        delivered: list[tuple[tuple[int, str], _Candidate, Stat]] = []
        for slot, cand in list(self._pending.items()):
            if now < cand.not_before:
                continue
            key = _stat_key(cand.path)
            if key is None:  # gone: deleted or renamed away
                del self._pending[slot]
                continue
            if cand.delivered:
                delivered.append((slot, cand, key))
                continue
            if key != cand.key:
                cand.key, cand.changed_at = key, now
                continue
            if now - cand.changed_at < self.rules[slot[0]].settle_seconds:
                continue
            ready.append((slot, cand, key))
        if delivered:
            held = self.writers([c.path for _, c, _ in delivered]) if self.writers else set()
            for slot, cand, key in delivered:
                if cand.path in held:  # renamed in before its writer finished: settle
                    cand.delivered = False
                    cand.key, cand.changed_at = key, now
                    log.info("%s arrived still open for writing: waiting for it to settle", slot[1])
                    continue
                ready.append((slot, cand, key))
        for slot, cand, key in ready:
            index = slot[0]
            rule = self.rules[index]
            del self._pending[slot]
            if cand.origin is not None:
                self._move_back(index, cand, key, now)
                continue
            if self._known[index].get(cand.path) == key[:2]:
                continue  # settled earlier (an event without a change)
            if rule.marker_mode and not any(os.path.exists(m) for m in marker_paths(cand.path)):
                continue  # its marker's event (or a rescan) brings it back
            self._batch(index, cand.path, now)

    def _batch(self, index: int, path: str, now: float) -> None:
        opened, _, paths = self._batches.get(index, (now, now, []))
        if path not in paths:
            paths.append(path)
        self._batches[index] = (opened, now, paths)

    def _move_back(self, index: int, cand: _Candidate, key: Stat, now: float) -> None:
        """A settled quarantined file: moved back and batched when it changed since."""
        moved = self._moved[index]
        entry = moved.get(cand.path)
        if entry is None or entry[1] == key[:2] or cand.origin is None:
            return  # gone from the list, or unchanged (e.g. the event of the move itself)
        try:
            back = self.pipeline.move_back(self.rules[index], cand.origin, cand.path)
        except Exception:
            log.exception("moving %s back from the quarantine failed; retrying", cand.path)
            cand.not_before = now + self.retry_seconds
            self._pending[(index, cand.path)] = cand
            return
        if not back and not os.path.exists(cand.path):
            del moved[cand.path]  # removed from the quarantine meanwhile
            return
        if not back:
            log.warning(
                "%s changed in the quarantine but %s exists again: left in the quarantine",
                cand.path,
                cand.origin,
            )
            moved[cand.path] = (cand.origin, key[:2])  # not again until it changes again
            return
        del moved[cand.path]
        log.info("%s changed in the quarantine: moved back to %s", cand.path, cand.origin)
        self._batch(index, cand.origin, now)

    def _flush(self, now: float) -> None:
        """Hand over batches that are full, quiet (no file became ready for the quiet period)
        or whose window closed."""
        for index, (opened, last, paths) in list(self._batches.items()):
            rule = self.rules[index]
            full = len(paths) >= rule.max_batch_files
            quiet = now - last >= rule.batch_quiet_seconds
            if not (full or quiet or now - opened >= rule.batch_window_seconds):
                continue
            del self._batches[index]
            self._process(index, paths[: rule.max_batch_files])
            if len(paths) > rule.max_batch_files:  # the rest form the next batch
                self._batches[index] = (now, now, paths[rule.max_batch_files :])

    def _process(self, index: int, paths: list[str]) -> None:
        rule = self.rules[index]
        try:
            report = self.pipeline.process(rule, paths)
        except Exception:
            self.failures += 1
            log.exception("ingesting %d files into '%s' failed; retrying", len(paths), rule.dataset)
            retry = time.monotonic() + self.retry_seconds
            for path in paths:
                self._pending[(index, path)] = _Candidate(path, not_before=retry)
            return
        self._known[index].update(report.settled)
        for path, (moved_to, key) in report.moved.items():
            self._moved[index][moved_to] = (path, key)
        if report.moved:
            self._watch_quarantine(index)
        now = time.monotonic()
        for path in report.deferred:
            self._pending[(index, path)] = _Candidate(path, changed_at=now)
        self.batches += 1
        self.reports.append(report)
        _log_report(report)


def _log_report(report: BatchReport) -> None:
    if report.missing:
        log.info(
            "%s: %d vanished files: %d items removed%s",
            report.dataset,
            len(report.missing),
            report.removed,
            f"; refresh requested for {', '.join(report.refreshed)}" if report.refreshed else "",
        )
        return
    if not (report.files_added or report.quarantined or report.removed or report.replaced):
        return
    parts = [f"{len(report.files_added)} files ({report.items_added} items) added"]
    if report.replaced:
        parts.append(f"{len(report.replaced)} replaced")
    if report.quarantined:
        parts.append(f"{len(report.quarantined)} quarantined")
    if report.removed:
        parts.append(f"{report.removed} items removed by retention")
    if report.refreshed:
        parts.append(f"refresh requested for {', '.join(report.refreshed)}")
    log.info("%s: %s", report.dataset, "; ".join(parts))
    for path, reason in report.quarantined:
        log.warning("quarantined %s: %s", path, reason)


__all__ = ["FolderWatcher"]
