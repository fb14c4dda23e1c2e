"""The Refresh Service task's wire format (spec 8): parameters in, ``refreshResults`` out.

:func:`parse_refresh_inputs` reads a submission (request-level errors: missing
``serviceName``/``serviceType`` or a type outside the choice list) into a typed
:class:`~livemosaic.core.refresh.RefreshRequest`, keeping the values as given for the job's
``inputs``. :data:`GP_JOBS` is the :class:`~livemosaic.core.refresh.RefreshJobCodec` of the
server: job inputs, the ``refreshResults`` GPString (before and after of every changed
field) and the names of changed fields as service info spells them (``fullExtent``,
``timeInfo.timeExtent``…), which the notification messages use too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from livemosaic.core.models import DatasetSummary
from livemosaic.core.refresh import (
    SERVICE_TYPES,
    RefreshOutcome,
    RefreshRequest,
    SummaryField,
    summary_values,
)
from livemosaic.errors import InvalidParameter

INPUT_NAMES = ("serviceName", "serviceType", "serviceFolder", "refreshOptions")
OUTPUT_NAME = "refreshResults"

# service-info names of each summary field, in the order Refresh Service reports them
WIRE_NAMES: dict[SummaryField, tuple[str, ...]] = {
    SummaryField.EXTENT: ("extent", "fullExtent", "initialExtent"),
    SummaryField.PIXEL_SIZE_X: ("pixelSizeX",),
    SummaryField.PIXEL_SIZE_Y: ("pixelSizeY",),
    SummaryField.MAX_PIXEL_SIZE: ("maxPixelSize",),
    SummaryField.TIME_EXTENT: ("timeInfo.timeExtent",),
    SummaryField.DIMENSIONS: ("multidimensionalInfo",),
    SummaryField.BAND_COUNT: ("bandCount",),
    SummaryField.PIXEL_TYPE: ("pixelType",),
    SummaryField.STATISTICS: ("statistics",),
    SummaryField.ITEM_COUNT: ("itemCount",),
}


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed submitJob: the typed request and the inputs as given (for the job)."""

    request: RefreshRequest
    inputs: dict[str, str]


def wire_names(fields: Iterable[SummaryField]) -> list[str]:
    """Service-info names of changed fields (``extent`` is also ``fullExtent``…)."""
    return [name for f in fields for name in WIRE_NAMES[f]]


def _json_value(value: object) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def wire_values(summary: DatasetSummary) -> dict[str, Any]:
    """Each service-info name of a summary with its JSON value."""
    values = summary_values(summary)
    return {name: _json_value(values[f]) for f in WIRE_NAMES for name in WIRE_NAMES[f]}


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


def parse_refresh_inputs(params: Mapping[str, str | None]) -> Submission:
    """Validate submitJob parameters (InvalidParameter names the parameter at fault)."""
    raw = {k: _unquote(params.get(k)) for k in INPUT_NAMES}
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
    request = RefreshRequest(folder, name, canonical, force=bool(options.get("force", False)))
    return Submission(request, raw)


def results_json(outcome: RefreshOutcome) -> str:
    """The ``refreshResults`` GPString value (spec 8.7.4), before and after."""
    summary = outcome.after.summary
    changed = wire_names(outcome.changed)
    before = wire_values(outcome.before.summary) if outcome.before else None
    after = wire_values(summary)
    out = {
        "success": True,
        "service": f"{outcome.after.qualified_name}.ImageServer",
        "generation": outcome.after.version,
        "previousGeneration": outcome.before.version if outcome.before else None,
        "itemCount": summary.item_count,
        "changed": changed,
        "timeExtent": list(summary.time_extent) if summary.time_extent else None,
        "pixelSizeX": summary.min_cell_size_x,
        "pixelSizeY": summary.min_cell_size_y,
        "before": {k: before[k] for k in changed} if before else None,
        "after": {k: after[k] for k in changed},
    }
    return json.dumps(out, allow_nan=False, default=str)


class GpRefreshJobs:
    """Refresh jobs as the GP task shows them: parameters in, ``refreshResults`` out."""

    def job_inputs(self, request: RefreshRequest) -> dict[str, str]:
        """The task parameters of ``request`` (as a client would submit them)."""
        return {
            "serviceName": request.name,
            "serviceType": request.service_type,
            "serviceFolder": request.folder,
            "refreshOptions": '{"force": true}' if request.force else "",
        }

    def read_request(self, inputs: Mapping[str, str]) -> RefreshRequest:
        """The request of a job's stored parameters."""
        return parse_refresh_inputs(inputs).request

    def job_results(self, outcome: RefreshOutcome) -> dict[str, str]:
        """``{"refreshResults": …}``."""
        return {OUTPUT_NAME: results_json(outcome)}

    def field_names(self, fields: tuple[SummaryField, ...]) -> list[str]:
        """Service-info names (``extent, fullExtent, initialExtent``…)."""
        return wire_names(fields)


GP_JOBS = GpRefreshJobs()

__all__ = [
    "GP_JOBS",
    "INPUT_NAMES",
    "OUTPUT_NAME",
    "WIRE_NAMES",
    "GpRefreshJobs",
    "Submission",
    "parse_refresh_inputs",
    "results_json",
    "wire_names",
    "wire_values",
]
