"""Refresh Service driven by the real ArcGIS API for Python (spec 8.7.5; 11 items 1, 3, 11).

A publisher signs in through ``ServicesDirectory(url, username, password, token_url=…)``,
``import_toolbox`` builds ``refresh_service`` from the ``System/PublishingTools`` GP service,
and a job runs to ``esriJobSucceeded`` after rasters were added to the live service's mosaic
dataset; its ``refreshResults`` parse as livemosaic's JSON. Anonymous and ``user`` callers
are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from livemosaic.core.ingest import Ingestor
from tests.arcgis.conftest import PASSWORD
from tests.arcgis.helpers import failure, paths_of, run_client, step
from tests.liveserver import LiveServer

pytestmark = pytest.mark.arcgis


def grow_mosaic(server: LiveServer) -> None:
    """Add the three other tiles to the ``tiles`` dataset (the service is not refreshed)."""
    ing = Ingestor(server.ctx.catalog, server.ctx.source, list(server.settings.data_folders))
    tiles = sorted((server.data / "mosaic").glob("rgb*.tif"))[1:]
    report = ing.add_paths("tiles", tiles)
    assert report.added == 3 and not report.rejected, report


@pytest.fixture(scope="module")
def refreshed(arcgis_python: Path, arcgis_secured: LiveServer) -> dict[str, Any]:
    """Results of scripts/refresh_toolbox.py as the publisher, after the mosaic grew."""
    grow_mosaic(arcgis_secured)
    mark = arcgis_secured.log.mark()
    results = dict(
        run_client(
            arcgis_python,
            "refresh_toolbox.py",
            arcgis_secured.root,
            "tiles",
            "Live",
            "pub",
            PASSWORD,
        )
    )
    results["_requests"] = arcgis_secured.log.since(mark)
    return results


def test_publisher_signs_in_with_generate_token(
    refreshed: dict[str, Any], arcgis_secured: LiveServer
) -> None:
    con = step(refreshed, "connection")
    assert con["auth"] == "BUILTIN" and con["product"] == "SERVER", con
    assert con["token_url"] == f"{arcgis_secured.root}/tokens/generateToken"
    requests = refreshed["_requests"]
    token_posts = [r for r in requests if r.path.lower().endswith("/tokens/generatetoken")]
    assert token_posts, paths_of(requests)
    form = parse_qs(token_posts[0].body.decode())
    assert form["username"] == ["pub"] and form["client"] == ["referer"], form
    assert form["referer"] == ["http"] and form["expiration"] == ["60"], form
    gp = [r for r in requests if "/gpserver" in r.path.lower()]
    assert gp, paths_of(requests)
    for r in gp:  # py 2.x sends the token only in this header (spec 4.3)
        assert r.headers.get("x-esri-authorization", "").startswith("Bearer lm1."), r
        assert "token=" not in r.query and b"token=" not in r.body, r


def test_import_toolbox_builds_refresh_service(refreshed: dict[str, Any]) -> None:
    assert "refresh_service" in step(refreshed, "functions")
    signature = step(refreshed, "signature")
    for name in ("service_name", "service_type", "service_folder", "refresh_options"):
        assert name in signature, signature


def test_refresh_job_succeeds_and_reports_changes(
    refreshed: dict[str, Any], arcgis_secured: LiveServer
) -> None:
    results = json.loads(step(refreshed, "refresh"))
    assert results["success"] is True and results["service"] == "Live/tiles.ImageServer"
    assert results["itemCount"] == 4
    assert {"extent", "fullExtent", "initialExtent"} <= set(results["changed"])
    before, after = results["before"]["extent"], results["after"]["extent"]
    assert after[2] > before[2] and after[1] < before[1], (before, after)  # grew east and south
    extent = step(refreshed, "properties")["extent"]
    assert [extent["xmin"], extent["ymin"], extent["xmax"], extent["ymax"]] == pytest.approx(after)
    submits = [r for r in refreshed["_requests"] if r.path.lower().endswith("/submitjob")]
    form = parse_qs(submits[0].body.decode(), keep_blank_values=True)
    assert form["serviceName"] == ["tiles"] and form["serviceFolder"] == ["Live"], form


def test_future_refresh_returns_the_result_string(refreshed: dict[str, Any]) -> None:
    again = json.loads(step(refreshed, "refresh_future"))
    assert again["success"] is True and again["changed"] == [], again  # nothing new


@pytest.mark.parametrize(("username", "code"), [(None, 499), ("viewer", 403)])
def test_anonymous_and_user_callers_are_refused(
    arcgis_python: Path, arcgis_secured: LiveServer, username: str | None, code: int
) -> None:
    creds = [username, PASSWORD] if username else []
    mark = arcgis_secured.log.mark()
    results = run_client(
        arcgis_python, "refresh_toolbox.py", arcgis_secured.root, "tiles", "Live", *creds
    )
    requests = arcgis_secured.log.since(mark)
    gp = [r for r in requests if "/gpserver" in r.path.lower()]
    assert gp, paths_of(requests)
    assert {arcgis_secured.log.error_code(r) for r in gp} == {code}, paths_of(gp)
    assert not any("/submitjob" in r.path.lower() for r in requests)
    # The client cannot report it: import_toolbox ignores error envelopes and retries itself
    # until RecursionError (see scripts/refresh_toolbox.py).
    assert failure(results, "import_toolbox").startswith("RecursionError"), results
    assert "refresh" not in results
