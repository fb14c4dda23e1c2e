"""Publishing from two processes at once never fails on a version clash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.raster import RasterioProjector, RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.publishing import Publisher
from livemosaic.core.registry import ServiceRegistry


def test_stale_publisher_rebuilds_on_top_of_the_newer_snapshot(
    tmp_path: Path, shared_data: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    cat_a, cat_b = open_catalog(url), open_catalog(url)
    try:
        Ingestor(cat_a, RasterioSource([shared_data]), [shared_data]).create_dataset("d")
        Ingestor(cat_a, RasterioSource([shared_data]), [shared_data]).add_paths(
            "d", [shared_data / "size" / "byte.tif"]
        )
        a = Publisher(cat_a, ServiceRegistry(), RasterioProjector())
        b = Publisher(cat_b, ServiceRegistry(), RasterioProjector())
        first = a.publish(
            ServiceDefinition(name="S", dataset="d", properties={"hasLiveData": "true"})
        )
        b.load_all()  # b's registry now holds version 1
        edited = a.update_definition(replace(first.definition, description="edited"))
        assert edited.version == 2
        # b still believes version 1 is current; its refresh must land as version 3
        previous, after = b.republish("", "S")
        assert after.version == 3
        assert previous is not None and previous.version == 2
        assert after.definition.description == "edited"  # built from the stored definition
        assert cat_a.latest_snapshot("", "S").version == 3  # type: ignore[union-attr]
    finally:
        cat_a.close()
        cat_b.close()
