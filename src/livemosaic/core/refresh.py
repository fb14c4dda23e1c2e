"""Refresh Service: bring a live image service's published snapshot up to date.

:func:`parse_refresh_inputs` validates a submission (request-level errors: missing
``serviceName``/``serviceType`` or a type outside the choice list). :class:`Refresher` runs a
refresh for a job: it checks the service (exists, is an image service, is started, has
``hasLiveData``), rebuilds the snapshot from the catalog's dataset summary (constant cost at
any catalog size), persists it with the next version, swaps it in and reports what changed.
Refreshes of one service never interleave: they run under the publisher's per-service lock
(retrying on top of a snapshot another process stored meanwhile) and the job runner never
executes two jobs of one service at once across processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from livemosaic.core.jobs import SUBMITTED, Job, new_job_id
from livemosaic.core.models import DatasetSummary, ServiceSnapshot
from livemosaic.core.ports import ServiceStore
from livemosaic.core.publishing import Publisher
from livemosaic.errors import InvalidParameter, LiveMosaicError, NotFound

SERVICE_TYPES = ("ImageServer", "FeatureServer", "MapServer", "SceneServer")
TASK_NAME = "Refresh Service"


class RefreshFailed(LiveMosaicError):
    """A refresh job cannot complete; the message goes into the failed job."""

    code = 400


@dataclass(frozen=True, slots=True)
class RefreshInputs:
    """Validated Refresh Service parameters."""

    service_name: str
    service_type: str
    service_folder: str
    options: Mapping[str, Any]
    raw: Mapping[str, str]

    @property
    def qualified(self) -> str:
        """``Folder/Name.Type`` as used in messages."""
        name = (
            f"{self.service_folder}/{self.service_name}"
            if self.service_folder
            else self.service_name
        )
        return f"{name}.{self.service_type}"

    @property
    def service_key(self) -> str:
        """Lower-cased ``folder/name`` used to serialise refreshes of one service."""
        return f"{self.service_folder.lower()}/{self.service_name.lower()}"


def _unquote(value: str | None) -> str:
    """Strip one level of JSON string quoting and the arcpy placeholder ``#``."""
    if value is None:
        return ""
    text = value.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            loaded = json.loads(text)
        except (ValueError, RecursionError):
            loaded = text
        text = loaded if isinstance(loaded, str) else text
    return "" if text == "#" else text


def parse_refresh_inputs(params: Mapping[str, str | None]) -> RefreshInputs:
    """Validate submitJob parameters (InvalidParameter names the parameter at fault)."""
    raw = {
        k: _unquote(params.get(k))
        for k in ("serviceName", "serviceType", "serviceFolder", "refreshOptions")
    }
    name = raw["serviceName"]
    stype = raw["serviceType"]
    folder = raw["serviceFolder"].strip("/")
    if not name:
        raise InvalidParameter(
            "serviceName", "is required.", accepted="the service name, e.g. Sentinel2"
        )
    if not stype:
        raise InvalidParameter("serviceType", "is required.", accepted=" | ".join(SERVICE_TYPES))
    canonical = next((t for t in SERVICE_TYPES if t.lower() == stype.lower()), None)
    if canonical is None:
        raise InvalidParameter(
            "serviceType", f"'{stype}' is not a service type.", accepted=" | ".join(SERVICE_TYPES)
        )
    if "/" in name and not folder:
        folder, name = name.rsplit("/", 1)
    options: dict[str, Any] = {}
    if raw["refreshOptions"]:
        try:
            loaded = json.loads(raw["refreshOptions"])
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise InvalidParameter(
                "refreshOptions",
                "is not JSON.",
                accepted='a JSON object such as {"force": true} or an empty value',
            ) from None
        if not isinstance(loaded, dict):
            raise InvalidParameter("refreshOptions", "must be a JSON object.", accepted="{…}")
        options = loaded
    return RefreshInputs(name, canonical, folder, options, raw)


def _summary_fields(summary: DatasetSummary) -> dict[str, Any]:
    ext = summary.extent
    extent = None if ext is None else [ext.xmin, ext.ymin, ext.xmax, ext.ymax]
    dims = {v.name: {d.name: list(d.values) for d in v.dimensions} for v in summary.variables}
    return {
        "extent": extent,
        "fullExtent": extent,
        "initialExtent": extent,
        "pixelSizeX": summary.min_cell_size_x,
        "pixelSizeY": summary.min_cell_size_y,
        "maxPixelSize": summary.max_cell_size_x,
        "timeInfo.timeExtent": list(summary.time_extent) if summary.time_extent else None,
        "multidimensionalInfo": dims,
        "bandCount": summary.band_count,
        "pixelType": summary.pixel_type,
        "statistics": [[s.min, s.max, s.mean, s.std] for s in summary.band_stats],
        "itemCount": summary.item_count,
    }


def changed_fields(old: ServiceSnapshot | None, new: ServiceSnapshot) -> list[str]:
    """Dotted names of the service-info fields that differ between two snapshots."""
    after = _summary_fields(new.summary)
    if old is None:
        return [k for k, v in after.items() if v not in (None, [], {}, 0)]
    before = _summary_fields(old.summary)
    return [k for k in after if before[k] != after[k]]


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What a refresh did."""

    before: ServiceSnapshot | None
    after: ServiceSnapshot
    changed: tuple[str, ...]

    def results_json(self) -> str:
        """The ``refreshResults`` GPString value (spec 8.7.4), before and after."""
        summary = self.after.summary
        before = _summary_fields(self.before.summary) if self.before else None
        after = _summary_fields(summary)
        out = {
            "success": True,
            "service": f"{self.after.qualified_name}.ImageServer",
            "generation": self.after.version,
            "previousGeneration": self.before.version if self.before else None,
            "itemCount": summary.item_count,
            "changed": list(self.changed),
            "timeExtent": list(summary.time_extent) if summary.time_extent else None,
            "pixelSizeX": summary.min_cell_size_x,
            "pixelSizeY": summary.min_cell_size_y,
            "before": {k: before[k] for k in self.changed} if before else None,
            "after": {k: after[k] for k in self.changed},
        }
        return json.dumps(out, allow_nan=False, default=str)


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

    def refresh(self, inputs: RefreshInputs) -> RefreshOutcome:
        """Refresh one service (RefreshFailed with the job's error message otherwise)."""
        if inputs.service_type != "ImageServer":
            raise RefreshFailed(
                f"Refreshing {inputs.service_type} services is not supported by this server; "
                "only image services (ImageServer) can be refreshed."
            )
        try:
            definition = self.catalog.get_service(inputs.service_folder, inputs.service_name)
        except NotFound:
            raise RefreshFailed(f"Service '{inputs.qualified}' was not found.") from None
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
        force = bool(inputs.options.get("force", False))
        seen: list[tuple[ServiceSnapshot | None, tuple[str, ...]]] = []

        def build(current: ServiceSnapshot | None, version: int) -> ServiceSnapshot | None:
            latest = self.catalog.get_service(definition.folder, definition.name)
            candidate = self.publisher.build_snapshot(latest, version)
            changed = tuple(changed_fields(current, candidate))
            seen[:] = [(current, changed)]
            if current is not None and not changed and not force:
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


def new_refresh_job(inputs: RefreshInputs, owner: str, now: int) -> Job:
    """A submitted Refresh Service job carrying the inputs as given."""
    return Job(
        id=new_job_id(),
        task=TASK_NAME,
        status=SUBMITTED,
        owner=owner,
        inputs=dict(inputs.raw),
        created=now,
        updated=now,
        service_key=inputs.service_key,
    )
