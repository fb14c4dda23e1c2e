"""The JSON of ``System/PublishingTools``: GP service, ``Refresh Service`` task, jobs (spec 8).

Field names and values are the ones ArcGIS clients read; the ArcGIS API for Python indexes
several of them directly (``resultMapServerName``, the six parameter keys, ``results`` as soon
as a job succeeded), so none may go missing.
"""

from __future__ import annotations

from typing import Any

from livemosaic.core import jobs
from livemosaic.core.jobs import Job
from livemosaic.core.refresh import SERVICE_TYPES, TASK_NAME
from livemosaic.rest.refresh_wire import INPUT_NAMES, OUTPUT_NAME

TASK_ID = "RefreshService"
ASYNC = "esriExecutionTypeAsynchronous"
GP_STRING = "GPString"
TASK_DESCRIPTION = (
    "Refreshes the cached description of a live image service after its mosaic changed."
)


def gp_service_json(current_version: float) -> dict[str, Any]:
    """``{gp}``: the PublishingTools GP service resource (8.1)."""
    return {
        "currentVersion": current_version,
        "serviceDescription": "",
        "tasks": [TASK_NAME],
        "executionType": ASYNC,
        "resultMapServerName": "",
        "maximumRecords": 1000,
        "capabilities": "",
    }


def _parameter(
    name: str,
    display: str,
    *,
    output: bool = False,
    required: bool = False,
    choices: tuple[str, ...] = (),
) -> dict[str, Any]:
    if output:
        kind = "esriGPParameterTypeDerived"
    else:
        kind = "esriGPParameterTypeRequired" if required else "esriGPParameterTypeOptional"
    out: dict[str, Any] = {
        "name": name,
        "dataType": GP_STRING,
        "displayName": display,
        "description": "",
        "category": "",
        "direction": "esriGPParameterDirectionOutput"
        if output
        else "esriGPParameterDirectionInput",
        "defaultValue": "",
        "parameterType": kind,
    }
    if choices:
        out["choiceList"] = list(choices)
    return out


def task_json(help_url: str) -> dict[str, Any]:
    """``{task}``: the Refresh Service task resource, exactly as spec 8.7.1 shows it."""
    return {
        "name": TASK_ID,
        "displayName": TASK_NAME,
        "description": TASK_DESCRIPTION,
        "category": "",
        "helpUrl": help_url,
        "executionType": ASYNC,
        "parameters": [
            _parameter("serviceName", "Service Name", required=True),
            _parameter("serviceType", "Service Type", required=True, choices=SERVICE_TYPES),
            _parameter("serviceFolder", "Service Folder"),
            _parameter("refreshOptions", "Refresh Options"),
            _parameter(OUTPUT_NAME, "Results", output=True),
        ],
    }


def messages_json(job: Job) -> list[dict[str, str]]:
    """A job's messages as ArcGIS job message objects."""
    return [{"type": m.type, "description": m.description} for m in job.messages]


def job_json(job: Job, *, return_messages: bool) -> dict[str, Any]:
    """``{task}/jobs/{jobId}`` (8.4): ``results`` appear once the job succeeded."""
    succeeded = job.status == jobs.SUCCEEDED and OUTPUT_NAME in job.results
    out: dict[str, Any] = {
        "jobId": job.id,
        "jobStatus": job.status,
        "results": {OUTPUT_NAME: {"paramUrl": f"results/{OUTPUT_NAME}"}} if succeeded else {},
        "inputs": {name: {"paramUrl": f"inputs/{name}"} for name in INPUT_NAMES},
    }
    if return_messages:
        out["messages"] = messages_json(job)
    return out


def job_status_json(job: Job) -> dict[str, str]:
    """``{"jobId", "jobStatus"}`` (submitJob and cancel answers)."""
    return {"jobId": job.id, "jobStatus": job.status}


def result_value(job: Job, name: str) -> dict[str, Any] | None:
    """``results/{name}`` of a succeeded job, None before success or for other names."""
    if job.status != jobs.SUCCEEDED or name != OUTPUT_NAME or name not in job.results:
        return None
    return {"paramName": name, "dataType": GP_STRING, "value": job.results[name]}


def input_value(job: Job, name: str) -> dict[str, Any] | None:
    """``inputs/{name}`` as submitted (``""`` when omitted); None for unknown names."""
    canonical = next((n for n in INPUT_NAMES if n.lower() == name.lower()), None)
    if canonical is None:
        return None
    return {"paramName": canonical, "dataType": GP_STRING, "value": job.inputs.get(canonical, "")}


def results_list(job: Job) -> list[dict[str, Any]]:
    """``jobs/{id}/results``: every output parameter value (empty before success)."""
    value = result_value(job, OUTPUT_NAME)
    return [value] if value is not None else []


def inputs_list(job: Job) -> list[dict[str, Any]]:
    """``jobs/{id}/inputs``: every input parameter as submitted."""
    return [v for v in (input_value(job, n) for n in INPUT_NAMES) if v is not None]


__all__ = [
    "INPUT_NAMES",
    "OUTPUT_NAME",
    "TASK_ID",
    "gp_service_json",
    "input_value",
    "inputs_list",
    "job_json",
    "job_status_json",
    "messages_json",
    "result_value",
    "results_list",
    "task_json",
]
