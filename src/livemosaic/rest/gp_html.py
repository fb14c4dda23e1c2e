"""HTML pages of the GP service, like the ArcGIS Services Directory shows them.

The task page lists the parameters and has a form that submits a job; the job page shows
status, messages, inputs and results, reloads itself while the job runs and offers cancel.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from livemosaic.core.jobs import Job
from livemosaic.rest import jobs_json as jj
from livemosaic.rest.html import Link, page, pretty, resource_page
from livemosaic.rest.params import Params


def service_page(request: Request, data: dict[str, Any], task: str) -> str:
    """The GP service page: its properties and a link to the task."""
    return resource_page(
        request,
        "PublishingTools (GPServer)",
        data,
        children=[Link(name, task) for name in data["tasks"]],
        show_properties=True,
    )


def task_page(request: Request, data: dict[str, Any], params: Params, task: str) -> str:
    """The task page: parameters, and a form posting to submitJob."""
    inputs = [p for p in data["parameters"] if p["direction"].endswith("Input")]
    return page(
        request,
        "gp_task.html",
        f"{data['displayName']} (Task)",
        task=data,
        parameters=data["parameters"],
        inputs=[
            {
                "name": p["name"],
                "required": p["parameterType"].endswith("Required"),
                "choices": p.get("choiceList", []),
                "value": params.raw(p["name"]) or "",
            }
            for p in inputs
        ],
        action=f"{task}/submitJob",
        token=params.get("token") or "",
    )


def job_page(request: Request, job: Job, url: str, task: str) -> str:
    """The job page: status, messages, results and inputs; reloads while running."""
    result = jj.result_value(job, jj.OUTPUT_NAME)
    value = None
    if result is not None:
        try:
            value = pretty(json.loads(str(result["value"])))
        except ValueError:
            value = str(result["value"])
    return page(
        request,
        "gp_job.html",
        f"Job {job.id}",
        job=job,
        messages=jj.messages_json(job),
        inputs=jj.inputs_list(job),
        result=value,
        result_url=f"{url}/results/{jj.OUTPUT_NAME}",
        cancel_url=f"{url}/cancel",
        task_url=task,
        running=not job.is_terminal,
    )


def value_page(request: Request, title: str, data: object, job: str) -> str:
    """A result or input parameter page."""
    return resource_page(request, title, data, children=[Link("Job", job)])


__all__ = ["job_page", "service_page", "task_page", "value_page"]
