"""Curvilinear grids: a NetCDF variable located by 2-D lat/lon arrays is ingested and read
through the GDAL warper with its geolocation arrays (file written byte by byte in the test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from livemosaic.adapters.raster import RasterioSource, geoloc
from livemosaic.core.models import Extent
from livemosaic.core.ports import InspectOptions, ReadRequest
from livemosaic.errors import RasterRejected
from tests import gen_rasters as gen

STEP = 0.005  # degrees: request cells much finer than the grid's (about 0.1 degree)


@pytest.fixture()
def source(tmp_path: Path) -> RasterioSource:
    return RasterioSource([tmp_path])


def test_curvilinear_variable_becomes_an_item(tmp_path: Path, source: RasterioSource) -> None:
    path = gen.curvilinear_nc(tmp_path)
    [item] = source.inspect(str(path), InspectOptions(None))
    assert item.variable == "temp" and item.attributes["geolocation"] is True
    assert item.native_crs == "EPSG:4326"
    lon, lat = gen.curvilinear_grid()
    e = item.extent
    assert (
        e.xmin <= lon.min() and e.xmax >= lon.max() and e.ymin <= lat.min() and e.ymax >= lat.max()
    )
    # the footprint follows the grid's outline (a sheared quadrilateral), not its bounding box
    corners = [(lon[0, 0], lat[0, 0]), (lon[0, -1], lat[0, -1]), (lon[-1, -1], lat[-1, -1]),
               (lon[-1, 0], lat[-1, 0])]  # fmt: skip
    ring = np.array(item.footprint)
    for x, y in corners:
        assert np.hypot(ring[:, 0] - x, ring[:, 1] - y).min() < 1e-5
    assert 0.09 < item.low_ps < 0.11


def test_curvilinear_item_in_a_projected_dataset(tmp_path: Path, source: RasterioSource) -> None:
    path = gen.curvilinear_nc(tmp_path)
    [item] = source.inspect(str(path), InspectOptions("EPSG:3857"))
    assert 600_000 < item.extent.xmin < item.extent.xmax < 900_000
    assert 7_000 < item.low_ps < 14_000  # about 0.1 degree in metres at 47 N


def test_read_puts_every_cell_where_its_coordinates_say(
    tmp_path: Path, source: RasterioSource
) -> None:
    path = gen.curvilinear_nc(tmp_path)
    [item] = source.inspect(str(path), InspectOptions(None))
    e = item.native_extent
    width, height = round(e.width / STEP), round(e.height / STEP)
    ext = Extent(e.xmin, e.ymax - height * STEP, e.xmin + width * STEP, e.ymax)
    block = source.read(item, ReadRequest(ext, "EPSG:4326", width, height))
    assert block is not None
    lon, lat = gen.curvilinear_grid()
    values = gen.curvilinear_values()
    to_pixel = ~Affine(STEP, 0, ext.xmin, 0, -STEP, ext.ymax)
    hits = 0
    for (r, c), value in np.ndenumerate(values):
        col, row = (int(v) for v in to_pixel * (float(lon[r, c]), float(lat[r, c])))
        if block.valid[row, col]:
            hits += 1
            assert block.data[0, row, col] == value, (r, c)
    assert hits >= 0.9 * values.size
    # outside the sheared outline nothing is drawn
    assert not block.valid[0, -1] and not block.valid[-1, 0]


def test_subsampled_geolocation_is_refused_with_the_reason(
    tmp_path: Path, source: RasterioSource
) -> None:
    lon, lat = gen.curvilinear_grid()
    path = gen.write_netcdf3(
        tmp_path / "coarse_geoloc.nc",
        {"y": 12, "x": 16, "yc": 6, "xc": 8},
        {
            "lat": (("yc", "xc"), lat[::2, ::2], {"units": "degrees_north"}),
            "lon": (("yc", "xc"), lon[::2, ::2], {"units": "degrees_east"}),
            "temp": (("y", "x"), gen.curvilinear_values(), {"coordinates": "lat lon"}),
        },
    )
    with pytest.raises(RasterRejected) as caught:
        source.inspect(str(path), InspectOptions(None))
    assert "do not match the grid" in caught.value.reason
    assert "gdalwarp -geoloc" in caught.value.next_step


def test_too_large_a_curvilinear_grid_is_refused(
    tmp_path: Path, source: RasterioSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit, lowered below the test grid's 12 x 16 cells."""
    monkeypatch.setattr(geoloc, "MAX_GEOLOCATED_CELLS", 100)
    path = gen.curvilinear_nc(tmp_path)
    with pytest.raises(RasterRejected) as caught:
        source.inspect(str(path), InspectOptions(None))
    assert "16x12 cells" in caught.value.reason
    assert "gdalwarp -geoloc" in caught.value.next_step
