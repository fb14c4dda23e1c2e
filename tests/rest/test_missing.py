"""``{root}/livemosaic/missing``: files of a dataset that are gone while their items remain."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from tests.liveserver import LiveServer, make_server

PASSWORD = "missing-password-1"
USERS = {"pub": ("publisher", PASSWORD), "viewer": ("user", PASSWORD)}


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("missing")
    data = work / "in"
    data.mkdir()
    for name in ("a.tif", "b.tif", "c.tif"):
        shutil.copyfile(shared_data / "mosaic/rgb1.tif", data / name)

    def populate(ctx: AppContext, ing: Ingestor, folder: Path) -> None:
        ing.create_dataset("tiles")
        assert ing.add_paths("tiles", sorted(folder.glob("*.tif"))).added == 3
        (folder / "b.tif").unlink()

    with make_server(work, data, populate, users=USERS) as live:
        yield live


def _token(server: LiveServer, user: str) -> str:
    r = httpx.post(f"{server.root}/tokens/generateToken", timeout=30,
                   data={"username": user, "password": PASSWORD, "client": "requestip", "f": "json"})  # fmt: skip
    return str(r.json()["token"])


def _get(server: LiveServer, user: str | None, **params: str) -> httpx.Response:
    headers = {"X-Esri-Authorization": f"Bearer {_token(server, user)}"} if user else {}
    return httpx.get(f"{server.root}/livemosaic/missing", params={"f": "json", **params},
                     headers=headers, timeout=30)  # fmt: skip


def test_lists_the_missing_file_and_its_items(server: LiveServer) -> None:
    body = _get(server, "pub", dataset="TILES").json()  # names are case-insensitive
    gone = str(server.data / "b.tif")
    assert body["dataset"] == "tiles" and body["itemsChecked"] == 3
    assert body["exceededTransferLimit"] is False
    (entry,) = body["files"]
    assert Path(entry["path"]).resolve() == Path(gone).resolve()
    assert entry["itemIds"] == [2]


def test_needs_a_publisher_and_a_dataset(server: LiveServer) -> None:
    assert _get(server, None, dataset="tiles").json()["error"]["code"] == 499
    assert _get(server, "viewer", dataset="tiles").json()["error"]["code"] == 403
    err = _get(server, "pub").json()["error"]
    assert err["code"] == 400 and "dataset" in str(err)
    assert _get(server, "pub", dataset="nope").json()["error"]["code"] == 404
