"""``System/PublishingTools`` GP service: the ``Refresh Service`` task and its jobs (spec 8).

Every resource needs the publisher role (499 anonymous, 403 below publisher); a job is
visible to its submitter and to administrators only. ``submitJob`` validates the request
(400s name the parameter), stores the job in the shared job store and wakes this process's
runner, which normally finishes a refresh within milliseconds. Failures after submission
(unknown or non-live service, other service types, stopped service) are failed jobs, not
errors (spec 3.4). Each resource also answers ``f=html`` like the Services Directory.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from livemosaic.core import jobs
from livemosaic.core.jobs import InvalidTransition, Job, transition
from livemosaic.core.ports import JobStore
from livemosaic.core.refresh import TASK_NAME, new_refresh_job
from livemosaic.core.security import Principal
from livemosaic.errors import UNABLE, Forbidden, LiveMosaicError, NotFound, NotSupported
from livemosaic.rest import gp_html
from livemosaic.rest import jobs_json as jj
from livemosaic.rest.auth import (
    SYSTEM_ROLE,
    current_principal,
    now_ms,
    request_origin_of,
    require_role,
)
from livemosaic.rest.context import app_context, root_path
from livemosaic.rest.formats import json_response, resource_response
from livemosaic.rest.params import Params, read_params
from livemosaic.rest.refresh_wire import parse_refresh_inputs

router = APIRouter()
METHODS = ["GET", "POST"]
GP = "/rest/services/system/publishingtools/gpserver"
TASK = GP + "/{task}"
JOB = TASK + "/jobs/{job_id}"
CANCEL_NOTE = "Cancel requested."


class ResultNotReady(LiveMosaicError):
    """A job's results were asked for before it succeeded."""

    code = 400
    default_message = UNABLE


def gp_url(request: Request) -> str:
    """Path of the GP service (canonical spelling)."""
    return f"{root_path(request)}/rest/services/System/PublishingTools/GPServer"


def task_url(request: Request) -> str:
    """Path of the Refresh Service task (space percent-encoded)."""
    return f"{gp_url(request)}/{quote(TASK_NAME)}"


def job_url(request: Request, job_id: str) -> str:
    """Path of a job resource."""
    return f"{task_url(request)}/jobs/{job_id}"


def _authorize(request: Request) -> Principal:
    return require_role(current_principal(request), SYSTEM_ROLE)


def _check_task(request: Request) -> None:
    task = str(request.path_params.get("task", "")).replace("+", " ").strip().lower()
    if task != TASK_NAME.lower():
        raise NotFound(
            f"The GP service has no task '{task[:80]}'; its only task is '{TASK_NAME}'.",
            message="Task not found.",
        )


def _job_not_found(job_id: str) -> NotFound:
    return NotFound(f"Job '{job_id[:80]}' does not exist.", message="Job not found.")


async def _visible_job(request: Request) -> tuple[Principal, Job]:
    """The job of the path, if the caller submitted it or is an administrator."""
    principal = _authorize(request)
    _check_task(request)
    job_id = str(request.path_params["job_id"])
    job = await asyncio.to_thread(app_context(request).jobs.get_job, job_id)
    if job.task != TASK_NAME:
        raise _job_not_found(job_id)
    if job.owner != principal.username and principal.role != "administrator":
        raise Forbidden(f"Job '{job.id}' was submitted by another user.")
    return principal, job


@router.api_route(GP, methods=METHODS)
async def gp_service(request: Request) -> Response:
    """``{gp}``: the GP service resource."""
    params = await read_params(request)
    _authorize(request)
    data = jj.gp_service_json(app_context(request).settings.current_version)
    return resource_response(
        request, params, data, lambda: gp_html.service_page(request, data, task_url(request))
    )


@router.api_route(TASK, methods=METHODS)
async def task_resource(request: Request) -> Response:
    """``{task}``: the Refresh Service task (``Refresh%20Service`` or ``Refresh+Service``)."""
    params = await read_params(request)
    _authorize(request)
    _check_task(request)
    data = jj.task_json(request_origin_of(request).base + task_url(request))
    return resource_response(
        request, params, data, lambda: gp_html.task_page(request, data, params, task_url(request))
    )


@router.api_route(TASK + "/submitjob", methods=METHODS)
async def submit_job(request: Request) -> Response:
    """``{task}/submitJob``: validate, store the job, wake the runner; answer its id."""
    params = await read_params(request)
    principal = _authorize(request)
    _check_task(request)
    html = params.f in (None, "html")
    raw = {name: params.raw(name) for name in jj.INPUT_NAMES}
    if html and not any(raw.values()):
        data = jj.task_json(request_origin_of(request).base + task_url(request))
        return HTMLResponse(gp_html.task_page(request, data, params, task_url(request)))
    submission = parse_refresh_inputs(raw)
    ctx = app_context(request)
    job = new_refresh_job(submission.request, submission.inputs, principal.username or "", now_ms())
    await asyncio.to_thread(ctx.jobs.create_job, job)
    if ctx.runner is not None:
        ctx.runner.wake()
    if html:
        target = job_url(request, job.id)
        token = params.get("token")
        if token:
            target += f"?token={quote(token)}"
        return RedirectResponse(target, status_code=303)
    return json_response(request, params, jj.job_status_json(job))


@router.api_route(TASK + "/execute", methods=METHODS)
async def execute(request: Request) -> Response:
    """``{task}/execute``: the task is asynchronous, so this is not supported."""
    await read_params(request)
    _authorize(request)
    _check_task(request)
    raise NotSupported(
        f"'{TASK_NAME}' is an asynchronous task (esriExecutionTypeAsynchronous).",
        next_step="Use submitJob and poll the job.",
    )


@router.api_route(JOB, methods=METHODS)
async def job_resource(request: Request) -> Response:
    """``{task}/jobs/{jobId}``: status, inputs, results (once succeeded) and messages."""
    params = await read_params(request)
    _principal, job = await _visible_job(request)
    data = jj.job_json(job, return_messages=params.flag("returnMessages", True))
    return resource_response(
        request,
        params,
        data,
        lambda: gp_html.job_page(request, job, job_url(request, job.id), task_url(request)),
    )


def cancel_job(store: JobStore, job: Job, now: int) -> Job:
    """Cancel a job: submitted → cancelled, executing → cancelling; finished jobs unchanged."""
    for _ in range(5):
        if job.is_terminal or job.status == jobs.CANCELLING:
            return job
        target = jobs.CANCELLING if job.status == jobs.EXECUTING else jobs.CANCELLED
        new = transition(job, target, now, messages=(jobs.info(CANCEL_NOTE),))
        try:
            return store.update_job(new, expected_status=job.status)
        except InvalidTransition:
            job = store.get_job(job.id)  # changed meanwhile: look again
    return job


@router.api_route(JOB + "/cancel", methods=METHODS)
async def cancel(request: Request) -> Response:
    """``{task}/jobs/{jobId}/cancel`` (GET or POST)."""
    params = await read_params(request)
    _principal, job = await _visible_job(request)
    ctx = app_context(request)
    job = await asyncio.to_thread(cancel_job, ctx.jobs, job, now_ms())
    if params.f in (None, "html"):
        return RedirectResponse(job_url(request, job.id), status_code=303)
    return json_response(request, params, jj.job_status_json(job))


def _not_ready(job: Job) -> ResultNotReady:
    return ResultNotReady(
        f"Job '{job.id}' has no results: its status is {job.status}.",
        next_step="Poll the job until its status is esriJobSucceeded.",
    )


def _unknown_parameter(name: str, kind: str) -> NotFound:
    return NotFound(
        f"The task has no {kind} parameter '{name[:80]}'.", message="Parameter not found."
    )


def _param_page(request: Request, params: Params, title: str, data: object, url: str) -> Response:
    return resource_response(
        request, params, data, lambda: gp_html.value_page(request, title, data, url)
    )


@router.api_route(JOB + "/results", methods=METHODS)
async def results(request: Request) -> Response:
    """``jobs/{jobId}/results``: every result value (empty before success)."""
    params = await read_params(request)
    _principal, job = await _visible_job(request)
    return _param_page(request, params, "Results", jj.results_list(job), job_url(request, job.id))


@router.api_route(JOB + "/results/{param}", methods=METHODS)
async def result(request: Request) -> Response:
    """``jobs/{jobId}/results/refreshResults`` (400 before the job succeeded)."""
    params = await read_params(request)
    _principal, job = await _visible_job(request)
    name = str(request.path_params["param"])
    if name.lower() != jj.OUTPUT_NAME.lower():
        raise _unknown_parameter(name, "output")
    value = jj.result_value(job, jj.OUTPUT_NAME)
    if value is None:
        raise _not_ready(job)
    return _param_page(request, params, jj.OUTPUT_NAME, value, job_url(request, job.id))


@router.api_route(JOB + "/inputs", methods=METHODS)
async def inputs(request: Request) -> Response:
    """``jobs/{jobId}/inputs``: every input value as submitted."""
    params = await read_params(request)
    _principal, job = await _visible_job(request)
    return _param_page(request, params, "Inputs", jj.inputs_list(job), job_url(request, job.id))


@router.api_route(JOB + "/inputs/{param}", methods=METHODS)
async def input_param(request: Request) -> Response:
    """``jobs/{jobId}/inputs/{param}``: one input value as submitted (``""`` when omitted)."""
    params = await read_params(request)
    _principal, job = await _visible_job(request)
    name = str(request.path_params["param"])
    value = jj.input_value(job, name)
    if value is None:
        raise _unknown_parameter(name, "input")
    return _param_page(request, params, str(value["paramName"]), value, job_url(request, job.id))


@router.api_route(TASK + "/{rest:path}", methods=METHODS)
async def unknown_task_child(request: Request) -> Response:
    """Any other child of the task: not an operation of this task."""
    await read_params(request)
    _authorize(request)
    _check_task(request)
    rest = str(request.path_params.get("rest", ""))
    if rest.startswith("jobs/"):
        raise _job_not_found(rest.split("/")[1])
    raise NotSupported(f"'{rest[:80]}' is not an operation of the task '{TASK_NAME}'.")


@router.api_route("/rest/services/system/{rest:path}", methods=METHODS)
async def unknown_system_service(request: Request) -> Response:
    """Other names in the System folder: secured (499/403) before they are missing (404)."""
    await read_params(request)
    _authorize(request)
    raise NotFound(
        f"The System folder has no service '{str(request.path_params['rest'])[:80]}'.",
        message="Service not found.",
    )


__all__ = ["cancel_job", "gp_url", "job_url", "router", "task_url"]
