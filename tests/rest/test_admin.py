"""The administrator API subset (spec 9) with the admin envelope (spec 3.3)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rest.secure import ROOT, Running, build_site, refresh, running

ADMIN = f"{ROOT}/admin"


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ctx = build_site(tmp_path_factory.mktemp("admin"), shared_data)
    with running(ctx) as r:
        yield r


@pytest.fixture(scope="module")
def admin(site: Running) -> dict[str, str]:
    return site.auth("admin")


def get(site: Running, path: str, headers: dict[str, str], **params: str) -> Any:
    params.setdefault("f", "json")
    return site.client.get(f"{ADMIN}{path}", params=params, headers=headers).json()


def post(site: Running, path: str, headers: dict[str, str], **data: str) -> Any:
    data.setdefault("f", "json")
    return site.client.post(f"{ADMIN}{path}", data=data, headers=headers).json()


def rest(site: Running, service: str, headers: dict[str, str] | None = None) -> Any:
    r = site.client.get(
        f"{ROOT}/rest/services/{service}/ImageServer", params={"f": "json"}, headers=headers or {}
    )
    return r.json()


def test_root_and_info(site: Running, admin: dict[str, str]) -> None:
    root = get(site, "", admin)
    assert root["resources"] == ["services"] and root["currentVersion"] == 11.1
    assert root["fullVersion"] == "11.1.0"
    info = get(site, "/info", admin)
    assert info["loggedInUser"] == "admin" and info["loggedInUserPrivilege"] == "ADMINISTER"
    assert get(site, "/info", site.auth("pub1"))["loggedInUserPrivilege"] == "PUBLISH"


def test_folder_listings(site: Running, admin: dict[str, str]) -> None:
    root = get(site, "/services", admin)
    assert root["folderName"] == "/" and root["isDefault"] is True
    assert {"Live", "Private", "System"} <= set(root["folders"])
    assert {d["folderName"] for d in root["foldersDetail"]} == set(root["folders"])
    names = {(s["folderName"], s["serviceName"], s["type"]) for s in root["services"]}
    assert ("/", "pub", "ImageServer") in names and ("/", "halted", "ImageServer") in names
    live = get(site, "/services/live", admin)
    assert live["folderName"] == "Live"
    assert {s["serviceName"] for s in live["services"]} >= {"live", "ndvi"}
    system = get(site, "/services/System", admin)
    assert {
        "folderName": "System",
        "serviceName": "PublishingTools",
        "type": "GPServer",
        "description": system["services"][0]["description"],
    } in system["services"]
    gp = get(site, "/services/System/PublishingTools.GPServer", admin)
    assert gp["type"] == "GPServer" and gp["configuredState"] == "STARTED"
    missing = get(site, "/services/NoSuchFolder", admin)
    assert missing["status"] == "error" and missing["code"] == 404


def test_service_configuration(site: Running, admin: dict[str, str]) -> None:
    config = get(site, "/services/Live/live.ImageServer", admin)
    assert config["serviceName"] == "live" and config["type"] == "ImageServer"
    assert config["configuredState"] == "STARTED" and config["private"] is False
    props = config["properties"]
    assert all(isinstance(v, str) for v in props.values())
    assert props["hasLiveData"] == "true" and props["path"] == "livemosaic:live"
    assert get(site, "/services/static.ImageServer", admin)["properties"]["hasLiveData"] == "false"
    for key in (
        "capabilities",
        "provider",
        "clusterName",
        "maxInstancesPerNode",
        "extensions",
        "frameworkProperties",
        "datasets",
    ):
        assert key in config
    status = get(site, "/services/Live/live.ImageServer/status", admin)
    assert status == {"configuredState": "STARTED", "realTimeState": "STARTED"}
    missing = get(site, "/services/Live/nope.ImageServer", admin)
    assert missing == {
        "status": "error",
        "messages": ["Service not found.", "Service 'Live/nope.ImageServer' does not exist."],
        "code": 404,
    }


def test_edit_enables_live_data_without_downtime(site: Running, admin: dict[str, str]) -> None:
    pub = site.auth("pub1")
    assert refresh(site.client, pub, "static")["jobStatus"] == "esriJobFailed"
    config = get(site, "/services/static.ImageServer", admin)
    config["properties"]["hasLiveData"] = True  # JSON booleans are accepted
    config["description"] = "Now live"
    before = int(
        site.client.get(f"{ROOT}/rest/services/static/ImageServer", params={"f": "json"}).headers[
            "X-LiveMosaic-Service-Version"
        ]
    )
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:  # a reader during the edit: never an error
        while not stop.is_set():
            body = rest(site, "static")
            if "error" in body:
                failures.append(json.dumps(body))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert post(
            site, "/services/static.ImageServer/edit", admin, service=json.dumps(config)
        ) == {"status": "success"}
    finally:
        stop.set()
        reader.join(timeout=30)
    assert failures == []
    stored = get(site, "/services/static.ImageServer", admin)
    assert stored["properties"]["hasLiveData"] == "true" and stored["description"] == "Now live"
    r = site.client.get(f"{ROOT}/rest/services/static/ImageServer", params={"f": "json"})
    assert r.json()["description"] == "Now live"
    assert int(r.headers["X-LiveMosaic-Service-Version"]) > before
    assert refresh(site.client, pub, "static")["jobStatus"] == "esriJobSucceeded"


def test_edit_validation(site: Running, admin: dict[str, str]) -> None:
    config = get(site, "/services/pub.ImageServer", admin)
    renamed = dict(config, serviceName="other")
    err = post(site, "/services/pub.ImageServer/edit", admin, service=json.dumps(renamed))
    assert err["status"] == "error" and err["code"] == 400
    assert any("does not rename" in m for m in err["messages"])
    for bad in ("{not json", "[1]", json.dumps(dict(config, type="MapServer"))):
        err = post(site, "/services/pub.ImageServer/edit", admin, service=bad)
        assert err["status"] == "error" and err["code"] == 400, bad
    missing_dataset = dict(config, properties=dict(config["properties"], path="livemosaic:nosuch"))
    err = post(site, "/services/pub.ImageServer/edit", admin, service=json.dumps(missing_dataset))
    assert err["status"] == "error" and err["code"] == 404
    # writes need POST
    r = site.client.get(
        f"{ADMIN}/services/pub.ImageServer/stop", params={"f": "json"}, headers=admin
    )
    assert r.status_code == 405 and r.json()["code"] == 405
    assert rest(site, "pub")["name"] == "pub"


def test_edit_and_create_refuse_malformed_properties(site: Running, admin: dict[str, str]) -> None:
    config = get(site, "/services/pub.ImageServer", admin)
    before = rest(site, "pub")
    for key, value in (
        ("maxImageWidth", "wide"),
        ("maxRecordCount", -5),
        ("defaultCompressionQuality", 101),
        ("sortAscending", "maybe"),
        ("mosaicOperator", "MT_MEDIAN"),
    ):
        bad = dict(config, properties=dict(config["properties"], **{key: value}))
        err = post(site, "/services/pub.ImageServer/edit", admin, service=json.dumps(bad))
        assert err["status"] == "error" and err["code"] == 400, err
        assert any(key in m and "accepted" in m for m in err["messages"]), err
    assert rest(site, "pub") == before  # nothing was applied
    created = {"serviceName": "badprops", "type": "ImageServer",
               "properties": {"path": config["properties"]["path"], "maxSampleCount": "lots"}}  # fmt: skip
    err = post(site, "/services/createService", admin, service=json.dumps(created))
    assert err["code"] == 400 and any("maxSampleCount" in m for m in err["messages"])
    assert rest(site, "badprops")["error"]["code"] == 404


def test_edit_makes_a_service_private(site: Running, admin: dict[str, str]) -> None:
    config = get(site, "/services/pub.ImageServer", admin)
    config["private"] = True
    assert (
        post(site, "/services/pub.ImageServer/edit", admin, service=json.dumps(config))["status"]
        == "success"
    )
    assert rest(site, "pub")["error"]["code"] == 499
    assert rest(site, "pub", site.auth("viewer"))["name"] == "pub"
    config["private"] = False
    assert (
        post(site, "/services/pub.ImageServer/edit", admin, service=json.dumps(config))["status"]
        == "success"
    )
    assert rest(site, "pub")["name"] == "pub"


def test_stop_start_status(site: Running, admin: dict[str, str]) -> None:
    assert post(site, "/services/Live/ndvi.ImageServer/stop", admin) == {"status": "success"}
    err = rest(site, "Live/ndvi")["error"]
    assert err["code"] == 500 and err["message"] == "Service 'Live/ndvi' is not started."
    assert get(site, "/services/Live/ndvi.ImageServer/status", admin) == {
        "configuredState": "STOPPED",
        "realTimeState": "STOPPED",
    }
    listed = site.client.get(f"{ROOT}/rest/services/Live", params={"f": "json"}).json()
    assert {"name": "Live/ndvi", "type": "ImageServer"} in listed["services"]  # stays listed
    assert post(site, "/services/Live/ndvi.ImageServer/start", admin) == {"status": "success"}
    assert rest(site, "Live/ndvi")["name"] == "ndvi"
    bulk = json.dumps({"services": [{"folderName": "Live", "serviceName": "ndvi", "type": "ImageServer"},
                                    {"folderName": "", "serviceName": "static", "type": "ImageServer"}]})  # fmt: skip
    assert post(site, "/services/stopServices", admin, services=bulk) == {"status": "success"}
    assert rest(site, "static")["error"]["code"] == 500
    assert post(site, "/services/startServices", admin, services=bulk) == {"status": "success"}
    assert rest(site, "static")["name"] == "static" and rest(site, "Live/ndvi")["name"] == "ndvi"


def test_create_and_delete_service(site: Running, admin: dict[str, str]) -> None:
    service = {"serviceName": "created", "type": "ImageServer", "description": "made by the admin API",
               "properties": {"path": "livemosaic:tiles", "hasLiveData": "true", "maxImageWidth": 2048}}  # fmt: skip
    assert post(site, "/services/Made/createService", admin, service=json.dumps(service)) == {
        "status": "success"
    }
    body = rest(site, "Made/created")
    assert body["name"] == "created" and body["description"] == "made by the admin API"
    assert body["maxImageWidth"] == 2048
    config = get(site, "/services/Made/created.ImageServer", admin)
    assert (
        config["properties"]["maxImageWidth"] == "2048"
        and config["properties"]["hasLiveData"] == "true"
    )
    assert (
        refresh(site.client, site.auth("pub1"), "created", "Made")["jobStatus"]
        == "esriJobSucceeded"
    )
    dup = post(site, "/services/Made/createService", admin, service=json.dumps(service))
    assert dup == {"status": "error", "messages": ["Service already exists."], "code": 400}
    no_path = post(
        site,
        "/services/createService",
        admin,
        service=json.dumps({"serviceName": "x", "type": "ImageServer"}),
    )
    assert no_path["status"] == "error" and no_path["code"] == 400
    no_dataset = dict(service, serviceName="y", properties={"path": "livemosaic:nosuch"})
    assert (
        post(site, "/services/createService", admin, service=json.dumps(no_dataset))["code"] == 404
    )
    in_system = post(
        site,
        "/services/System/createService",
        admin,
        service=json.dumps(dict(service, serviceName="z")),
    )
    assert in_system["status"] == "error"
    assert post(site, "/services/Made/created.ImageServer/delete", admin) == {"status": "success"}
    assert rest(site, "Made/created")["error"]["code"] == 404
    site.ctx.catalog.get_dataset("tiles")  # the data stays
    assert post(site, "/services/Made/created.ImageServer/delete", admin)["code"] == 404


def test_folders(site: Running, admin: dict[str, str]) -> None:
    assert post(site, "/services/createFolder", admin, folderName="Empty", description="x") == {
        "status": "success"
    }
    assert "Empty" in get(site, "/services", admin)["folders"]
    assert get(site, "/services/Empty", admin)["services"] == []
    assert post(site, "/services/createFolder", admin, folderName="Empty")["code"] == 400
    assert post(site, "/services/createFolder", admin, folderName="bad name")["code"] == 400
    assert post(site, "/services/Live/deleteFolder", admin)["code"] == 400  # not empty
    assert post(site, "/services/Empty/deleteFolder", admin) == {"status": "success"}
    assert "Empty" not in get(site, "/services", admin)["folders"]
    assert post(site, "/services/Empty/deleteFolder", admin)["code"] == 404
