"""``POST {root}/livemosaic/ingest`` and ``GET {root}/livemosaic/quarantine`` against a live
server (uvicorn on 127.0.0.1, real SQLite catalog), directly and through
:meth:`LiveMosaicClient.ingest`.

The registered data folder ``in/`` holds ``base/`` (the first tile of ``Live/tiles``),
``loose/`` (not watched) and ``watched/`` (a watch rule feeding ``tiles``, with a settle time
long enough that the watcher never takes a file before the test does).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livemosaic.app import AppContext
from livemosaic.client import LiveMosaicClient, RemoteError
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.errors import InvalidParameter
from livemosaic.rest.ingest import parse_paths
from tests.liveserver import LiveServer, make_server

PASSWORD = "ingest-password-1"
USERS = {"pub": ("publisher", PASSWORD), "viewer": ("user", PASSWORD)}
INGEST = "livemosaic/ingest"


def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    ing.create_dataset("tiles")
    assert ing.add_paths("tiles", [data / "base/rgb1.tif"]).added == 1
    live = {"hasLiveData": "true"}
    ctx.publisher.publish(ServiceDefinition("tiles", "tiles", folder="Live", properties=live))


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("ingest")
    data = work / "in"
    for sub in ("base", "loose", "watched"):
        (data / sub).mkdir(parents=True)
    shutil.copyfile(shared_data / "mosaic/rgb1.tif", data / "base/rgb1.tif")
    rules = work / "rules.toml"
    rules.write_text(
        '[[watch]]\nfolder = "in/watched"\ndataset = "tiles"\nservice = "Live/tiles"\n'
        "settle_seconds = 600\n"
    )
    with make_server(work, data, populate, users=USERS, watch_config=rules) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[LiveMosaicClient]:
    with LiveMosaicClient(server.root, "pub", PASSWORD) as c:
        yield c


def drop(server: LiveServer, shared_data: Path, sample: str, target: str) -> str:
    path = server.data / target
    shutil.copyfile(shared_data / sample, path)
    return str(path)


def auth(client: LiveMosaicClient) -> dict[str, str]:
    """Headers with the client's token (bound to its referer, the instance root)."""
    return {"X-Esri-Authorization": f"Bearer {client.sign_in()}", "Referer": client.root}


def post(server: LiveServer, headers: dict[str, str] | None = None, **form: str) -> dict[str, Any]:
    r = httpx.post(f"{server.root}/{INGEST}", data={"f": "json", **form}, headers=headers or {})
    assert r.status_code == 200, r.text
    return dict(r.json())


def extent(client: LiveMosaicClient) -> dict[str, float]:
    info = client.service_info("tiles", folder="Live")
    return {k: float(info["extent"][k]) for k in ("xmin", "ymin", "xmax", "ymax")}


def test_parse_paths() -> None:
    assert parse_paths('["/a/b.tif", " /c.nc "]') == ["/a/b.tif", "/c.nc"]
    assert parse_paths("/a/b.tif, /c.nc,") == ["/a/b.tif", "/c.nc"]
    for bad in ("", " , ", "[1, 2]", "[not json"):
        with pytest.raises(InvalidParameter, match="paths"):
            parse_paths(bad)


def test_publishers_only(server: LiveServer, shared_data: Path) -> None:
    path = drop(server, shared_data, "mosaic/rgb4.tif", "loose/refused.tif")
    assert post(server, paths=path, dataset="tiles")["error"]["code"] == 499
    with LiveMosaicClient(server.root, "viewer", PASSWORD) as viewer:
        with pytest.raises(RemoteError) as caught:
            viewer.ingest([path], "tiles")
        assert caught.value.code == 403
        with pytest.raises(RemoteError) as caught:
            viewer.quarantined()
        assert caught.value.code == 403
    assert server.ctx.catalog.file_state("tiles", path) is None


def test_adds_through_the_pipeline_and_submits_one_refresh(
    server: LiveServer, client: LiveMosaicClient, shared_data: Path
) -> None:
    before = extent(client)
    path = drop(server, shared_data, "mosaic/rgb2.tif", "loose/rgb2.tif")
    report = client.ingest([path], "tiles", refresh=True)
    assert report["datasets"] == ["tiles"]
    assert report["filesAdded"] == [path] and report["itemsAdded"] == 1
    assert "extent" in report["changed"]["Live/tiles"]
    [job] = report["refreshJobs"]
    assert job["service"] == "Live/tiles" and job["jobId"]
    assert client.wait(job["jobId"], timeout=30).succeeded
    after = extent(client)
    assert after["xmax"] > before["xmax"] + 1000  # rgb2 is the tile east of rgb1
    # the same file version again: skipped, no refresh
    again = client.ingest([path], "tiles", refresh=True)
    assert again["skipped"] == [path] and again["itemsAdded"] == 0 and not again["refreshJobs"]


def test_a_file_in_a_watched_folder_follows_its_rule(
    server: LiveServer, client: LiveMosaicClient, shared_data: Path
) -> None:
    path = drop(server, shared_data, "mosaic/rgb3.tif", "watched/rgb3.tif")
    report = post(server, auth(client), paths=f"{path},")  # a comma list, no dataset: the rule's
    assert report["datasets"] == ["tiles"] and report["filesAdded"] == [path]
    assert report["refreshJobs"] == []  # refresh defaults to false
    assert server.ctx.catalog.file_state("tiles", path) is not None


def test_bad_files_are_recorded_and_listed(
    server: LiveServer, client: LiveMosaicClient, shared_data: Path
) -> None:
    bad = drop(server, shared_data, "bad/truncated.tif", "watched/broken.tif")
    report = client.ingest([bad], None)
    [entry] = report["quarantined"]
    assert entry["path"] == bad and "truncated" in entry["reason"].lower()
    assert Path(bad).exists()  # explicit adds never move files, even in a watched folder
    listed = client.quarantined("tiles")
    assert [(f["dataset"], f["path"], f["movedTo"]) for f in listed] == [("tiles", bad, None)]
    assert listed[0]["reason"] == entry["reason"]
    assert client.quarantined() == listed
    r = httpx.get(
        f"{server.root}/livemosaic/quarantine",
        params={"dataset": "tiles", "f": "pjson", "resultRecordCount": "1"},
        headers=auth(client),
    )
    assert json.loads(r.text)["files"][0]["path"] == bad


def test_paths_outside_the_data_folders_are_forbidden(
    server: LiveServer, client: LiveMosaicClient, tmp_path: Path, shared_data: Path
) -> None:
    outside = tmp_path / "rgb4.tif"
    shutil.copyfile(shared_data / "mosaic/rgb4.tif", outside)
    with pytest.raises(RemoteError) as caught:
        client.ingest([str(outside)], "tiles")
    assert caught.value.code == 403 and str(outside) in caught.value.reason
    assert server.ctx.catalog.file_state("tiles", str(outside)) is None


@pytest.mark.parametrize(
    ("form", "needle"),
    [
        ({"paths": "loose/missing.tif", "dataset": "tiles"}, "does not exist"),
        ({"paths": "loose"}, "dataset"),  # outside watched folders a dataset is required
        ({"paths": "loose", "dataset": "tiles", "refresh": "maybe"}, "refresh"),
        ({"paths": "loose", "dataset": "tiles", "service": "a/b/c"}, "service"),
        ({"dataset": "tiles"}, "paths"),
    ],
)
def test_bad_requests_name_the_parameter(
    server: LiveServer, client: LiveMosaicClient, form: dict[str, str], needle: str
) -> None:
    if "paths" in form:
        form = {**form, "paths": str(server.data / form["paths"])}
    body = post(server, auth(client), **form)
    assert body["error"]["code"] == 400, body
    assert needle in json.dumps(body["error"]), body


def test_ingest_must_be_posted(server: LiveServer, client: LiveMosaicClient) -> None:
    r = httpx.get(
        f"{server.root}/{INGEST}",
        params={"paths": str(server.data / "loose"), "dataset": "tiles", "f": "json"},
        headers=auth(client),
    )
    assert r.json()["error"]["code"] == 400 and "POST" in r.text
