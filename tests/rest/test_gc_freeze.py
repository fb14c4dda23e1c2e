"""While a server runs, what its start-up built is out of the cyclic collector's full passes."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from fastapi.testclient import TestClient

from livemosaic.app import create_app
from livemosaic.settings import Settings


def test_startup_objects_are_frozen_while_serving(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", data_folders=[tmp_path]))
    with TestClient(app) as client:
        assert client.get("/arcgis/rest/info", params={"f": "json"}).status_code == 200
        assert gc.get_freeze_count() > 10_000  # the application, its context, the libraries
        t0 = time.perf_counter()
        gc.collect()  # a full pass now walks only what was made since
        frozen_pass = time.perf_counter() - t0
        gc.unfreeze()
        t0 = time.perf_counter()
        gc.collect()
        full_pass = time.perf_counter() - t0
        gc.freeze()
        assert frozen_pass < full_pass
    assert gc.get_freeze_count() == 0  # the lifespan's end gives them back
