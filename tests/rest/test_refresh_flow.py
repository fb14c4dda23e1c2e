"""What a refresh does, end to end (spec 8.7, checklist 11 items 10-11, issue 3 §2)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livemosaic.core.ingest import Ingestor
from tests.rest.secure import (
    TASK,
    Running,
    build_site,
    messages,
    ndvi,
    refresh,
    running,
    submit,
    tiles,
    wait_job,
)


@pytest.fixture(scope="module")
def site(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ctx = build_site(tmp_path_factory.mktemp("refresh"), shared_data)
    with running(ctx) as r:
        yield r


@pytest.fixture(scope="module")
def pub(site: Running) -> dict[str, str]:
    return site.auth("pub1")


@pytest.fixture(scope="module")
def ingestor(site: Running, shared_data: Path) -> Ingestor:
    return Ingestor(site.ctx.catalog, site.ctx.source, [shared_data])


def info(site: Running, service: str) -> tuple[dict[str, Any], str]:
    r = site.client.get(f"/arcgis/rest/services/{service}/ImageServer", params={"f": "json"})
    assert r.status_code == 200
    return r.json(), r.headers["etag"]


def results(site: Running, pub: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    r = site.client.get(
        f"{TASK}/jobs/{job['jobId']}/results/refreshResults", params={"f": "json"}, headers=pub
    )
    return dict(json.loads(r.json()["value"]))


def errors(job: dict[str, Any]) -> list[str]:
    return [m["description"] for m in job["messages"] if m["type"] == "esriJobMessageTypeError"]


def test_non_live_service_fails_and_says_how_to_enable(site: Running, pub: dict[str, str]) -> None:
    job = refresh(site.client, pub, "static")
    assert job["jobStatus"] == "esriJobFailed" and job["results"] == {}
    (text,) = errors(job)
    assert "'static.ImageServer' is not configured with hasLiveData=true" in text
    assert "livemosaic service set static --live" in text
    err = site.client.get(
        f"{TASK}/jobs/{job['jobId']}/results/refreshResults", params={"f": "json"}, headers=pub
    ).json()
    assert err["error"]["code"] == 400


def test_unknown_service_fails(site: Running, pub: dict[str, str]) -> None:
    job = refresh(site.client, pub, "Nope", "Live")
    assert job["jobStatus"] == "esriJobFailed"
    assert errors(job) == ["Service 'Live/Nope.ImageServer' was not found."]


@pytest.mark.parametrize("kind", ["FeatureServer", "MapServer", "SceneServer", "featureserver"])
def test_other_service_types_fail(site: Running, pub: dict[str, str], kind: str) -> None:
    job = submit(site.client, pub, serviceName="live", serviceType=kind, serviceFolder="Live")
    done = wait_job(site.client, pub, job["jobId"])
    assert done["jobStatus"] == "esriJobFailed"
    canonical = {"featureserver": "FeatureServer"}.get(kind, kind)
    assert errors(done)[0].startswith(
        f"Refreshing {canonical} services is not supported by this server"
    )


def test_image_server_type_succeeds(site: Running, pub: dict[str, str]) -> None:
    job = refresh(site.client, pub, "live", "Live")
    assert job["jobStatus"] == "esriJobSucceeded"


def test_stopped_service_fails(site: Running, pub: dict[str, str]) -> None:
    job = refresh(site.client, pub, "halted")
    assert job["jobStatus"] == "esriJobFailed"
    assert errors(job)[0].startswith("Service is not started")


def test_nothing_changed(site: Running, pub: dict[str, str]) -> None:
    refresh(site.client, pub, "live", "Live")
    before, etag = info(site, "Live/live")
    job = refresh(site.client, pub, "live", "Live")
    assert job["jobStatus"] == "esriJobSucceeded"
    assert any("No changes detected." in t for t in messages(job))
    value = results(site, pub, job)
    assert value["changed"] == [] and value["generation"] == value["previousGeneration"]
    after, etag_after = info(site, "Live/live")
    assert after == before and etag_after == etag


def test_new_items_appear_after_refresh(
    site: Running, pub: dict[str, str], ingestor: Ingestor, shared_data: Path
) -> None:
    before, etag = info(site, "Live/live")
    report = ingestor.add_paths("live", tiles(shared_data)[1:])
    assert report.added == 3
    # items added without a refresh: the published description does not move
    unchanged, same_etag = info(site, "Live/live")
    assert unchanged["extent"] == before["extent"] and same_etag == etag
    job = refresh(site.client, pub, "live", "Live")
    assert job["jobStatus"] == "esriJobSucceeded"
    text = messages(job)
    assert any("changed: extent, fullExtent, initialExtent" in t for t in text)
    value = results(site, pub, job)
    assert {"extent", "fullExtent", "initialExtent", "itemCount"} <= set(value["changed"])
    assert value["itemCount"] == 4 and value["generation"] == value["previousGeneration"] + 1
    assert value["before"]["itemCount"] == 1 and value["after"]["itemCount"] == 4
    after, new_etag = info(site, "Live/live")  # visible as soon as the job succeeded
    assert new_etag != etag
    ext, old = after["extent"], before["extent"]
    assert ext["xmax"] > old["xmax"] and ext["ymin"] < old["ymin"]
    assert value["after"]["extent"] == [ext["xmin"], ext["ymin"], ext["xmax"], ext["ymax"]]
    listed = site.client.get(
        "/arcgis/rest/services/Live/live/ImageServer/query",
        params={"f": "json", "where": "1=1", "returnCountOnly": "true"},
    ).json()
    assert listed["count"] == 4


def test_time_extent_changes(
    site: Running, pub: dict[str, str], ingestor: Ingestor, shared_data: Path
) -> None:
    before, _ = info(site, "Live/ndvi")
    assert ingestor.add_paths("ndvi", ndvi(shared_data)[3:]).added == 3
    job = refresh(site.client, pub, "ndvi", "Live")
    value = results(site, pub, job)
    assert "timeInfo.timeExtent" in value["changed"]
    assert value["before"]["timeInfo.timeExtent"] == before["timeInfo"]["timeExtent"]
    after, _ = info(site, "Live/ndvi")
    assert after["timeInfo"]["timeExtent"][0] == before["timeInfo"]["timeExtent"][0]
    assert after["timeInfo"]["timeExtent"][1] > before["timeInfo"]["timeExtent"][1]
    assert value["timeExtent"] == after["timeInfo"]["timeExtent"]


def test_two_refreshes_at_once_never_interleave(site: Running, pub: dict[str, str]) -> None:
    start = threading.Barrier(2)
    ids: list[str] = []

    def go() -> None:
        start.wait()
        job = submit(
            site.client,
            pub,
            serviceName="live",
            serviceType="ImageServer",
            serviceFolder="Live",
            refreshOptions='{"force": true}',
        )
        ids.append(job["jobId"])

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(ids) == 2
    done = [wait_job(site.client, pub, i) for i in ids]
    assert all(d["jobStatus"] == "esriJobSucceeded" for d in done), done
    stored = sorted((site.ctx.jobs.get_job(i) for i in ids), key=lambda j: j.started or 0)
    first, second = stored
    assert first.finished is not None and second.started is not None
    assert second.started >= first.finished  # serialised, never interleaved
    generations = [json.loads(j.results["refreshResults"])["generation"] for j in stored]
    assert generations[1] > generations[0]
    assert json.loads(second.results["refreshResults"])["previousGeneration"] == generations[0]


def test_submit_to_succeeded_latency(site: Running, pub: dict[str, str]) -> None:
    t0 = time.perf_counter()
    job = refresh(site.client, pub, "live", "Live")
    elapsed = time.perf_counter() - t0
    assert job["jobStatus"] == "esriJobSucceeded"
    assert elapsed < 5.0, f"submitJob to esriJobSucceeded took {elapsed:.2f} s"
