"""``snapshot_versions``: what every server process polls to notice refreshes done elsewhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_stores
from livemosaic.core.models import MosaicDataset, ServiceDefinition, ServiceSnapshot, SpatialRef
from livemosaic.core.registry import service_key


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    """The catalog database of one test (another module runs these tests on PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def test_newest_version_per_service_seen_by_another_process(catalog_url: str) -> None:
    db = catalog_url
    writer = open_stores(db).catalog
    reader = open_stores(db).catalog  # its own connections, as in another server process
    try:
        ds = writer.create_dataset(MosaicDataset("Ocean", "EPSG:3857"))
        live = ServiceDefinition("SST", "Ocean", folder="Live")
        root = ServiceDefinition("Plain", "Ocean")
        unpublished = ServiceDefinition("Draft", "Ocean")
        for d in (live, root, unpublished):
            writer.save_service(d, create=True)
        assert reader.snapshot_versions() == {}
        snap = ServiceSnapshot(
            definition=live,
            dataset=ds,
            summary=writer.summary("Ocean"),
            spatial_reference=SpatialRef.from_epsg(3857),
            version=1,
            published_at=1,
        )
        writer.save_snapshot(snap)
        writer.save_snapshot(replace(snap, definition=root, version=7))
        assert reader.snapshot_versions() == {"live/sst": 1, "/plain": 7}
        assert service_key("Live", "SST") in reader.snapshot_versions()
        for version in range(2, 15):  # more than the snapshots kept per service
            writer.save_snapshot(replace(snap, version=version))
            assert reader.snapshot_versions()["live/sst"] == version
        writer.delete_service("Live", "SST")
        assert reader.snapshot_versions() == {"/plain": 7}
    finally:
        writer.close()
        reader.close()
