"""Mosaic-level overviews with the real catalog, raster reader, COG writer and ingest pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from livemosaic.adapters.raster.overview_tiles import CogTileWriter
from livemosaic.adapters.watch import build_pipeline
from livemosaic.app import AppContext, build_context
from livemosaic.cli.main import cli as cli_main
from livemosaic.core.export import ExportRequest
from livemosaic.core.fields import item_attributes
from livemosaic.core.ingest import Ingestor
from livemosaic.core.models import Extent, ServiceDefinition, ServiceSnapshot
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.core.overview_build import MosaicOverviews
from livemosaic.core.overview_grid import overview_dataset_name
from livemosaic.core.ports import ItemQuery
from livemosaic.core.watch_rules import WatchRule
from livemosaic.core.where import parse_where
from livemosaic.settings import Settings

SIZE, PIXEL, GRID = 128, 10.0, 4  # 4x4 tiles of 128 px at 10 m


def write_tile(path: Path, col: int, row: int, value: int | None = None) -> None:
    """An RGB tile of the test mosaic at (col, row); ``value`` paints it one colour."""
    x0, y0 = col * SIZE * PIXEL, (GRID - row) * SIZE * PIXEL
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    base = ((xx + col * SIZE) + (yy + row * SIZE)) % 200
    data = np.stack([base, base // 2 + 40, 255 - base]).astype(np.uint8)
    if value is not None:
        data[:] = value
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3857",
        "transform": Affine(PIXEL, 0, x0, 0, -PIXEL, y0),
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4])


@dataclass
class Env:
    ctx: AppContext
    folder: Path
    ovr: MosaicOverviews

    def snapshot(self) -> ServiceSnapshot:
        return self.ctx.registry.get("", "T")

    def export(self, extent: Extent, size: int = 64, rule: MosaicRule | None = None):  # type: ignore[no-untyped-def]
        request = ExportRequest(extent, "EPSG:3857", size, size, format="tiff", mosaic_rule=rule)
        block, used = self.ctx.exporter.render(self.snapshot(), request)
        return block, used


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    folder = tmp_path / "rasters"
    folder.mkdir()
    for row in range(GRID):
        for col in range(GRID):
            write_tile(folder / f"t_{col}_{row}.tif", col, row)
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", data_folders=[folder], max_mosaic_image_count=50
    )
    ctx = build_context(settings)
    ingestor = Ingestor(ctx.catalog, ctx.source, [folder])
    ingestor.create_dataset("d", "EPSG:3857")
    assert ingestor.add_paths("d", [folder]).added == GRID * GRID
    ctx.publisher.publish(ServiceDefinition(name="T", dataset="d"))
    ovr = MosaicOverviews(ctx.catalog, ctx.source, CogTileWriter(), [folder])
    ovr.configure("d", factor=2, tile_size=64, min_items=4)
    try:
        yield Env(ctx, folder, ovr)
    finally:
        ctx.close()


WHOLE = Extent(0.0, 0.0, GRID * SIZE * PIXEL, GRID * SIZE * PIXEL)


def test_overviews_are_items_of_their_own_never_counted_or_queried(env: Env) -> None:
    report = env.ovr.build("d")
    assert report.levels >= 2 and report.written > 0
    catalog = env.ctx.catalog
    assert catalog.summary("d").item_count == GRID * GRID
    assert len(catalog.find_items("d", ItemQuery())) == GRID * GRID
    tiles = catalog.find_items(overview_dataset_name("d"), ItemQuery())
    assert len(tiles) == report.written
    assert {item_attributes(t)["Category"] for t in tiles} == {2}
    where = ItemQuery(where=parse_where("Category = 2"))
    assert len(catalog.find_items(overview_dataset_name("d"), where)) == len(tiles)
    folder = Path(env.ovr.settings("d").folder)  # type: ignore[union-attr]
    assert folder.parent.name == ".overviews" and folder.parent.parent == env.folder


def test_small_scales_draw_from_overviews_and_look_like_the_items(env: Env) -> None:
    before, used_before = env.export(WHOLE)
    assert len(used_before) == GRID * GRID
    env.ovr.build("d")
    after, used_after = env.export(WHOLE)
    assert 0 < len(used_after) < 4
    assert after.valid.all() and before.valid.all()
    diff = np.abs(after.data.astype(int) - before.data.astype(int))
    assert diff.mean() < 8  # the same picture, resampled in two steps


def test_native_and_filtered_requests_draw_from_the_items(env: Env) -> None:
    env.ovr.build("d")
    native = Extent(0.0, 0.0, 64 * PIXEL, 64 * PIXEL)
    _, used = env.export(native)
    assert used and all(i <= GRID * GRID for i in used)
    native_ids = {it.id for it in env.ctx.catalog.find_items("d", ItemQuery())}
    assert set(used) <= native_ids
    where = MosaicRule(where=parse_where("OBJECTID < 100"))
    _, used = env.export(WHOLE, rule=where)
    assert len(used) == GRID * GRID


def test_a_dirty_area_is_drawn_from_the_items_until_rebuilt(env: Env) -> None:
    env.ovr.build("d")
    assert env.ovr.invalidate("d", [Extent(0.0, 0.0, 100.0, 100.0)])
    _, used = env.export(WHOLE)
    assert len(used) == GRID * GRID
    report = env.ovr.update("d")
    assert report is not None and 0 < report.written
    assert env.ovr.settings("d").dirty == ()  # type: ignore[union-attr]
    _, used = env.export(WHOLE)
    assert len(used) < 4


def test_the_pipeline_rebuilds_the_changed_area_before_refreshing(env: Env) -> None:
    env.ovr.build("d")
    written = {
        it.path for it in env.ctx.catalog.find_items(overview_dataset_name("d"), ItemQuery())
    }
    pipeline = build_pipeline(env.ctx.catalog, env.ctx.journal, env.ctx.source, [env.folder])
    new = env.folder / "new.tif"
    write_tile(new, 0, 0, value=250)  # over the first tile, painted one colour
    report = pipeline.process(WatchRule.adhoc("d", None), [new], refresh=False)
    assert report.items_added == 1 and report.overview_tiles > 0
    assert env.ovr.settings("d").dirty == ()  # type: ignore[union-attr]
    tiles = env.ctx.catalog.find_items(overview_dataset_name("d"), ItemQuery())
    kept = {t.path for t in tiles} & written
    assert kept and len(kept) < len(written)  # only the changed area's tiles were replaced
    _, used = env.export(WHOLE)
    assert len(used) < 4  # drawn from the rebuilt overviews again


def test_cli_builds_lists_and_removes_overviews(env: Env, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "data"), "--data-folder", str(env.folder)]
    env.ctx.catalog.close()
    out = runner.invoke(cli_main, [*base, "dataset", "overviews", "build", "d"])
    assert out.exit_code == 0, out.output
    assert "overview levels" in out.output
    listing = runner.invoke(cli_main, [*base, "dataset", "list"])
    assert "__overviews" not in listing.output
    info = runner.invoke(cli_main, [*base, "dataset", "info", "d"])
    assert '"overviews"' in info.output
    write_tile(env.folder / "late.tif", 1, 1, value=9)
    out = runner.invoke(cli_main, [*base, "dataset", "add", "d", str(env.folder), "--quiet"])
    assert out.exit_code == 0, out.output
    assert "Added 1 items" in out.output and "Rebuilt" in out.output
    out = runner.invoke(cli_main, [*base, "dataset", "overviews", "remove", "d"])
    assert out.exit_code == 0, out.output
    assert not (env.folder / ".overviews" / "d").exists()


def published_mosaic(
    tmp_path: Path, folder: Path, dataset: str, service: str
) -> tuple[AppContext, MosaicOverviews]:
    """A context whose dataset holds every tile of ``folder`` (GRID x GRID, all checked in),
    published as ``service``, and the dataset's overview builder (the caller closes ctx)."""
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", data_folders=[folder], max_mosaic_image_count=50
    )
    ctx = build_context(settings)
    try:
        ingestor = Ingestor(ctx.catalog, ctx.source, [folder])
        ingestor.create_dataset(dataset, "EPSG:3857")
        assert ingestor.add_paths(dataset, [folder]).added == GRID * GRID
        ctx.publisher.publish(ServiceDefinition(name=service, dataset=dataset))
    except BaseException:
        ctx.close()
        raise
    return ctx, MosaicOverviews(ctx.catalog, ctx.source, CogTileWriter(), [folder])


def write_dem_tile(path: Path, col: int, row: int) -> None:
    """A float32 elevation tile of the test mosaic (500..600 m) with nodata -9999 where a
    round lake crosses the four middle tiles; ZSTD with the floating-point predictor."""
    x0, y0 = col * SIZE * PIXEL, (GRID - row) * SIZE * PIXEL
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    gx, gy = xx + col * SIZE, yy + row * SIZE
    rng = np.random.default_rng(col * GRID + row)
    data = (500 + 100 * rng.random((SIZE, SIZE))).astype(np.float32)
    half = GRID * SIZE / 2
    data[(gx - half) ** 2 + (gy - half) ** 2 < (SIZE * 0.7) ** 2] = -9999.0
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": "float32",
        "nodata": -9999.0,
        "crs": "EPSG:3857",
        "transform": Affine(PIXEL, 0, x0, 0, -PIXEL, y0),
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "zstd",
        "predictor": 3,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.build_overviews([2, 4])


def test_float_overviews_keep_nodata_out_of_the_values(tmp_path: Path) -> None:
    """A DEM with nodata: the overview tiles (every level, with their internal overviews) and
    the images drawn from them hold elevations of the items only, never -9999 or a fill
    blended into the pixels beside the lake, and the lake stays NoData."""
    folder = tmp_path / "dem"
    folder.mkdir()
    for row in range(GRID):
        for col in range(GRID):
            write_dem_tile(folder / f"d_{col}_{row}.tif", col, row)
    ctx, ovr = published_mosaic(tmp_path, folder, "dem", "Dem")
    try:
        ovr.configure("dem", factor=2, tile_size=64, min_items=4)
        assert ovr.build("dem").levels >= 2
        tiles = ctx.catalog.find_items(overview_dataset_name("dem"), ItemQuery())
        for tile in tiles:
            with rasterio.open(tile.path) as ds:
                levels = [-1, *range(len(ds.overviews(1)))]
            for level in levels:
                options = {"overview_level": level} if level >= 0 else {}
                with rasterio.open(tile.path, **options) as ds:
                    values, alpha = ds.read(1), ds.read(2)
                shown = values[(alpha > 0) & ~np.isnan(values)]
                assert shown.size and shown.min() >= 500 and shown.max() <= 600, tile.path
        snapshot = ctx.registry.get("", "Dem")
        for resampling in ("nearest", "bilinear"):
            request = ExportRequest(
                WHOLE, "EPSG:3857", 64, 64, format="tiff", pixel_type="F32",
                resampling=resampling,
            )  # fmt: skip
            result = ctx.exporter.export(snapshot, request)
            assert 0 < len(result.item_ids) < 4  # drawn from the overviews
            with rasterio.MemoryFile(result.image.content) as mem, mem.open() as ds:
                assert ds.nodata == -9999.0
                image = ds.read(1)
            valid = image != -9999.0
            assert 0.6 < valid.mean() < 0.95  # the lake is NoData, the rest is not
            assert image[valid].min() >= 500 and image[valid].max() <= 600, resampling
            assert not np.isnan(image).any()
    finally:
        ctx.close()


def write_holed_tile(path: Path, col: int, row: int, dtype: str, bands: int, nodata: int) -> None:
    """A tile of ``bands`` integer bands (values 180..200) with ``nodata`` where a round lake
    crosses the four middle tiles and along a ragged strip at the mosaic's west border (37
    pixels wide: no level's pixel grid lines up with its edge)."""
    x0, y0 = col * SIZE * PIXEL, (GRID - row) * SIZE * PIXEL
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    gx, gy = xx + col * SIZE, yy + row * SIZE
    rng = np.random.default_rng(col * GRID + row)
    data = (180 + 20 * rng.random((bands, SIZE, SIZE))).astype(dtype)
    half = GRID * SIZE / 2
    hole = ((gx - half) ** 2 + (gy - half) ** 2 < (SIZE * 0.7) ** 2) | (gx < 37)
    data[:, hole] = nodata
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": bands,
        "dtype": dtype,
        "nodata": nodata,
        "crs": "EPSG:3857",
        "transform": Affine(PIXEL, 0, x0, 0, -PIXEL, y0),
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "photometric": "MINISBLACK",  # four bands of imagery (red, green, blue, near infrared)
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4])


@pytest.mark.parametrize(
    ("dtype", "bands", "nodata"),
    [("uint8", 3, 0), ("uint8", 4, 0), ("int16", 1, -9999)],
    ids=["rgb", "byte-4-bands", "int16"],
)
@pytest.mark.parametrize("tile_size", [64, 512], ids=["levels", "internal-overviews"])
def test_integer_overviews_keep_the_fill_out_of_the_values(
    tmp_path: Path, dtype: str, bands: int, nodata: int, tile_size: int
) -> None:
    """Integer data with holes (an RGB image; a 4-band image, a 16-bit grid: their tiles'
    alpha band is no mask GDAL knows of): the overview tiles (every level, with their internal overviews) and
    the bilinear images drawn from them hold values of the items only (180..200), never the
    fill blended into the pixels beside a hole (dark edges). Small tiles make levels drawn
    from the level below; one large tile has internal overviews of its own."""
    folder = tmp_path / "img"
    folder.mkdir()
    for row in range(GRID):
        for col in range(GRID):
            write_holed_tile(folder / f"i_{col}_{row}.tif", col, row, dtype, bands, nodata)
    ctx, ovr = published_mosaic(tmp_path, folder, "img", "Img")
    try:
        ovr.configure("img", factor=2, tile_size=tile_size, min_items=4)
        assert ovr.build("img").levels >= (3 if tile_size == 64 else 1)
        tiles = ctx.catalog.find_items(overview_dataset_name("img"), ItemQuery())
        for tile in tiles:
            with rasterio.open(tile.path) as ds:
                levels = [-1, *range(len(ds.overviews(1)))]
            assert tile_size == 64 or len(levels) > 1
            for level in levels:
                options = {"overview_level": level} if level >= 0 else {}
                with rasterio.open(tile.path, **options) as ds:
                    values = ds.read()
                shown = values[:bands, values[bands] > 0]
                assert shown.size and shown.min() >= 180 and shown.max() <= 200, (
                    tile.path,
                    level,
                )
        snapshot = ctx.registry.get("", "Img")
        for size in (64, 100, 37):
            request = ExportRequest(WHOLE, "EPSG:3857", size, size, format="tiff")
            block, used = ctx.exporter.render(snapshot, request)
            assert 0 < len(used) < 5  # drawn from the overviews
            assert 0.6 < block.valid.mean() < 0.95  # the lake and the strip are NoData
            shown = block.data[:, block.valid]
            assert shown.min() >= 180 and shown.max() <= 200, size
    finally:
        ctx.close()


def overview_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_a_dataset_made_anew_keeps_no_stale_tiles_and_no_user_file_is_touched(
    env: Env, tmp_path: Path
) -> None:
    """The same dataset made anew in another catalog (its overview settings gone with the
    old one) writes its tiles into the same folder: building its overviews first deletes the
    tiles left there, and removing them deletes them even without settings — only files
    named like the tiles livemosaic writes, never anything else in that folder."""
    env.ovr.build("d")
    folder = Path(env.ovr.settings("d").folder)  # type: ignore[union-attr]
    first = overview_files(folder)
    assert first
    mine = [folder / "notes.txt", folder / "L0" / "mine.tif", folder / "L9" / "0_0_1.tif.bak"]
    for path in mine:
        path.parent.mkdir(exist_ok=True)
        path.write_text("user data")
    (folder / "L0" / "5_-2_18ef0.tif.part").write_text("")  # a write cut short
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "other",
        data_folders=[env.folder],
        max_mosaic_image_count=50,
    )
    ctx = build_context(settings)
    try:
        Ingestor(ctx.catalog, ctx.source, [env.folder]).create_dataset("d", "EPSG:3857")
        Ingestor(ctx.catalog, ctx.source, [env.folder]).add_paths("d", [env.folder])
        ovr = MosaicOverviews(ctx.catalog, ctx.source, CogTileWriter(), [env.folder])
        assert ovr.settings("d") is None
        assert ovr.build("d").written > 0
        tiles = {
            Path(t.path) for t in ctx.catalog.find_items(overview_dataset_name("d"), ItemQuery())
        }
        assert tiles and not tiles & first
        assert overview_files(folder) == tiles | set(mine)
        ctx.catalog.delete_dataset(overview_dataset_name("d"))  # the settings are gone
        assert ovr.settings("d") is None
        assert ovr.remove("d") == 0
        assert overview_files(folder) == set(mine)
        assert not (folder / "L1").exists()  # emptied level folders go
    finally:
        ctx.close()
