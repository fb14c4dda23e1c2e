"""``livemosaic.client`` and the ``refresh`` / ``job show`` commands against a live server.

The server (uvicorn on 127.0.0.1, real SQLite catalog) has users pub (publisher), viewer
(user) and boss (administrator), the live service ``Live/tiles`` (its dataset starts with one
RGB tile of four) and ``static`` (same dataset, without hasLiveData).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from livemosaic.app import AppContext
from livemosaic.cli.refresh import describe_changes, job, refresh
from livemosaic.client import (
    LiveMosaicClient,
    RefreshServiceError,
    RemoteError,
    instance_root,
)
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.errors import LiveMosaicError
from tests.liveserver import LiveServer, add_dataset, make_server

PASSWORD = "correct horse battery"
USERS = {
    "pub": ("publisher", PASSWORD),
    "viewer": ("user", PASSWORD),
    "boss": ("administrator", PASSWORD),
}


def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    """``Live/tiles`` (hasLiveData, one tile) and ``static`` (no hasLiveData)."""
    add_dataset(ing, "tiles", [data / "mosaic/rgb1.tif"])
    live = {"hasLiveData": "true"}
    ctx.publisher.publish(
        ServiceDefinition(name="tiles", dataset="tiles", folder="Live", properties=live)
    )
    ctx.publisher.publish(ServiceDefinition(name="static", dataset="tiles"))


@pytest.fixture(scope="module")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The live server of the module docstring."""
    work = tmp_path_factory.mktemp("client")
    with make_server(work, shared_data, populate, users=USERS) as live:
        yield live


def add_tile(server: LiveServer, index: int) -> None:
    """Add mosaic tile rgb<index>.tif to the ``tiles`` dataset (no refresh)."""
    ing = Ingestor(server.ctx.catalog, server.ctx.source, list(server.settings.data_folders))
    report = ing.add_paths("tiles", [server.data / f"mosaic/rgb{index}.tif"])
    assert report.added == 1 and not report.rejected, report


def extent_of(info: dict[str, object]) -> list[float]:
    """[xmin, ymin, xmax, ymax] of a service's extent."""
    ext = info["extent"]
    assert isinstance(ext, dict)
    return [float(ext[k]) for k in ("xmin", "ymin", "xmax", "ymax")]


def test_instance_root_of_any_url() -> None:
    assert instance_root("http://h:8080/arcgis/rest/services/x/ImageServer") == (
        "http://h:8080/arcgis"
    )
    assert instance_root("https://h/") == "https://h/arcgis"
    with pytest.raises(RemoteError, match="not an http"):
        instance_root("ftp://h/arcgis")


def test_sign_in_binds_to_the_root_and_uses_the_header(server: LiveServer) -> None:
    mark = server.log.mark()
    with LiveMosaicClient(server.base + "/arcgis/rest/services", "pub", PASSWORD) as client:
        info = client.service_info("tiles", folder="Live")
        assert info["name"] == "tiles"
        token = client.token
        assert token and token.startswith("lm1.")
        assert client.token_expires and client.token_expires > 0
    requests = server.log.since(mark)
    (post,) = [r for r in requests if r.path.lower().endswith("/generatetoken")]
    form = parse_qs(post.body.decode())
    assert form["client"] == ["referer"] and form["referer"] == [server.root], form
    assert post.method == "POST" and "password" not in post.query
    (get,) = [r for r in requests if r.path.lower().endswith("/imageserver")]
    assert get.headers["x-esri-authorization"] == f"Bearer {token}"
    assert get.headers["referer"] == server.root
    assert "token" not in get.query


def test_renews_a_token_that_expires_soon(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        assert client.renew_if_needed() is True  # no token yet
        first, expires = client.token, client.token_expires
        assert first and expires
        assert client.renew_if_needed() is False  # an hour left
        assert client.renew_if_needed(now=expires - 30_000) is True  # 30 s left
        assert client.token and client.token != first


def test_signs_in_again_after_invalid_token(server: LiveServer) -> None:
    users = server.ctx.users
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        client.service_info("tiles", folder="Live")
        first = client.token
        user = users.get_user("pub")
        users.save_user(replace(user, token_epoch=user.token_epoch + 1))  # revokes tokens
        mark = server.log.mark()
        assert client.service_info("tiles", folder="Live")["name"] == "tiles"
        assert client.token != first
        codes = [server.log.error_code(r) for r in server.log.since(mark)]
        assert codes[0] == 498, codes


def test_given_token_without_credentials(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "pub", PASSWORD) as signer:
        token = signer.sign_in()
    with LiveMosaicClient(server.root, token=token) as client:
        # the token is bound to the root as referer, which this client sends too
        assert client.service_info("tiles", folder="Live")["name"] == "tiles"
        with pytest.raises(RefreshServiceError, match="was not found"):
            client.refresh_service("nope")


def test_refresh_service_reports_the_changes(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        client.refresh_service("tiles", folder="Live")  # settle: nothing pending
        before = extent_of(client.service_info("tiles", folder="Live"))
        add_tile(server, 2)
        assert extent_of(client.service_info("tiles", folder="Live")) == before  # not yet
        results = client.refresh_service("tiles", "ImageServer", "Live", "#")
        after = extent_of(client.service_info("tiles", folder="Live"))
    assert results["success"] is True and results["service"] == "Live/tiles.ImageServer"
    assert {"extent", "fullExtent", "initialExtent"} <= set(results["changed"])
    assert results["before"]["extent"] == pytest.approx(before)
    assert results["after"]["extent"] == pytest.approx(after)
    assert after[2] > before[2]  # rgb2 lies east of rgb1


def test_hash_means_default_and_folder_in_the_name(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "boss", PASSWORD) as client:
        results = client.refresh_service("Live/tiles", "#", "#", "#")
    assert results["success"] is True and results["service"] == "Live/tiles.ImageServer"


def test_failed_job_raises_with_its_messages(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "pub", PASSWORD) as client:
        with pytest.raises(RefreshServiceError) as caught:
            client.refresh_service("static")
        err = caught.value
        assert isinstance(err, LiveMosaicError)
        assert err.status == "esriJobFailed" and err.job_id.startswith("j")
        assert any("hasLiveData" in e for e in err.errors), err.errors
        assert "hasLiveData" in str(err) and f"livemosaic job show {err.job_id}" in str(err)
        shown = client.job(err.job_id)
    assert shown.status == "esriJobFailed" and shown.errors == err.errors


@pytest.mark.parametrize(("username", "code"), [(None, 499), ("viewer", 403)])
def test_refused_callers(server: LiveServer, username: str | None, code: int) -> None:
    password = PASSWORD if username else None
    with LiveMosaicClient(server.root, username, password) as client:
        with pytest.raises(RemoteError) as caught:
            client.refresh_service("tiles", folder="Live")
    assert caught.value.code == code
    hint = caught.value.next_step or ""
    assert ("Sign in" in hint) if code == 499 else ("role" in hint), hint


def test_wrong_password(server: LiveServer) -> None:
    with LiveMosaicClient(server.root, "pub", "not the password") as client:
        with pytest.raises(RemoteError) as caught:
            client.sign_in()
    assert caught.value.code == 400
    assert caught.value.server_message == "Unable to generate token."


def test_cli_refresh_prints_before_and_after(server: LiveServer) -> None:
    runner = CliRunner()
    env = {"LIVEMOSAIC_URL": server.root, "LIVEMOSAIC_USERNAME": "pub"}
    add_tile(server, 3)
    result = runner.invoke(
        refresh, ["tiles", "--folder", "Live", "--password-stdin"], input=PASSWORD + "\n", env=env
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Refreshed Live/tiles.ImageServer (generation ")
    extent_line = next(line for line in lines if line.strip().startswith("extent:"))
    assert "→" in extent_line
    again = runner.invoke(
        refresh,
        ["Live/tiles", "--json"],
        env={**env, "LIVEMOSAIC_PASSWORD": PASSWORD},
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["changed"] == []


def test_cli_refresh_failure_and_job_show(server: LiveServer) -> None:
    runner = CliRunner()
    env = {"LIVEMOSAIC_USERNAME": "pub", "LIVEMOSAIC_PASSWORD": PASSWORD}
    failed = runner.invoke(refresh, ["static", "--url", server.root], env=env)
    assert failed.exit_code == 1
    assert "esriJobFailed" in failed.output and "hasLiveData" in failed.output
    job_id = failed.output.split("livemosaic job show ")[1].split("`")[0]
    shown = runner.invoke(job, ["show", job_id, "--url", server.root], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"Job {job_id}: esriJobFailed")
    assert "[error]" in shown.output and "hasLiveData" in shown.output
    anonymous = runner.invoke(job, ["show", job_id, "--url", server.root], env={})
    assert anonymous.exit_code == 1 and "499" in anonymous.output


def test_cli_rejects_bad_options(server: LiveServer) -> None:
    result = CliRunner().invoke(refresh, ["tiles", "--url", server.root, "--options", "[1]"])
    assert result.exit_code == 1 and "--options" in result.output


def test_describe_changes_formats_times() -> None:
    lines = describe_changes(
        {
            "service": "Live/x.ImageServer",
            "generation": 3,
            "previousGeneration": 2,
            "itemCount": 7,
            "changed": ["timeInfo.timeExtent", "pixelSizeX"],
            "before": {"timeInfo.timeExtent": [0, 86_400_000], "pixelSizeX": 10.0},
            "after": {"timeInfo.timeExtent": [0, 172_800_000], "pixelSizeX": 5.0},
        }
    )
    assert lines == [
        "Refreshed Live/x.ImageServer (generation 2 → 3, 7 items).",
        "Changed:",
        "  timeInfo.timeExtent: [1970-01-01T00:00:00Z, 1970-01-02T00:00:00Z] → "
        "[1970-01-01T00:00:00Z, 1970-01-03T00:00:00Z]",
        "  pixelSizeX: 10 → 5",
    ]
