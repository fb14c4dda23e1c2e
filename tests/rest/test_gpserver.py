"""The PublishingTools GP service and its Refresh Service task (spec 8) on a live server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livemosaic.core import jobs
from livemosaic.core.jobs import Job, new_job_id
from tests.rest.secure import (
    GP,
    TASK,
    Running,
    build_site,
    messages,
    refresh,
    running,
    submit,
    wait_job,
)

SPEC_TASK = {
    "name": "RefreshService",
    "displayName": "Refresh Service",
    "description": "Refreshes the cached description of a live image service after its mosaic changed.",
    "category": "",
    "executionType": "esriExecutionTypeAsynchronous",
    "parameters": [
        {"name": "serviceName", "dataType": "GPString", "displayName": "Service Name", "description": "", "category": "",
         "direction": "esriGPParameterDirectionInput", "defaultValue": "", "parameterType": "esriGPParameterTypeRequired"},
        {"name": "serviceType", "dataType": "GPString", "displayName": "Service Type", "description": "", "category": "",
         "direction": "esriGPParameterDirectionInput", "defaultValue": "", "parameterType": "esriGPParameterTypeRequired",
         "choiceList": ["ImageServer", "FeatureServer", "MapServer", "SceneServer"]},
        {"name": "serviceFolder", "dataType": "GPString", "displayName": "Service Folder", "description": "", "category": "",
         "direction": "esriGPParameterDirectionInput", "defaultValue": "", "parameterType": "esriGPParameterTypeOptional"},
        {"name": "refreshOptions", "dataType": "GPString", "displayName": "Refresh Options", "description": "", "category": "",
         "direction": "esriGPParameterDirectionInput", "defaultValue": "", "parameterType": "esriGPParameterTypeOptional"},
        {"name": "refreshResults", "dataType": "GPString", "displayName": "Results", "description": "", "category": "",
         "direction": "esriGPParameterDirectionOutput", "defaultValue": "", "parameterType": "esriGPParameterTypeDerived"},
    ],
}  # fmt: skip
INPUTS = {
    "serviceName": {"paramUrl": "inputs/serviceName"},
    "serviceType": {"paramUrl": "inputs/serviceType"},
    "serviceFolder": {"paramUrl": "inputs/serviceFolder"},
    "refreshOptions": {"paramUrl": "inputs/refreshOptions"},
}


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ctx = build_site(tmp_path_factory.mktemp("gp"), shared_data)
    with running(ctx) as r:
        yield r


@pytest.fixture(scope="module")
def pub(site: Running) -> dict[str, str]:
    return site.auth("pub1")


def get(site: Running, path: str, headers: dict[str, str], **params: str) -> Any:
    params.setdefault("f", "json")
    return site.client.get(path, params=params, headers=headers).json()


def test_gp_service_json(site: Running, pub: dict[str, str]) -> None:
    body = get(site, GP, pub)
    assert body == {
        "currentVersion": 11.1,
        "serviceDescription": "",
        "tasks": ["Refresh Service"],
        "executionType": "esriExecutionTypeAsynchronous",
        "resultMapServerName": "",
        "maximumRecords": 1000,
        "capabilities": "",
    }


@pytest.mark.parametrize(
    "segment", ["Refresh%20Service", "Refresh+Service", "refresh%20service", "REFRESH+SERVICE"]
)
def test_task_json_exactly_as_the_spec(site: Running, pub: dict[str, str], segment: str) -> None:
    body = get(site, f"{GP}/{segment}", pub)
    help_url = body.pop("helpUrl")
    assert (
        help_url
        == f"{site.base}/arcgis/rest/services/System/PublishingTools/GPServer/Refresh%20Service"
    )
    assert body == SPEC_TASK
    # py reads the task resource with POST first
    assert (
        site.client.post(f"{GP}/{segment}", data={"f": "json"}, headers=pub).json()["name"]
        == "RefreshService"
    )


def test_unknown_task_and_execute(site: Running, pub: dict[str, str]) -> None:
    err = get(site, f"{GP}/Publish%20Service", pub)["error"]
    assert err["code"] == 404 and err["message"] == "Task not found."
    err = get(site, f"{TASK}/execute", pub, serviceName="live", serviceType="ImageServer")["error"]
    assert err == {
        "code": 400,
        "message": "Requested operation is not supported by this service.",
        "details": err["details"],
    }
    assert "submitJob" in " ".join(err["details"])


@pytest.mark.parametrize(
    ("inputs", "parameter"),
    [
        ({"serviceType": "ImageServer"}, "serviceName"),
        ({"serviceName": "live"}, "serviceType"),
        ({"serviceName": "#", "serviceType": "ImageServer"}, "serviceName"),
        ({"serviceName": "live", "serviceType": "GeocodeServer"}, "serviceType"),
        (
            {"serviceName": "live", "serviceType": "ImageServer", "refreshOptions": "{not json"},
            "refreshOptions",
        ),
        (
            {"serviceName": "live", "serviceType": "ImageServer", "refreshOptions": "[1]"},
            "refreshOptions",
        ),
    ],
)
def test_submit_job_request_errors_name_the_parameter(
    site: Running, pub: dict[str, str], inputs: dict[str, str], parameter: str
) -> None:
    body = submit(site.client, pub, **inputs)
    err = body["error"]
    assert err["code"] == 400 and err["message"] == "Unable to complete operation."
    assert f"'{parameter}'" in err["details"][0]


def test_job_lifecycle_and_resources(site: Running, pub: dict[str, str]) -> None:
    # GPString values may arrive JSON-quoted; "#" means "not given"; folder inside the name
    job = submit(
        site.client, pub, serviceName='"Live/live"', serviceType='"imageserver"',
        serviceFolder="#", refreshOptions="#", **{"env:outSR": "4326", "context": "{}"},
    )  # fmt: skip
    assert set(job) == {"jobId", "jobStatus"} and job["jobStatus"] == "esriJobSubmitted"
    done = wait_job(site.client, pub, job["jobId"])
    assert done["jobStatus"] == "esriJobSucceeded", done
    assert done["results"] == {"refreshResults": {"paramUrl": "results/refreshResults"}}
    assert done["inputs"] == INPUTS
    text = messages(done)
    assert text[0].startswith("Start Time: ") and text[-1].startswith("Succeeded at ")
    assert all(m["type"] == "esriJobMessageTypeInformative" for m in done["messages"])
    quiet = get(site, f"{TASK}/jobs/{job['jobId']}", pub, returnMessages="false")
    assert "messages" not in quiet and quiet["jobStatus"] == "esriJobSucceeded"
    base = f"{TASK}/jobs/{job['jobId']}"
    result = get(site, f"{base}/results/refreshResults", pub)
    assert result["paramName"] == "refreshResults" and result["dataType"] == "GPString"
    value = json.loads(result["value"])
    assert value["success"] is True and value["service"] == "Live/live.ImageServer"
    assert get(site, f"{base}/inputs/serviceName", pub) == {
        "paramName": "serviceName", "dataType": "GPString", "value": "Live/live"
    }  # fmt: skip
    assert get(site, f"{base}/inputs/serviceFolder", pub)["value"] == ""
    assert get(site, f"{base}/inputs/refreshOptions", pub)["value"] == ""
    assert get(site, f"{base}/inputs/serviceType", pub)["value"] == "imageserver"
    assert [p["paramName"] for p in get(site, f"{base}/inputs", pub)] == list(INPUTS)
    assert get(site, f"{base}/results", pub) == [result]
    err = get(site, f"{base}/inputs/nosuch", pub)["error"]
    assert err["code"] == 404
    # cancelling a finished job changes nothing
    assert get(site, f"{base}/cancel", pub) == {
        "jobId": job["jobId"],
        "jobStatus": "esriJobSucceeded",
    }


def _held_job(site: Running, status: jobs.JobStatus, key: str, worker: str | None) -> Job:
    now = int(time.time() * 1000)
    job = Job(
        id=new_job_id(), task="Refresh Service", status=status, owner="pub1",
        inputs={"serviceName": "live", "serviceType": "ImageServer", "serviceFolder": "Live",
                "refreshOptions": ""},
        created=now, updated=now, service_key=key, worker=worker,
        started=now if worker else None,
    )  # fmt: skip
    return site.ctx.jobs.create_job(job)


def test_results_before_success_and_cancel(site: Running, pub: dict[str, str]) -> None:
    # a job held by a live (heartbeating) worker of another process stays executing
    store = site.ctx.jobs
    store.heartbeat("other-process", int(time.time() * 1000))
    running_job = _held_job(site, jobs.EXECUTING, "held/one", "other-process")
    waiting_job = _held_job(site, jobs.SUBMITTED, "held/one", None)  # same service: must wait
    time.sleep(0.3)  # the runner had time to look, and must not have claimed it
    base = f"{TASK}/jobs/{waiting_job.id}"
    body = get(site, base, pub)
    assert body["jobStatus"] == "esriJobSubmitted" and body["results"] == {}
    err = get(site, f"{base}/results/refreshResults", pub)["error"]
    assert err["code"] == 400 and "esriJobSubmitted" in err["details"][0]
    assert get(site, f"{base}/results", pub) == []
    assert site.client.post(f"{base}/cancel", data={"f": "json"}, headers=pub).json() == {
        "jobId": waiting_job.id, "jobStatus": "esriJobCancelled"
    }  # fmt: skip
    executing = f"{TASK}/jobs/{running_job.id}"
    assert get(site, executing, pub)["jobStatus"] == "esriJobExecuting"
    assert get(site, f"{executing}/cancel", pub)["jobStatus"] == "esriJobCancelling"
    assert store.get_job(running_job.id).status == "esriJobCancelling"


def test_refresh_results_json(site: Running, pub: dict[str, str]) -> None:
    done = refresh(site.client, pub, "ndvi", "Live", refreshOptions='{"force": true}')
    assert done["jobStatus"] == "esriJobSucceeded"
    value = json.loads(
        get(site, f"{TASK}/jobs/{done['jobId']}/results/refreshResults", pub)["value"]
    )
    assert value["success"] is True
    assert value["generation"] > value["previousGeneration"]
    assert value["itemCount"] == 3 and len(value["timeExtent"]) == 2
    assert {"changed", "before", "after", "pixelSizeX", "pixelSizeY"} <= set(value)


# -- HTML -----------------------------------------------------------------------------------
def test_html_pages(site: Running, pub: dict[str, str]) -> None:
    page = site.client.get(GP, headers=pub)
    assert "text/html" in page.headers["content-type"] and "Refresh Service" in page.text
    task = site.client.get(TASK, headers=pub)
    assert (
        'action="/arcgis/rest/services/System/PublishingTools/GPServer/Refresh%20Service/submitJob"'
        in task.text
    )
    for name in ("serviceName", "serviceType", "serviceFolder", "refreshOptions"):
        assert f'name="{name}"' in task.text
    form = site.client.get(f"{TASK}/submitJob", headers=pub)  # no inputs: the form again
    assert 'method="post"' in form.text
    # submitting the form: redirected to the job page
    r = site.client.post(
        f"{TASK}/submitJob",
        data={
            "serviceName": "live",
            "serviceType": "ImageServer",
            "serviceFolder": "Live",
            "f": "html",
        },
        headers=pub,
    )
    assert r.status_code == 303
    job_path = r.headers["location"]
    assert "/Refresh%20Service/jobs/j" in job_path
    job_id = job_path.rsplit("/", 1)[1]
    wait_job(site.client, pub, job_id)
    job_page = site.client.get(job_path, headers=pub)
    assert "esriJobSucceeded" in job_page.text and "Start Time:" in job_page.text
    assert "refreshResults" in job_page.text and "Live/live.ImageServer" in job_page.text
    result_page = site.client.get(f"{job_path}/results/refreshResults", headers=pub)
    assert "text/html" in result_page.headers["content-type"] and "GPString" in result_page.text
