"""The real ArcGIS API for Python (package ``arcgis``) against a live livemosaic server.

The client lives in its own environment (``scripts/install-arcgis-client`` → ``.venv-arcgis``),
named by ``LIVEMOSAIC_ARCGIS_PYTHON`` (``scripts/test`` sets it). Without the variable these
tests skip — except under CI, where a missing client is a failure.

Services of the anonymous server (``arcgis_live``):

* ``imagery``       mosaic/rgb1-4.tif (RGB, uint8, custom UTM 18N WKT)
* ``Live/climate``  timeseries/bcsd_obs_1999.nc (variables pr, tas x 12 months; hasLiveData)
* ``ocean``         multidim/Arctic20_1to5Feb_2016.nc (time x depth; maxRecordCount 100, so
                    ``query(return_all_records=True)`` pages with ``OBJECTID in (…)``)

:func:`tests.liveserver.make_server` builds further servers (e.g. secured ones) the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from tests.liveserver import LiveServer, add_dataset, make_server

ENV_PYTHON = "LIVEMOSAIC_ARCGIS_PYTHON"


@pytest.fixture(scope="session")
def arcgis_python() -> Path:
    """The python of the arcgis environment (skip without it; fail under CI)."""
    value = os.environ.get(ENV_PYTHON, "").strip()
    if not value:
        message = (
            f"{ENV_PYTHON} is not set: run scripts/install-arcgis-client and set it to "
            ".venv-arcgis/bin/python (scripts/test does both)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{ENV_PYTHON}={value} does not exist; run scripts/install-arcgis-client")
    return path


def populate_public(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    """The services listed in the module docstring."""
    add_dataset(ing, "imagery", sorted((data / "mosaic").glob("rgb*.tif")))
    add_dataset(ing, "climate", [data / "timeseries/bcsd_obs_1999.nc"])
    add_dataset(ing, "ocean", [data / "multidim/Arctic20_1to5Feb_2016.nc"])
    publish = ctx.publisher.publish
    publish(ServiceDefinition(name="imagery", dataset="imagery"))
    publish(
        ServiceDefinition(
            name="climate", dataset="climate", folder="Live", properties={"hasLiveData": "true"}
        )
    )
    publish(ServiceDefinition(name="ocean", dataset="ocean", properties={"maxRecordCount": "100"}))


@pytest.fixture(scope="session")
def arcgis_live(
    arcgis_python: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """An anonymous server with the services of the module docstring, for the whole session."""
    with make_server(tmp_path_factory.mktemp("arcgis"), shared_data, populate_public) as server:
        yield server


PASSWORD = "correct horse battery"
USERS = {
    "pub": ("publisher", PASSWORD),
    "viewer": ("user", PASSWORD),
    "boss": ("administrator", PASSWORD),
}


def populate_live(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    """``Live/tiles``: one RGB tile, hasLiveData (tests add the other three and refresh);
    ``static``: the same tile without hasLiveData."""
    add_dataset(ing, "tiles", [data / "mosaic/rgb1.tif"])
    ctx.publisher.publish(
        ServiceDefinition(
            name="tiles", dataset="tiles", folder="Live", properties={"hasLiveData": "true"}
        )
    )
    ctx.publisher.publish(ServiceDefinition(name="static", dataset="tiles"))


@pytest.fixture(scope="module")
def arcgis_secured(
    arcgis_python: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with users pub (publisher), viewer (user), boss (administrator) — password
    ``PASSWORD`` — and the live service ``Live/tiles`` (one tile of four)."""
    work = tmp_path_factory.mktemp("arcgis_secured")
    with make_server(work, shared_data, populate_live, users=USERS) as server:
        yield server
