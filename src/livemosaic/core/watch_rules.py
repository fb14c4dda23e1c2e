"""Watch rules: which folder feeds which mosaic dataset and service, and how.

A :class:`WatchRule` maps one watched folder to a dataset (and optionally the service to
refresh): recursion, include/exclude globs, the settle time a file written in place must stay
unchanged, the batch window and its quiet period, marker mode, quarantine policy, retention, the overview and statistics
policy, and whether the items of files that go away are removed (``remove_missing``). Rules come from a TOML file (:func:`load_rules`, format in ``docs/watching.md``) or
from CLI flags (:func:`rule_from_mapping`). Values are checked here, so a typo in a
configuration file fails at start-up with the key and the accepted form.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from livemosaic.core.publishing import split_qualified
from livemosaic.errors import InvalidParameter

QuarantineMode = Literal["move", "record"]
QUARANTINE_MODES: tuple[QuarantineMode, ...] = ("move", "record")
DAY_MS = 86_400_000
DEFAULT_SETTLE_SECONDS = 2.0
DEFAULT_BATCH_WINDOW_SECONDS = 1.0
DEFAULT_BATCH_QUIET_SECONDS = 0.2
DEFAULT_RESCAN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Retention:
    """Which items a dataset keeps; None switches a limit off.

    ``keep_days``: items whose acquisition time lies more than this many days before the
    newest item's time are removed. ``keep_last``: only the newest N items (by acquisition
    time, then OBJECTID) are kept. ``max_age_days``: items added to the catalog more than this
    many days ago are removed.
    """

    keep_days: float | None = None
    keep_last: int | None = None
    max_age_days: float | None = None

    @property
    def active(self) -> bool:
        """True when any limit is set."""
        return any(v is not None for v in (self.keep_days, self.keep_last, self.max_age_days))


@dataclass(frozen=True, slots=True)
class WatchRule:
    """One watched folder feeding one mosaic dataset (and the service that publishes it)."""

    folder: Path
    dataset: str
    service: str | None = None  # "Folder/Name" or "Name"; None = every live service of dataset
    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # a file written in place is taken once unchanged this long; one renamed into the folder
    # (or whose marker arrived) is complete when it appears and is taken at once
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    # a batch of ready files is handed over once no further file became ready for
    # ``batch_quiet_seconds``, and at the latest ``batch_window_seconds`` after its first file
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS
    batch_quiet_seconds: float = DEFAULT_BATCH_QUIET_SECONDS
    marker_mode: bool = False  # take ``x.tif`` only once ``x.tif.done`` (or ``x.done``) exists
    quarantine: QuarantineMode = "move"
    quarantine_dir: Path | None = None  # default: ``<folder>/.quarantine`` (ignored by scans)
    retention: Retention = field(default_factory=Retention)
    build_overviews: bool = False  # external .ovr next to non-COG GeoTIFFs without overviews
    compute_statistics: bool = True
    max_batch_files: int = 500  # most files per batch (one transaction); more wait for the next
    rescan_seconds: float = (
        DEFAULT_RESCAN_SECONDS  # full rescan period (events get lost on network filesystems)
    )
    polling: bool = False  # poll instead of OS events (for filesystems without notifications)
    # a settled file deleted (or renamed away) from the folder loses its items, and the
    # services publishing the dataset are refreshed; off: its items stay (and draw a hole)
    remove_missing: bool = False
    time_pattern: str | None = None  # used when the dataset is created by the watcher

    @property
    def service_name(self) -> tuple[str, str] | None:
        """(folder, name) of the service to refresh, or None."""
        return split_qualified(self.service) if self.service else None

    @property
    def effective_quarantine_dir(self) -> Path:
        """Where move-mode quarantine puts bad files."""
        return self.quarantine_dir or (self.folder / ".quarantine")

    @staticmethod
    def adhoc(dataset: str, service: str | None = None, *, folder: Path | None = None) -> WatchRule:
        """A rule for files named explicitly (CLI add, HTTP notify): bad files are only recorded."""
        if service:
            split_qualified(service)  # InvalidParameter for a malformed name
        return WatchRule(
            folder=folder or Path(os.sep),
            dataset=dataset,
            service=service,
            settle_seconds=0.0,
            batch_window_seconds=0.0,
            batch_quiet_seconds=0.0,
            quarantine="record",
        )


def _type_error(key: str, value: Any, accepted: str) -> InvalidParameter:
    return InvalidParameter(key, f"{value!r} has the wrong type.", accepted=accepted)


def _number(key: str, value: Any, *, integer: bool = False, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(key, value, "an integer" if integer else "a number")
    if integer and not float(value).is_integer():
        raise _type_error(key, value, "an integer")
    if value < 0:
        raise InvalidParameter(key, f"{value} is negative.", accepted="zero or more")
    return int(value) if integer else float(value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _type_error(key, value, "true or false")
    return value


def _patterns(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _type_error(key, value, 'a glob or a list of globs, e.g. ["*.tif", "*.nc"]')


def _retention(value: Any) -> Retention:
    if isinstance(value, Retention):
        return value
    if not isinstance(value, Mapping):
        raise _type_error("retention", value, "a table with keep_days, keep_last, max_age_days")
    unknown = set(value) - {"keep_days", "keep_last", "max_age_days"}
    if unknown:
        raise InvalidParameter(
            "retention",
            f"unknown key(s) {', '.join(sorted(unknown))}.",
            accepted="keep_days, keep_last, max_age_days",
        )
    keep_last = _number("retention.keep_last", value.get("keep_last"), integer=True)
    if keep_last == 0:
        raise InvalidParameter(
            "retention.keep_last", "0 would remove every item.", accepted="1 or more"
        )
    return Retention(
        keep_days=_number("retention.keep_days", value.get("keep_days")),
        keep_last=keep_last,
        max_age_days=_number("retention.max_age_days", value.get("max_age_days")),
    )


RULE_KEYS = frozenset(f.name for f in fields(WatchRule)) | {"marker"}


def rule_from_mapping(values: Mapping[str, Any], *, base: Path | None = None) -> WatchRule:
    """A checked rule from TOML-like values; relative folders are resolved against ``base``."""
    unknown = set(values) - RULE_KEYS
    if unknown:
        raise InvalidParameter(
            "watch",
            f"unknown key(s) {', '.join(sorted(unknown))}.",
            accepted=", ".join(sorted(RULE_KEYS - {"marker_mode"})),
        )
    for required in ("folder", "dataset"):
        if not values.get(required):
            raise InvalidParameter(required, "is required for every watched folder.")

    def path(key: str) -> Path | None:
        raw = values.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str | Path):
            raise _type_error(key, raw, "a folder path")
        p = Path(os.path.expanduser(str(raw)))
        if not p.is_absolute() and base is not None:
            p = base / p
        return Path(os.path.abspath(p))

    folder = path("folder")
    assert folder is not None
    dataset = values["dataset"]
    service = values.get("service")
    if not isinstance(dataset, str) or (service is not None and not isinstance(service, str)):
        raise _type_error("dataset/service", (dataset, service), "names as strings")
    if service:
        split_qualified(service)  # InvalidParameter for a malformed name
    quarantine = values.get("quarantine", "move")
    if quarantine not in QUARANTINE_MODES:
        raise InvalidParameter(
            "quarantine", f"{quarantine!r} is not a quarantine mode.", accepted="move | record"
        )
    marker = values.get("marker_mode", values.get("marker", False))
    time_pattern = values.get("time_pattern")
    if time_pattern is not None and not isinstance(time_pattern, str):
        raise _type_error("time_pattern", time_pattern, "a pattern such as %Y-%m-%d")
    rule = WatchRule(
        folder=folder,
        dataset=dataset.strip(),
        service=service.strip() if service else None,
        recursive=_flag("recursive", values.get("recursive", True)),
        include=_patterns("include", values.get("include", ())),
        exclude=_patterns("exclude", values.get("exclude", ())),
        settle_seconds=_number(
            "settle_seconds", values.get("settle_seconds", DEFAULT_SETTLE_SECONDS), allow_none=False
        ),
        batch_window_seconds=_number(
            "batch_window_seconds",
            values.get("batch_window_seconds", DEFAULT_BATCH_WINDOW_SECONDS),
            allow_none=False,
        ),
        batch_quiet_seconds=_number(
            "batch_quiet_seconds",
            values.get("batch_quiet_seconds", DEFAULT_BATCH_QUIET_SECONDS),
            allow_none=False,
        ),
        marker_mode=_flag("marker_mode", marker),
        quarantine=quarantine,
        quarantine_dir=path("quarantine_dir"),
        retention=_retention(values.get("retention", {})),
        build_overviews=_flag("build_overviews", values.get("build_overviews", False)),
        compute_statistics=_flag("compute_statistics", values.get("compute_statistics", True)),
        max_batch_files=_number(
            "max_batch_files", values.get("max_batch_files", 500), integer=True, allow_none=False
        ),
        rescan_seconds=_number(
            "rescan_seconds", values.get("rescan_seconds", DEFAULT_RESCAN_SECONDS), allow_none=False
        ),
        polling=_flag("polling", values.get("polling", False)),
        remove_missing=_flag("remove_missing", values.get("remove_missing", False)),
        time_pattern=time_pattern,
    )
    if rule.max_batch_files < 1:
        raise InvalidParameter(
            "max_batch_files", f"{rule.max_batch_files} is too small.", accepted="1 or more"
        )
    if rule.rescan_seconds < 1.0:
        raise InvalidParameter(
            "rescan_seconds", f"{rule.rescan_seconds} is too short.", accepted="1 or more seconds"
        )
    return rule


def parse_rules(document: Mapping[str, Any], *, base: Path | None = None) -> list[WatchRule]:
    """Rules from a parsed TOML document: ``[defaults]`` merged into every ``[[watch]]``."""
    unknown = set(document) - {"defaults", "watch"}
    if unknown:
        raise InvalidParameter(
            "config", f"unknown table(s) {', '.join(sorted(unknown))}.", accepted="defaults, watch"
        )
    defaults = document.get("defaults", {})
    entries = document.get("watch", [])
    if not isinstance(defaults, Mapping) or not isinstance(entries, list):
        raise InvalidParameter(
            "config", "expects a [defaults] table and [[watch]] entries.", accepted="see docs"
        )
    rules: list[WatchRule] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise InvalidParameter("watch", "every [[watch]] entry must be a table.")
        merged = {**defaults, **entry}
        if isinstance(defaults.get("retention"), Mapping) and isinstance(
            entry.get("retention"), Mapping
        ):
            merged["retention"] = {**defaults["retention"], **entry["retention"]}
        rules.append(rule_from_mapping(merged, base=base))
    check_rules(rules)
    return rules


def load_rules(path: str | Path) -> list[WatchRule]:
    """Rules from a TOML file (InvalidParameter naming the problem when it is malformed)."""
    file = Path(path)
    try:
        with file.open("rb") as fh:
            document = tomllib.load(fh)
    except OSError as exc:
        raise InvalidParameter(
            "config", f"{file} cannot be read ({exc.strerror}).", accepted="a TOML file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameter("config", f"{file} is not valid TOML ({exc}).") from None
    return parse_rules(document, base=file.resolve().parent)


def check_rules(rules: Sequence[WatchRule]) -> None:
    """Refuse rule sets that would feed one folder to one dataset twice."""
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        key = (str(rule.folder), rule.dataset.casefold())
        if key in seen:
            raise InvalidParameter(
                "watch",
                f"folder {rule.folder} is watched twice for dataset '{rule.dataset}'.",
                accepted="one [[watch]] entry per folder and dataset",
            )
        seen.add(key)


def rule_for(
    rules: Sequence[WatchRule], path: str | Path, dataset: str | None = None
) -> WatchRule | None:
    """The rule whose folder holds ``path`` (deepest folder first), optionally for ``dataset``.

    Lets files named by other scripts (CLI, HTTP notify) inherit a watched folder's settings;
    None when no rule matches (use :meth:`WatchRule.adhoc` then).
    """
    real = os.path.realpath(path)
    best: WatchRule | None = None
    for rule in rules:
        root = os.path.realpath(rule.folder)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            continue
        if dataset is not None and rule.dataset.casefold() != dataset.casefold():
            continue
        if best is None or len(root) > len(os.path.realpath(best.folder)):
            best = rule
    return best


__all__ = [
    "DAY_MS",
    "DEFAULT_BATCH_QUIET_SECONDS",
    "DEFAULT_BATCH_WINDOW_SECONDS",
    "DEFAULT_SETTLE_SECONDS",
    "QUARANTINE_MODES",
    "QuarantineMode",
    "Retention",
    "WatchRule",
    "check_rules",
    "load_rules",
    "parse_rules",
    "rule_for",
    "rule_from_mapping",
]
