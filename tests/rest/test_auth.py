"""The auth matrix: anonymous, user, publisher, administrator x every protected operation.

Spec 4.1 (minimum roles), 4.4 (499/498/403 with their exact messages), 4.5 (existence
hiding) and issue 3 §4 (secured services hidden from anonymous listings).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.rest.secure import (
    FORBIDDEN,
    GP,
    ROOT,
    TASK,
    Running,
    build_site,
    running,
    submit,
    wait_job,
)

MESSAGES = {499: "Token Required", 498: "Invalid Token", 403: FORBIDDEN}
USERS = [None, "viewer", "pub1", "admin"]
ALL = [None, "viewer", "pub1", "pub2", "admin"]


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ctx = build_site(tmp_path_factory.mktemp("auth"), shared_data)
    with running(ctx) as r:
        yield r


def outcome(response: httpx.Response) -> int:
    """200 for success; else the error code, after checking the exact message for it."""
    assert response.status_code in (200, 303), response.text[:300]
    if "json" not in response.headers.get("content-type", ""):
        return 200
    body: Any = response.json()
    if isinstance(body, dict) and "error" in body:
        err = body["error"]
        if err["code"] in MESSAGES:
            assert err["message"] == MESSAGES[err["code"]], err
        return int(err["code"])
    if isinstance(body, dict) and body.get("status") == "error":  # admin envelope
        if body["code"] in MESSAGES:
            assert body["messages"][0] == MESSAGES[body["code"]], body
        return int(body["code"])
    return 200


def get(site: Running, path: str, user: str | None, **params: str) -> httpx.Response:
    params.setdefault("f", "json")
    return site.client.get(path, params=params, headers=site.auth(user))


def post(site: Running, path: str, user: str | None, **data: str) -> httpx.Response:
    data.setdefault("f", "json")
    return site.client.post(path, data=data, headers=site.auth(user))


# -- directory ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "private_listed", "system_listed"),
    [(None, False, False), ("viewer", True, False), ("pub1", True, True), ("admin", True, True)],
)
def test_root_listing_shows_what_the_caller_may_read(
    site: Running, user: str | None, private_listed: bool, system_listed: bool
) -> None:
    body = get(site, f"{ROOT}/rest/services", user).json()
    assert ("Private" in body["folders"]) is private_listed
    assert ("System" in body["folders"]) is system_listed
    assert "Live" in body["folders"]
    assert {"name": "pub", "type": "ImageServer"} in body["services"]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, 499),
        ("viewer", {"Private/sec"}),
        ("pub1", {"Private/sec", "Private/granted"}),
        ("pub2", {"Private/sec"}),
        ("admin", {"Private/sec", "Private/granted"}),
    ],
)
def test_secured_folder_listing(site: Running, user: str | None, expected: Any) -> None:
    r = get(site, f"{ROOT}/rest/services/Private", user)
    if expected == 499:
        assert outcome(r) == 499
        return
    assert {s["name"] for s in r.json()["services"]} == expected


@pytest.mark.parametrize(
    ("user", "expected"), [(None, 499), ("viewer", 403), ("pub1", 200), ("admin", 200)]
)
def test_system_folder_listing(site: Running, user: str | None, expected: int) -> None:
    r = get(site, f"{ROOT}/rest/services/System", user)
    assert outcome(r) == expected
    if expected == 200:
        assert r.json()["services"] == [{"name": "System/PublishingTools", "type": "GPServer"}]


# -- secured image services -----------------------------------------------------------------
SERVICE_MATRIX = {
    "pub": {None: 200, "viewer": 200, "pub1": 200, "pub2": 200, "admin": 200},
    "Private/sec": {None: 499, "viewer": 200, "pub1": 200, "pub2": 200, "admin": 200},
    "Private/granted": {None: 499, "viewer": 403, "pub1": 200, "pub2": 403, "admin": 200},
}


@pytest.mark.parametrize("service", list(SERVICE_MATRIX))
@pytest.mark.parametrize("user", ALL)
def test_service_info_export_and_query(site: Running, service: str, user: str | None) -> None:
    expected = SERVICE_MATRIX[service][user]
    svc = f"{ROOT}/rest/services/{service}/ImageServer"
    info = get(site, svc, user)
    assert outcome(info) == expected
    if expected == 200:
        assert info.json()["name"] == service.split("/")[-1]
        assert "X-LiveMosaic-Service-Version" in info.headers
    else:
        assert "X-LiveMosaic-Service-Version" not in info.headers
    image = site.client.get(
        f"{svc}/exportImage",
        params={"f": "image", "size": "32,32", "format": "png"},
        headers=site.auth(user),
    )
    assert outcome(image) == expected
    if expected == 200:
        assert image.content[:4] == b"\x89PNG"
    query = post(site, f"{svc}/query", user, where="1=1", returnCountOnly="true")
    assert outcome(query) == expected


@pytest.mark.parametrize(
    ("user", "path", "expected"),
    [
        (None, "Private/nosuch", 499),  # existence hiding: a folder with secured services
        ("viewer", "Private/nosuch", 404),
        (None, "nosuch", 404),  # the root folder has no secured services
        (None, "System/nosuch", 499),
        ("pub1", "System/nosuch", 404),
    ],
)
def test_missing_services_are_hidden_from_anonymous(
    site: Running, user: str | None, path: str, expected: int
) -> None:
    assert outcome(get(site, f"{ROOT}/rest/services/{path}/ImageServer", user)) == expected


def test_an_invalid_token_on_a_public_service_is_498(site: Running) -> None:
    r = site.client.get(
        f"{ROOT}/rest/services/pub/ImageServer",
        params={"f": "json", "token": "lm1.not.valid"},
    )
    assert outcome(r) == 498


def test_html_error_page_for_a_secured_service(site: Running) -> None:
    r = site.client.get(f"{ROOT}/rest/services/Private/sec/ImageServer")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "Token Required" in r.text and "499" in r.text


# -- geoprocessing --------------------------------------------------------------------------
GP_MATRIX = [(None, 499), ("viewer", 403), ("pub1", 200), ("admin", 200)]


@pytest.mark.parametrize(("user", "expected"), GP_MATRIX)
def test_gp_service_and_task_need_publisher(site: Running, user: str | None, expected: int) -> None:
    assert outcome(get(site, GP, user)) == expected
    assert outcome(post(site, TASK, user)) == expected  # py reads the task with POST first
    assert outcome(get(site, f"{GP}/Refresh+Service", user)) == expected


@pytest.mark.parametrize(("user", "expected"), GP_MATRIX)
def test_submit_job_needs_publisher(site: Running, user: str | None, expected: int) -> None:
    r = post(
        site,
        f"{TASK}/submitJob",
        user,
        serviceName="live",
        serviceType="ImageServer",
        serviceFolder="Live",
    )
    assert outcome(r) == expected
    if expected == 200:
        body = r.json()
        assert body["jobStatus"] == "esriJobSubmitted" and body["jobId"].startswith("j")
        assert len(body["jobId"]) == 33
        done = wait_job(site.client, site.auth(user), body["jobId"])
        assert done["jobStatus"] == "esriJobSucceeded", done


@pytest.fixture(scope="module")
def pub1_job(site: Running) -> str:
    job = submit(site.client, site.auth("pub1"), serviceName="static", serviceType="ImageServer")
    done = wait_job(site.client, site.auth("pub1"), job["jobId"])
    assert done["jobStatus"] == "esriJobFailed"  # static has hasLiveData=false
    return str(job["jobId"])


JOB_MATRIX = [(None, 499), ("viewer", 403), ("pub1", 200), ("pub2", 403), ("admin", 200)]


@pytest.mark.parametrize(("user", "expected"), JOB_MATRIX)
def test_jobs_are_read_by_their_submitter_and_administrators(
    site: Running, pub1_job: str, user: str | None, expected: int
) -> None:
    base = f"{TASK}/jobs/{pub1_job}"
    assert outcome(get(site, base, user)) == expected
    assert outcome(get(site, f"{base}/inputs/serviceName", user)) == expected
    assert outcome(get(site, f"{base}/inputs", user)) == expected
    cancel = get(site, f"{base}/cancel", user)
    assert outcome(cancel) == expected
    if expected == 200:  # a finished job keeps its final status
        assert cancel.json() == {"jobId": pub1_job, "jobStatus": "esriJobFailed"}


def test_unknown_job_is_404_for_publishers_and_499_for_anonymous(site: Running) -> None:
    path = f"{TASK}/jobs/j{'0' * 32}"
    r = get(site, path, "pub1")
    err = r.json()["error"]
    assert err["code"] == 404 and err["message"] == "Job not found."
    assert outcome(get(site, path, None)) == 499
    assert outcome(get(site, path, "viewer")) == 403


# -- admin API ------------------------------------------------------------------------------
@pytest.mark.parametrize(("user", "expected"), GP_MATRIX)
def test_admin_reads_need_publisher(site: Running, user: str | None, expected: int) -> None:
    for path in ("/admin", "/admin/info", "/admin/services", "/admin/services/pub.ImageServer",
                 "/admin/services/pub.ImageServer/status", "/admin/services/Live"):  # fmt: skip
        r = get(site, f"{ROOT}{path}", user)
        assert outcome(r) == expected, path
        if expected != 200:
            body = r.json()
            assert set(body) == {"status", "messages", "code"}, body  # admin envelope


@pytest.mark.parametrize(
    ("user", "expected"), [(None, 499), ("viewer", 403), ("pub1", 403), ("admin", 200)]
)
def test_admin_writes_need_administrator(site: Running, user: str | None, expected: int) -> None:
    stop = post(site, f"{ROOT}/admin/services/static.ImageServer/stop", user)
    assert outcome(stop) == expected
    start = post(site, f"{ROOT}/admin/services/static.ImageServer/start", user)
    assert outcome(start) == expected
    if expected == 200:
        assert stop.json() == {"status": "success"} and start.json() == {"status": "success"}
    svc = get(site, f"{ROOT}/rest/services/static/ImageServer", None)
    assert outcome(svc) == 200  # started again (or never stopped)


def test_admin_token_failure_uses_the_admin_envelope(site: Running) -> None:
    r = site.client.get(f"{ROOT}/admin/services", params={"f": "json", "token": "garbage"})
    body = r.json()
    assert body["status"] == "error" and body["code"] == 498
    assert body["messages"][0] == "Invalid Token"
