"""The time-field mapping of a mosaic dataset, and files without a CRS of their own.

Files are written with GDAL in the test (:mod:`tests.gen_rasters`); the catalog is a real
SQLite catalog and the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livemosaic.adapters.catalog.sqlite import SqliteCatalog
from livemosaic.adapters.raster import RasterioSource
from livemosaic.core.ingest import Ingestor
from livemosaic.core.ports import InspectOptions, ItemQuery
from livemosaic.errors import InvalidParameter, RasterRejected
from tests import gen_rasters as gen

JUNE = 1622543400000  # 2021-06-01T10:30:00Z


def ingest(tmp_path: Path, files: list[Path], **create: object) -> list:  # type: ignore[type-arg]
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    ing = Ingestor(catalog, RasterioSource([tmp_path]), [tmp_path])
    ing.create_dataset("ds", **create)  # type: ignore[arg-type]
    report = ing.add_paths("ds", files)
    assert not report.rejected, report.rejected
    items = catalog.find_items("ds", ItemQuery())
    catalog.close()
    return items


def test_netcdf_global_attribute(tmp_path: Path) -> None:
    nc = gen.global_attr_nc(tmp_path, "field_2020-01-01.nc", {"time_coverage_start": "2021-06-01T10:30:00Z"})  # fmt: skip
    [item] = ingest(tmp_path, [nc], time_field="time_coverage_start")
    assert item.time == JUNE  # not the date in the file name
    assert item.attributes.get("time_source") in (None, "time_coverage_start")


@pytest.mark.parametrize(
    ("tags", "ns", "field", "fmt"),
    [
        ({"ACQUISITIONDATETIME": "2021-06-01T12:30:00+02:00"}, "IMAGERY", "IMAGERY:ACQUISITIONDATETIME", None),
        ({"ACQ": "01.06.2021 10:30"}, None, "acq", "%d.%m.%Y %H:%M"),
        ({"TIFFTAG_DATETIME": "2021:06:01 10:30:00"}, None, "TIFFTAG_DATETIME", None),
    ],
)  # fmt: skip
def test_tiff_metadata_items(
    tmp_path: Path, tags: dict[str, str], ns: str | None, field: str, fmt: str | None
) -> None:
    tif = gen.tagged_tif(tmp_path, "scene_1999-12-31.tif", tags, ns)
    [item] = ingest(tmp_path, [tif], crs=gen.UTM, time_field=field, time_format=fmt)
    assert item.time == JUNE
    assert item.attributes["time_source"] == field


def test_missing_field_falls_back_to_the_file_name(tmp_path: Path) -> None:
    tif = gen.tagged_tif(tmp_path, "scene_1999-12-31.tif", {"OTHER": "x"})
    [item] = ingest(tmp_path, [tif], time_field="acq")
    assert item.time == 946598400000
    assert item.attributes["time_source"] == "file name"


def test_time_field_is_stored_with_the_dataset(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    ing = Ingestor(catalog, RasterioSource([tmp_path]), [tmp_path])
    ing.create_dataset("ds", time_field="NC_GLOBAL#time_coverage_start", time_format="%Y%m%d")
    catalog.close()
    again = SqliteCatalog(tmp_path / "catalog.db")
    ds = again.get_dataset("ds")
    again.close()
    assert (ds.time_field, ds.time_format) == ("NC_GLOBAL#time_coverage_start", "%Y%m%d")


@pytest.mark.parametrize(
    ("field", "fmt"), [("", None), ("IMAGERY:", None), ("acq", "Y-m-d"), (None, "%Y")]
)
def test_bad_time_field_is_refused(tmp_path: Path, field: str | None, fmt: str | None) -> None:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    ing = Ingestor(catalog, RasterioSource([tmp_path]), [tmp_path])
    with pytest.raises(InvalidParameter):
        ing.create_dataset("ds", time_field=field, time_format=fmt)
    catalog.close()


def cli(args: list[str], env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "livemosaic"
    proc = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert (proc.returncode == 0) == ok, proc.stderr + proc.stdout
    return proc


def test_cli_create_and_set(tmp_path: Path) -> None:
    env = dict(os.environ, LIVEMOSAIC_DATA_DIR=str(tmp_path / "data"),
               LIVEMOSAIC_DATA_FOLDERS=str(tmp_path))  # fmt: skip
    nc = gen.global_attr_nc(tmp_path, "field.nc", {"time_coverage_start": "2021-06-01T10:30:00Z"})
    cli(["dataset", "create", "ds", "--time-field", "time_coverage_start"], env)
    cli(["dataset", "add", "ds", str(nc), "--quiet"], env)
    info = json.loads(cli(["dataset", "info", "ds"], env).stdout)
    assert info["timeField"] == "time_coverage_start" and info["timeFormat"] is None
    assert info["summary"]["timeExtent"] == ["2021-06-01T10:30:00Z", "2021-06-01T10:30:00Z"]
    cli(["dataset", "set", "ds", "--time-format", "%Y-%m-%dT%H:%M:%SZ"], env)
    info = json.loads(cli(["dataset", "info", "ds"], env).stdout)
    assert info["timeFormat"] == "%Y-%m-%dT%H:%M:%SZ"
    cli(["dataset", "set", "ds", "--time-field", ""], env)
    info = json.loads(cli(["dataset", "info", "ds"], env).stdout)
    assert info["timeField"] is None and info["timeFormat"] is None
    out = cli(["dataset", "set", "ds", "--time-format", "%Y"], env, ok=False)
    assert "time field" in out.stderr + out.stdout


# -- a dataset's CRS for files that have none ----------------------------------------------------


def test_crs_less_grid_is_refused_without_a_dataset_crs(tmp_path: Path) -> None:
    asc = gen.crs_less_asc(tmp_path)
    with pytest.raises(RasterRejected, match="--crs"):
        RasterioSource([tmp_path]).inspect(str(asc), InspectOptions(dataset_crs=None))


def test_crs_less_grid_takes_the_dataset_crs(tmp_path: Path) -> None:
    asc = gen.crs_less_asc(tmp_path)
    [item] = ingest(tmp_path, [asc], crs=gen.UTM)
    assert item.native_crs == gen.UTM and item.attributes["assumed_crs"] == gen.UTM
    t = gen.UTM_TRANSFORM
    assert (item.native_extent.xmin, item.native_extent.ymax) == (t.c, t.f)
    assert (item.extent.xmin, item.extent.ymax) == (t.c, t.f)


def test_netcdf_without_grid_mapping_takes_the_dataset_crs(tmp_path: Path) -> None:
    nc = gen.projected_nc(tmp_path)
    with pytest.raises(RasterRejected, match="--crs"):
        RasterioSource([tmp_path]).inspect(str(nc), InspectOptions(dataset_crs=None))
    [item] = ingest(tmp_path, [nc], crs=gen.UTM)
    assert item.variable == "h" and item.attributes["assumed_crs"] == gen.UTM
    assert (item.extent.xmin, item.extent.ymin, item.extent.xmax, item.extent.ymax) == (
        300000.0, 4000000.0, 305000.0, 4004000.0)  # fmt: skip
