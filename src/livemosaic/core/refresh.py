"""Refresh Service: bring a live image service's published snapshot up to date.

A refresh is asked for with a typed :class:`RefreshRequest` and answers a typed
:class:`RefreshOutcome`: the snapshots before and after and the :class:`SummaryField` values
that changed. :class:`Refresher` checks the service (exists, is an image service, is started,
has ``hasLiveData``), rebuilds the snapshot from the catalog's dataset summary (constant cost
at any catalog size), persists it with the next version, swaps it in and reports what
changed. Refreshes of one service never interleave: they run under the publisher's
per-service lock (retrying on top of a snapshot another process stored meanwhile) and the job
runner never executes two jobs of one service at once across processes.

Refreshes run as jobs. How a request and its outcome are written into a job — the task's
parameters of the web API — is the business of a :class:`RefreshJobCodec` that the web layer
provides; core never reads or writes that format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from livemosaic.core.jobs import SUBMITTED, Job, new_job_id
from livemosaic.core.models import DatasetSummary, ServiceSnapshot
from livemosaic.core.ports import ServiceStore
from livemosaic.core.publishing import Publisher
from livemosaic.errors import LiveMosaicError, NotFound

SERVICE_TYPES = ("ImageServer", "FeatureServer", "MapServer", "SceneServer")
REFRESHABLE = "ImageServer"
TASK_NAME = "Refresh Service"


class RefreshFailed(LiveMosaicError):
    """A refresh job cannot complete; the message goes into the failed job."""

    code = 400


class SummaryField(StrEnum):
    """What a refresh can change in a service's published description."""

    EXTENT = "extent"
    PIXEL_SIZE_X = "pixel_size_x"
    PIXEL_SIZE_Y = "pixel_size_y"
    MAX_PIXEL_SIZE = "max_pixel_size"
    TIME_EXTENT = "time_extent"
    DIMENSIONS = "dimensions"
    BAND_COUNT = "band_count"
    PIXEL_TYPE = "pixel_type"
    STATISTICS = "statistics"
    ITEM_COUNT = "item_count"


# Fields whose change needs a refresh for clients (the ingest pipeline's trigger).
REFRESH_FIELDS = (
    SummaryField.EXTENT,
    SummaryField.PIXEL_SIZE_X,
    SummaryField.PIXEL_SIZE_Y,
    SummaryField.MAX_PIXEL_SIZE,
    SummaryField.TIME_EXTENT,
    SummaryField.DIMENSIONS,
)


@dataclass(frozen=True, slots=True)
class RefreshRequest:
    """Refresh service ``folder/name`` of type ``service_type`` (``force``: a new version
    even when nothing changed)."""

    folder: str
    name: str
    service_type: str = REFRESHABLE
    force: bool = False

    @property
    def qualified(self) -> str:
        """``Folder/Name.Type`` as used in messages."""
        name = f"{self.folder}/{self.name}" if self.folder else self.name
        return f"{name}.{self.service_type}"

    @property
    def service_key(self) -> str:
        """Lower-cased ``folder/name`` used to serialise refreshes of one service."""
        return f"{self.folder.lower()}/{self.name.lower()}"


def summary_values(summary: DatasetSummary) -> dict[SummaryField, object]:
    """The value of each :class:`SummaryField` in a summary (comparable, JSON-friendly)."""
    ext = summary.extent
    return {
        SummaryField.EXTENT: None if ext is None else (ext.xmin, ext.ymin, ext.xmax, ext.ymax),
        SummaryField.PIXEL_SIZE_X: summary.min_cell_size_x,
        SummaryField.PIXEL_SIZE_Y: summary.min_cell_size_y,
        SummaryField.MAX_PIXEL_SIZE: summary.max_cell_size_x,
        SummaryField.TIME_EXTENT: tuple(summary.time_extent) if summary.time_extent else None,
        SummaryField.DIMENSIONS: {
            v.name: {d.name: tuple(d.values) for d in v.dimensions} for v in summary.variables
        },
        SummaryField.BAND_COUNT: summary.band_count,
        SummaryField.PIXEL_TYPE: summary.pixel_type,
        SummaryField.STATISTICS: tuple((s.min, s.max, s.mean, s.std) for s in summary.band_stats),
        SummaryField.ITEM_COUNT: summary.item_count,
    }


def changed_fields(old: ServiceSnapshot | None, new: ServiceSnapshot) -> tuple[SummaryField, ...]:
    """The fields that differ between two snapshots (for a first one: those with a value)."""
    after = summary_values(new.summary)
    if old is None:
        return tuple(k for k, v in after.items() if v not in (None, (), {}, 0))
    before = summary_values(old.summary)
    return tuple(k for k in after if before[k] != after[k])


def summary_changes(
    published: ServiceSnapshot | None, current: DatasetSummary
) -> list[SummaryField]:
    """The :data:`REFRESH_FIELDS` that differ between a published snapshot and a summary."""
    if published is None:
        return list(REFRESH_FIELDS)
    candidate = replace(published, summary=current)
    return [f for f in changed_fields(published, candidate) if f in REFRESH_FIELDS]


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What a refresh did: the snapshot before (None: none yet), after, and the changes."""

    before: ServiceSnapshot | None
    after: ServiceSnapshot
    changed: tuple[SummaryField, ...]


class RefreshJobCodec(Protocol):
    """How refreshes are written into jobs and read back (the web API's task parameters)."""

    def job_inputs(self, request: RefreshRequest) -> dict[str, str]:
        """The job inputs that ask for ``request``."""
        ...

    def read_request(self, inputs: Mapping[str, str]) -> RefreshRequest:
        """The request of stored job inputs (InvalidParameter when they are not one)."""
        ...

    def job_results(self, outcome: RefreshOutcome) -> dict[str, str]:
        """The job results of a refresh that succeeded."""
        ...

    def field_names(self, fields: tuple[SummaryField, ...]) -> list[str]:
        """How the job's messages name changed fields."""
        ...


class Refresher:
    """Runs refreshes: validation, snapshot rebuild, persist, swap, change report."""

    def __init__(
        self,
        catalog: ServiceStore,
        publisher: Publisher,
        *,
        on_refreshed: Callable[[RefreshOutcome], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.publisher = publisher
        self.on_refreshed = on_refreshed

    def refresh(self, request: RefreshRequest) -> RefreshOutcome:
        """Refresh one service (RefreshFailed with the job's error message otherwise)."""
        if request.service_type != REFRESHABLE:
            raise RefreshFailed(
                f"Refreshing {request.service_type} services is not supported by this server; "
                f"only image services ({REFRESHABLE}) can be refreshed."
            )
        try:
            definition = self.catalog.get_service(request.folder, request.name)
        except NotFound:
            raise RefreshFailed(f"Service '{request.qualified}' was not found.") from None
        name = f"{definition.qualified_name}.ImageServer"
        if definition.configured_state != "STARTED":
            raise RefreshFailed(
                f"Service is not started: '{name}'. Start it (admin API …/{name}/start) and retry."
            )
        if not definition.has_live_data:
            raise RefreshFailed(
                f"Service '{name}' is not configured with hasLiveData=true. Enable it with "
                f"`livemosaic service set {definition.qualified_name} --live` or the admin API "
                f'(edit properties.hasLiveData to "true").'
            )
        seen: list[tuple[ServiceSnapshot | None, tuple[SummaryField, ...]]] = []

        def build(current: ServiceSnapshot | None, version: int) -> ServiceSnapshot | None:
            latest = self.catalog.get_service(definition.folder, definition.name)
            candidate = self.publisher.build_snapshot(latest, version)
            changed = changed_fields(current, candidate)
            seen[:] = [(current, changed)]
            if current is not None and not changed and not request.force:
                return None
            return candidate

        after = self.publisher.install_next(definition.folder, definition.name, build)
        before, changed = seen[0]
        if before is not None and after is before:
            return RefreshOutcome(before, before, ())
        outcome = RefreshOutcome(before, after, changed)
        if self.on_refreshed is not None:
            self.on_refreshed(outcome)
        return outcome


def new_refresh_job(
    request: RefreshRequest, inputs: Mapping[str, str], owner: str, now: int
) -> Job:
    """A submitted Refresh Service job for ``request``, carrying ``inputs`` as given."""
    return Job(
        id=new_job_id(),
        task=TASK_NAME,
        status=SUBMITTED,
        owner=owner,
        inputs=dict(inputs),
        created=now,
        updated=now,
        service_key=request.service_key,
    )


__all__ = [
    "REFRESHABLE",
    "REFRESH_FIELDS",
    "SERVICE_TYPES",
    "TASK_NAME",
    "RefreshFailed",
    "RefreshJobCodec",
    "RefreshOutcome",
    "RefreshRequest",
    "Refresher",
    "SummaryField",
    "changed_fields",
    "new_refresh_job",
    "summary_changes",
    "summary_values",
]
