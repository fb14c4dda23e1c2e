"""The pure parts of the peers suite (bench/peers): cases, bboxes, URLs, server configuration,
medians and ratios, the soak verdict. Nothing is timed here; the figures come from the suite."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peers import config, report  # noqa: E402

EXTENT = (1_000_000.0, 5_897_600.0, 1_102_400.0, 6_000_000.0)


def test_cases_cover_every_combination_and_the_dem_as_float_tiff():
    cases = config.cases(("native", "whole"), (256, 512), ("png", "jpg"), (256,))
    assert len(cases) == 2 * 2 * 2 + 2
    assert cases[0].label == "native 256 png"
    dem = [c for c in cases if c.layer == "dem"]
    assert [c.label for c in dem] == ["dem native 256 tif", "dem whole 256 tif"]


def test_bboxes_are_snapped_to_the_pixel_grid_inside_the_extent():
    boxes = config.bboxes("native", 256, EXTENT, 10.0, 20, seed=3)
    assert boxes == config.bboxes("native", 256, EXTENT, 10.0, 20, seed=3)  # seeded
    for xmin, ymin, xmax, ymax in boxes:
        assert xmax - xmin == pytest.approx(2560.0) and ymax - ymin == pytest.approx(2560.0)
        assert (xmin - EXTENT[0]) % 10 == 0 and (ymin - EXTENT[1]) % 10 == 0
        assert EXTENT[0] <= xmin and xmax <= EXTENT[2] and EXTENT[1] <= ymin and ymax <= EXTENT[3]
    assert config.bboxes("whole", 512, EXTENT, 10.0, 2, seed=3) == [EXTENT, EXTENT]
    mid = config.scale_side("mid", 512, EXTENT, 10.0)
    assert mid == pytest.approx((102_400 * 5_120) ** 0.5)


def test_every_server_is_asked_for_the_same_bbox_with_nearest_resampling():
    case = config.Case("rgb", "native", 256, "jpg")
    box = (1_000_000.0, 5_900_000.0, 1_002_560.0, 5_902_560.0)
    mosaics = {"rgb": Path("/data/rgb.json")}
    lm = config.request_path("livemosaic", case, box, mosaics)
    assert "interpolation=RSP_NearestNeighbor" in lm and "format=jpg" in lm
    assert "bbox=1000000.000%2C5900000.000%2C1002560.000%2C5902560.000" in lm
    ms = config.request_path("mapserver", case, box, mosaics)
    assert "BBOX=1000000.000%2C5900000.000" in ms and "FORMAT=image%2Fjpeg" in ms
    tt = config.request_path("titiler", case, box, mosaics)
    assert tt.startswith(
        "/mosaic/bbox/1000000.000,5900000.000,1002560.000,5902560.000/256x256.jpeg"
    )
    assert "resampling=nearest" in tt and "reproject=nearest" in tt
    dem = config.request_path("livemosaic", config.Case("dem", "whole", 512, "tif"), box, mosaics)
    assert "Bench/Dem" in dem and "pixelType=F32" in dem and "format=tiff" in dem


def test_mapserver_nginx_and_wrk_configuration():
    text = config.mapfile(EXTENT, {"rgb": Path("/i/rgb_index.shp"), "dem": Path("/i/dem.shp")})
    assert text.count('PROCESSING "CLOSE_CONNECTION=DEFER"') == 2
    assert 'TILEINDEX "/i/rgb_index.shp"' in text and 'PROCESSING "RESAMPLE=NEAREST"' in text
    assert "IMAGEMODE FLOAT32" in text and text.strip().endswith("END")
    assert "CLOSE_CONNECTION" not in config.mapfile(EXTENT, {"rgb": Path("/x")}, keep_open=False)
    assert 'MS_MAPFILE "/m/bench.map"' in config.mapserver_config(Path("/m/bench.map"))
    nginx = config.nginx_conf(Path("/w"), 8123, Path("/w/mapserv.sock"))
    assert "listen 127.0.0.1:8123;" in nginx and "fastcgi_pass unix:/w/mapserv.sock;" in nginx
    assert "fastcgi_param QUERY_STRING $query_string;" in nginx
    assert 'os.getenv("WRK_PATHS")' in config.WRK_SCRIPT


def test_slow_requests_get_longer_runs_up_to_the_cap():
    assert config.run_seconds(2.0, 0.01, 4, 15.0) == 2.0
    assert config.run_seconds(2.0, 0.5, 16, 15.0) == 8.0
    assert config.run_seconds(2.0, 3.0, 4, 15.0) == 15.0


def _run(server, rep, requests, cpu, rss=100 * 2**20, conns=4):
    return report.Run(server, "native 256 png", conns, rep, requests, 10.0, 20.0, 50.0, 0, cpu, rss)


def test_medians_ranges_and_ratios():
    runs = [
        _run("livemosaic", 0, 100, 2.0),  # 20 ms per request
        _run("livemosaic", 1, 100, 3.0),  # 30
        _run("livemosaic", 2, 100, 4.0, rss=300 * 2**20),  # 40
        _run("mapserver", 0, 200, 2.0, rss=50 * 2**20),  # 10
    ]
    lm, ms = report.summarise(runs)
    assert (lm.cpu_ms, lm.cpu_low, lm.cpu_high, lm.rate) == (30.0, 20.0, 40.0, 10.0)
    assert lm.peak_rss == 300 * 2**20 and ms.rate == 20.0
    detail = report.detail_table([lm, ms], {"livemosaic": "livemosaic 2 workers"})
    assert "30.0 (20.0-40.0)" in detail and "livemosaic 2 workers" in detail
    ratios = report.ratio_table([lm, ms], {"native 256 png": 15.0}, ("mapserver", "titiler"))
    row = ratios.splitlines()[-1].split()
    # case, c, floor, lm/floor, lm/ms CPU, lm/ms req/s, lm/ms RSS, titiler missing
    assert row[3:] == ["4", "15.0", "2.00", "3.00", "0.50", "6.00", "-", "-", "-"]
    assert report.ratio(1.0, 0.0) == "-" and report.ratio(None, 2.0) == "-"


def test_soak_verdict_and_pixel_comparison():
    assert report.is_flat([100, 300, 400, 400, 401, 402, 405, 410, 409, 410, 410, 411])
    assert not report.is_flat([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    assert not report.is_flat([1, 1, 1])  # too short to tell
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 2] = 1
    assert report.differing_fraction(a, b) == 1 / 16
    with pytest.raises(ValueError):
        report.differing_fraction(a, b[:2])


def test_requests_left_in_flight_by_wrk_count_with_their_cpu():
    from peers.load import cpu_per_request

    # 10 s of server CPU until idle, 18 answers seen by wrk, 2 connections still waiting
    assert cpu_per_request(10.0, 18, 2) == 0.5
