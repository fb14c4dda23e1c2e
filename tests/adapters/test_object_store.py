"""Rasters on object storage: ``s3://`` items against a real S3-compatible server (moto in
server mode on 127.0.0.1), added with the command line and drawn by a real server.

Credentials and the endpoint come from the environment, as GDAL and boto3 read them; the
catalog keeps only ``/vsis3/`` names. Object-store prefixes are registered like data folders:
nothing outside them is listed, added or read.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from livemosaic.app import AppContext
from livemosaic.core.ingest import Ingestor
from tests.liveserver import make_server

BIN = Path(sys.executable).parent
SCENES = ("mosaic/rgb1.tif", "mosaic/rgb2.tif")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3(shared_data: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server with bucket ``rasters``: scenes/ (two tiles) and private/ (one)."""
    import boto3

    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "livemosaic-test",
        "AWS_SECRET_ACCESS_KEY": "livemosaic-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_S3_ENDPOINT": f"127.0.0.1:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket="rasters")
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        for rel in SCENES:
            client.upload_file(str(shared_data / rel), "rasters", f"scenes/{Path(rel).name}")
        client.upload_file(str(shared_data / "mosaic/rgb3.tif"), "rasters", "private/rgb3.tif")
        client.put_object(Bucket="rasters", Key="scenes/readme.txt", Body=b"not a raster")
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture()
def aws_env(s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in s3.items():
        monkeypatch.setenv(key, value)
    return s3


def test_cli_adds_objects_under_a_registered_prefix_only(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMOSAIC_")}
    env |= {
        "LIVEMOSAIC_DATA_DIR": str(tmp_path / "data"),
        "LIVEMOSAIC_OBJECT_STORE_PREFIXES": "s3://rasters/scenes/",
    }

    def cli(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "livemosaic"), *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, proc.stderr + proc.stdout
        return proc

    cli("dataset", "create", "cloud")
    out = cli("dataset", "add", "cloud", "s3://rasters/scenes/", "--quiet").stdout
    assert "Added 2 items from 2 files" in out
    again = cli("dataset", "add", "cloud", "s3://rasters/scenes/", "--quiet").stdout
    assert "2 unchanged files skipped" in again
    refused = cli("dataset", "add", "cloud", "s3://rasters/private/rgb3.tif", code=1)
    assert "object-store prefix" in refused.stderr
    assert "LIVEMOSAIC_OBJECT_STORE_PREFIXES" in refused.stderr
    sneaky = cli("dataset", "add", "cloud", "s3://rasters/scenes/../private/rgb3.tif", code=1)
    assert "not inside" in sneaky.stderr
    with sqlite3.connect(tmp_path / "data" / "catalog.db") as conn:
        paths = sorted(r[0] for r in conn.execute("SELECT path FROM items"))
        stored = " ".join(str(r) for r in conn.execute("SELECT * FROM items"))
    assert paths == ["/vsis3/rasters/scenes/rgb1.tif", "/vsis3/rasters/scenes/rgb2.tif"]
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in stored  # credentials stay in the environment
    assert aws_env["AWS_ACCESS_KEY_ID"] not in stored


def _populate_local(ctx: AppContext, ing: Ingestor, data: Path) -> None:
    ing.create_dataset("local")
    assert ing.add_paths("local", [data / rel for rel in SCENES]).added == 2
    ctx.publisher.publish(_definition("local"))


def _definition(name: str) -> object:
    from livemosaic.core.models import ServiceDefinition

    return ServiceDefinition(name=name, dataset=name)


def test_a_server_draws_objects_as_it_draws_files(
    aws_env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    from livemosaic.adapters.objects import S3ObjectStore
    from livemosaic.core.models import ServiceDefinition

    def populate(ctx: AppContext, ing: Ingestor, data: Path) -> None:
        ing.create_dataset("local")
        assert ing.add_paths("local", [data / rel for rel in SCENES]).added == 2
        ctx.publisher.publish(ServiceDefinition(name="local", dataset="local"))
        cloud = Ingestor(
            ctx.catalog,
            ctx.source,
            [],
            objects=S3ObjectStore(),
            object_prefixes=["s3://rasters/scenes/"],
        )
        cloud.create_dataset("cloud")
        report = cloud.add_paths("cloud", ["s3://rasters/scenes/"])
        assert report.added == 2 and not report.rejected, report
        ctx.publisher.publish(ServiceDefinition(name="cloud", dataset="cloud"))

    with make_server(
        tmp_path, shared_data, populate, object_store_prefixes=["s3://rasters/scenes/"]
    ) as server:
        images = {}
        for name in ("local", "cloud"):
            info = httpx.get(server.service_url(name), params={"f": "json"}).json()
            e = info["extent"]
            r = httpx.get(
                f"{server.service_url(name)}/exportImage",
                params={
                    "bbox": f"{e['xmin']},{e['ymin']},{e['xmax']},{e['ymax']}",
                    "size": "300,300",
                    "format": "png",
                    "f": "image",
                },
                timeout=60,
            )
            assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
            images[name] = np.asarray(Image.open(io.BytesIO(r.content)))
            identify = httpx.get(
                f"{server.service_url(name)}/identify",
                params={
                    "geometry": json.dumps({"x": (e["xmin"] + e["xmax"]) / 2, "y": e["ymin"] + 1}),
                    "geometryType": "esriGeometryPoint",
                    "f": "json",
                },
            ).json()
            assert "error" not in identify, identify
        assert images["cloud"].any(), "the object-store service drew nothing"
        assert np.array_equal(images["local"], images["cloud"])
