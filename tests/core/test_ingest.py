"""Ingest with the real adapters: folders in, items out, bad files rejected, nothing leaked."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import open_catalog
from livemosaic.adapters.raster import RasterioSource
from livemosaic.core.ingest import GDAL_SIDECAR_SUFFIXES, Ingestor, is_candidate
from livemosaic.core.ports import CatalogStore, ItemQuery, RemoveFilter
from livemosaic.errors import PathNotAllowed


@pytest.fixture()
def catalog(tmp_path: Path) -> CatalogStore:
    store = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield store
    store.close()


@pytest.fixture()
def ingestor(catalog: CatalogStore, shared_data: Path, tmp_path: Path) -> Ingestor:
    folders = [shared_data, tmp_path / "incoming"]
    return Ingestor(catalog, RasterioSource(folders), folders)


def test_sidecars_and_temporary_names_are_not_candidates() -> None:
    assert is_candidate(Path("a/RGB2.byte.tif"))
    assert not is_candidate(Path("a/RGB2.byte.tif.msk"))
    assert not is_candidate(Path("a/x.tif.aux.xml"))
    assert not is_candidate(Path("a/test.gri"))
    assert not is_candidate(Path("a/x.tif.part"))
    assert not is_candidate(Path("a/.hidden.tif"))


@pytest.mark.parametrize("suffix", GDAL_SIDECAR_SUFFIXES)
def test_every_file_gdal_reads_beside_a_raster_is_not_a_candidate(suffix: str) -> None:
    # the files the raster reader follows beside a raster are never added as rasters
    assert not is_candidate(Path("a/scene.tif" + suffix))
    assert not is_candidate(Path("a/SCENE.TIF" + suffix.upper()))


def test_folder_add_is_recursive_filtered_and_idempotent(
    ingestor: Ingestor, catalog: CatalogStore, shared_data: Path
) -> None:
    ingestor.create_dataset("imagery")
    report = ingestor.add_paths("imagery", [shared_data / "imagery"], include=["*.tif"])
    # RGB.byte, RGBA.byte, RGB2.byte (its .msk is a sidecar), TCI, cogeo
    assert report.files_added == 5
    assert report.added == 5
    assert report.rejected == []
    ds = catalog.get_dataset("imagery")
    assert ds.crs  # taken from the first raster
    again = ingestor.add_paths("imagery", [shared_data / "imagery"], include=["*.tif"])
    assert again.added == 0 and again.skipped == 5
    assert catalog.summary("imagery").item_count == 5
    only = ingestor.add_paths("imagery", [shared_data / "mosaic"], exclude=["rgb4.tif"])
    assert only.added == 3


def test_every_bad_file_is_rejected_and_leaves_the_catalog_unchanged(
    ingestor: Ingestor, catalog: CatalogStore, shared_data: Path
) -> None:
    ingestor.create_dataset("mixed", "EPSG:3857")
    ingestor.add_paths("mixed", [shared_data / "size" / "byte.tif"])
    before = catalog.summary("mixed")
    items_before = catalog.find_items("mixed", ItemQuery())
    report = ingestor.add_paths("mixed", [shared_data / "bad"])
    rejected = dict(report.rejected)
    names = sorted(Path(p).name for p in rejected)
    assert names == sorted(os.listdir(shared_data / "bad"))
    for path, reason in rejected.items():
        assert len(reason) > 10, f"{path}: reason too short: {reason!r}"
    assert report.added == 0
    after = catalog.summary("mixed")
    assert after.item_count == before.item_count
    assert after.extent == before.extent
    assert catalog.find_items("mixed", ItemQuery()) == items_before


def test_paths_outside_data_folders_are_refused(
    ingestor: Ingestor, tmp_path: Path, shared_data: Path
) -> None:
    ingestor.create_dataset("d")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(shared_data / "size" / "byte.tif", outside / "byte.tif")
    with pytest.raises(PathNotAllowed) as info:
        ingestor.add_paths("d", [outside / "byte.tif"])
    assert "LIVEMOSAIC_DATA_FOLDERS" in str(info.value)
    # a symlink inside a data folder that points outside is skipped, not followed
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "escape.tif").symlink_to(outside / "byte.tif")
    shutil.copy(shared_data / "size" / "byte.tif", incoming / "inside.tif")
    report = ingestor.add_paths("d", [incoming])
    assert report.added == 1
    with pytest.raises(PathNotAllowed):
        ingestor.add_paths("d", [incoming / ".." / "outside"])


def test_changed_file_replaces_its_items_and_remove_by_path(
    ingestor: Ingestor, catalog: CatalogStore, tmp_path: Path, shared_data: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    target = incoming / "tile.tif"
    shutil.copy(shared_data / "mosaic" / "rgb1.tif", target)
    ingestor.create_dataset("live")
    first = ingestor.add_paths("live", [incoming])
    assert first.added == 1
    shutil.copy(shared_data / "mosaic" / "rgb2.tif", target)
    os.utime(target, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    second = ingestor.add_paths("live", [incoming])
    assert second.replaced == 1 and second.added == 1
    items = catalog.find_items("live", ItemQuery())
    assert len(items) == 1 and items[0].width == 392
    assert ingestor.remove("live", RemoveFilter(path=str(incoming) + "/")) == 1
    assert catalog.summary("live").item_count == 0
