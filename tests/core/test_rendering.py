from __future__ import annotations

import numpy as np
import pytest

from livemosaic.core.models import BandStats
from livemosaic.core.ports import PixelBlock
from livemosaic.core.rendering import (
    OutputSpec,
    RenderingRule,
    apply_rendering,
    canonical_function_name,
    finish_block,
    needs_neighbourhood,
    output_stats,
)
from livemosaic.errors import InvalidParameter, NotSupported


def block(values, valid=None, dtype=np.float64):
    data = np.asarray(values, dtype=dtype)
    if data.ndim == 2:
        data = data[None]
    if valid is None:
        valid = np.ones(data.shape[1:], dtype=bool)
    return PixelBlock(data=data, valid=np.asarray(valid, dtype=bool))


def rule(name, **args):
    return RenderingRule(name, args)


# --- names ----------------------------------------------------------------------------------


def test_function_names_are_case_insensitive():
    assert canonical_function_name("stretch") == "Stretch"
    assert canonical_function_name("NDVI") == "NDVI"
    assert canonical_function_name("colormap") == "Colormap"
    assert canonical_function_name("slope") == "Slope"
    with pytest.raises(NotSupported, match="Raster function 'Curvature' is not supported."):
        canonical_function_name("Curvature")


def test_none_returns_raw_pixels_and_converts_only_on_request():
    src = block([[1.6, 2.2]])
    assert apply_rendering(src, rule("None")).data is src.data
    out = apply_rendering(src, RenderingRule("None", {}, output_pixel_type="U8"))
    assert out.data.dtype == np.uint8
    assert out.data.tolist() == [[[2, 2]]]


# --- Stretch --------------------------------------------------------------------------------


def test_minmax_stretch_with_statistics_argument():
    src = block([[0, 50, 100, 150]], dtype=np.uint16)
    out = apply_rendering(src, rule("Stretch", StretchType=5, Statistics=[[0, 100, 50, 10]]))
    assert out.data.dtype == np.uint8
    assert out.data[0, 0].tolist() == [0, 128, 255, 255]


def test_minmax_stretch_uses_service_stats_then_dra():
    src = block([[10, 20]])
    stats = [BandStats(0, 40, 20, 5)]
    out = apply_rendering(src, rule("stretch", StretchType=5), stats)
    assert out.data[0, 0].tolist() == [64, 128]  # 10/40*255 = 63.75, 20/40*255 = 127.5
    out = apply_rendering(src, rule("Stretch", StretchType=5, DRA=True), stats)
    assert out.data[0, 0].tolist() == [0, 255]  # the block's own 10..20


def test_standard_deviation_stretch():
    src = block([[30, 50, 70, 80, 10]])
    stats = [BandStats(0, 100, 50, 10)]
    out = apply_rendering(src, rule("Stretch", StretchType=3), stats)  # 2 sd: 30..70
    assert out.data[0, 0].tolist() == [0, 128, 255, 255, 0]
    out = apply_rendering(src, rule("Stretch", StretchType=3, NumberOfStandardDeviations=1), stats)
    assert out.data[0, 0].tolist() == [0, 128, 255, 255, 0]  # 40..60: 30 -> 0, 70 -> 255


def test_percent_clip_stretch_uses_block_percentiles():
    src = block([np.arange(101, dtype=float)])
    out = apply_rendering(src, rule("Stretch", StretchType=6, MinPercent=10, MaxPercent=10))
    # 10th and 90th percentile of 0..100 are 10 and 90
    assert out.data[0, 0, [5, 10, 50, 90, 95]].tolist() == [0, 0, 128, 255, 255]


def test_gamma_and_output_range():
    src = block([[0, 25, 100]])
    stats = [BandStats(0, 100, 50, 10)]
    out = apply_rendering(src, rule("Stretch", StretchType=5, UseGamma=True, Gamma=[2.0]), stats)
    assert out.data[0, 0].tolist() == [0, 128, 255]  # 0.25 ** (1/2) = 0.5
    out = apply_rendering(src, rule("Stretch", StretchType=5, Min=10, Max=20), stats)
    assert out.data[0, 0].tolist() == [10, 12, 20]  # 10 + 0.25 * 10 = 12.5 -> 12 (half to even)


def test_stretch_type_zero_is_identity_and_unknown_type_is_rejected():
    src = block([[1000, 2000]], dtype=np.uint16)
    out = apply_rendering(src, rule("Stretch", StretchType=0))
    assert out.data.dtype == np.uint16
    assert out.data[0, 0].tolist() == [1000, 2000]
    with pytest.raises(InvalidParameter, match="renderingRule.*StretchType 7"):
        apply_rendering(src, rule("Stretch", StretchType=7))
    with pytest.raises(InvalidParameter, match="NumberOfStandardDeviations must be a number"):
        apply_rendering(src, rule("Stretch", StretchType=3, NumberOfStandardDeviations="x"))


def test_stretch_invalid_pixels_become_zero():
    src = block([[5, 10]], valid=[[True, False]])
    out = apply_rendering(src, rule("Stretch", StretchType=5, Statistics=[[0, 10, 5, 1]]))
    assert out.data[0, 0].tolist() == [128, 0]
    assert out.valid.tolist() == [[True, False]]


# --- Colormap ---------------------------------------------------------------------------------


def test_explicit_colormap_gives_three_band_u8_and_hides_unmapped_values():
    src = block([[1, 2, 3]], dtype=np.uint8)
    cmap = [[1, 255, 0, 0], [2, 0, 255, 0]]
    out = apply_rendering(src, rule("Colormap", Colormap=cmap))
    assert out.data.dtype == np.uint8
    assert out.data[:, 0, :].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 0]]
    assert out.valid.tolist() == [[True, True, False]]


def test_named_colormaps():
    src = block([[0, 128, 255]], dtype=np.uint8)
    gray = apply_rendering(src, rule("Colormap", ColormapName="Gray"))
    assert gray.data[:, 0, :].tolist() == [[0, 128, 255]] * 3
    # float input is stretched to 0..255 by the statistics first
    flt = block([[0.0, 0.5, 1.0]])
    gray = apply_rendering(flt, rule("Colormap", ColormapName="gray"), [BandStats(0, 1, 0.5, 0.1)])
    assert gray.data[0, 0].tolist() == [0, 128, 255]
    ndvi = apply_rendering(src, rule("Colormap", ColormapName="NDVI"))
    assert ndvi.data[:, 0, 0].tolist() == [165, 0, 38]
    assert ndvi.data[:, 0, 2].tolist() == [0, 104, 55]
    rnd1 = apply_rendering(src, rule("Colormap", ColormapName="Random"))
    rnd2 = apply_rendering(src, rule("Colormap", ColormapName="Random"))
    assert np.array_equal(rnd1.data, rnd2.data)  # deterministic
    with pytest.raises(InvalidParameter, match="ColormapName 'Rainbow'"):
        apply_rendering(src, rule("Colormap", ColormapName="Rainbow"))
    with pytest.raises(InvalidParameter, match=r"Colormap must be \[\[value"):
        apply_rendering(src, rule("Colormap", Colormap=[[1, 2]]))


# --- ExtractBand ----------------------------------------------------------------------------


def test_extract_band_reorders_and_checks_range():
    src = block([[[1]], [[2]], [[3]]])
    out = apply_rendering(src, rule("ExtractBand", BandIds=[2, 0, 0]))
    assert out.data[:, 0, 0].tolist() == [3, 1, 1]
    with pytest.raises(InvalidParameter, match="renderingRule.*band index 3 .* 3 band"):
        apply_rendering(src, rule("ExtractBand", BandIds=[3]))
    with pytest.raises(InvalidParameter, match="BandIds"):
        apply_rendering(src, rule("ExtractBand"))


# --- Hillshade ------------------------------------------------------------------------------


def plane(step_per_col, rows=5, cols=6):
    cols_idx = np.arange(cols, dtype=float)
    return block(np.tile(cols_idx * step_per_col, (rows, 1)))


def test_hillshade_of_planes_matches_hand_computed_values():
    # sun from the north-west (315) at 45 degrees; slope 45 degrees (rise 10 m per 10 m cell)
    # facing west: 255 * (cos45*cos45 + sin45*sin45*cos(135-180)) = 255 * 0.8536 = 217.7
    west = apply_rendering(plane(10.0), rule("Hillshade"), cell_size=(10.0, 10.0))
    assert west.data.dtype == np.uint8
    assert np.all(west.data[0, :, 1:-1] == 218)
    # facing east: 255 * (0.5 + 0.5 * cos(135)) = 37.3
    east = apply_rendering(plane(-10.0), rule("hillshade"), cell_size=(10.0, 10.0))
    assert np.all(east.data[0, :, 1:-1] == 37)
    # flat: 255 * cos(45) = 180.3
    flat = apply_rendering(plane(0.0), rule("Hillshade"), cell_size=(10.0, 10.0))
    assert np.all(flat.data == 180)


def test_hillshade_cell_size_in_degrees_uses_metres_per_unit():
    out = apply_rendering(plane(10.0), rule("Hillshade"), cell_size=(1.0, 1.0), meters_per_unit=10)
    assert np.all(out.data[0, :, 1:-1] == 218)
    # ZFactor 2 doubles the gradient: slope atan(2) = 63.43 deg ->
    # 255 * (cos45 * cos63.43 + sin45 * sin63.43 * cos45) = 255 * 0.7634 = 194.7
    out = apply_rendering(plane(10.0), rule("Hillshade", ZFactor=2), cell_size=(10.0, 10.0))
    assert np.all(out.data[0, :, 1:-1] == 195)


def test_hillshade_marks_neighbours_of_nodata_invalid():
    src = plane(10.0)
    src.valid[2, 3] = False
    out = apply_rendering(src, rule("Hillshade"), cell_size=(10.0, 10.0))
    assert out.valid[1:4, 2:5].sum() == 0
    assert out.valid.sum() == 30 - 9


# --- NDVI ------------------------------------------------------------------------------------


def test_ndvi_exact_values():
    vis = [[10, 0, 30, 20]]
    ir = [[30, 0, 10, 20]]
    src = block([vis, ir], dtype=np.uint8)
    out = apply_rendering(src, rule("NDVI", VisibleBandID=0, InfraredBandID=1))
    assert out.data.dtype == np.float32
    assert out.valid.tolist() == [[True, False, True, True]]
    assert out.data[0, 0, [0, 2, 3]].tolist() == [0.5, -0.5, 0.0]
    u8 = apply_rendering(src, RenderingRule("NDVI", {"VisibleBandID": 0}, output_pixel_type="U8"))
    assert u8.data[0, 0, [0, 2, 3]].tolist() == [150, 50, 100]
    with pytest.raises(InvalidParameter, match="InfraredBandID 5 is out of range"):
        apply_rendering(src, rule("NDVI", InfraredBandID=5))


# --- chains --------------------------------------------------------------------------------


def test_nested_rules_run_innermost_first():
    src = block([[[0, 100]], [[50, 50]]])
    inner = RenderingRule("ExtractBand", {"BandIds": [0]})
    chain = RenderingRule(
        "Stretch", {"StretchType": 5}, raster=inner
    )  # stats of band 0 follow the extraction
    out = apply_rendering(src, chain, [BandStats(0, 100, 50, 1), BandStats(0, 50, 25, 1)])
    assert out.data.shape == (1, 1, 2)
    assert out.data[0, 0].tolist() == [0, 255]
    colour = RenderingRule("Colormap", {"ColormapName": "Gray"}, raster=chain)
    out = apply_rendering(src, colour, [BandStats(0, 100, 50, 1)])
    assert out.data[:, 0, 1].tolist() == [255, 255, 255]
    assert needs_neighbourhood(RenderingRule("Stretch", {}, raster=RenderingRule("Hillshade")))
    assert not needs_neighbourhood(colour)


def test_output_stats_follow_the_chain():
    stats = [BandStats(0, 1, 0, 0), BandStats(0, 2, 0, 0)]
    assert output_stats(None, stats) == tuple(stats)
    assert output_stats(rule("ExtractBand", BandIds=[1]), stats) == (stats[1],)
    assert output_stats(rule("NDVI"), stats)[0].min == -1.0
    assert output_stats(rule("Stretch", StretchType=5), stats) == ()


# --- output pipeline ------------------------------------------------------------------------


def test_pixel_type_conversion_clamps_and_rounds():
    src = block([[-5.0, 3.5, 300.6, 70000.0]])
    out = finish_block(src, OutputSpec(pixel_type="U8"))
    assert out.data.dtype == np.uint8
    assert out.data[0, 0].tolist() == [0, 4, 255, 255]
    out = finish_block(src, OutputSpec(pixel_type="S16"))
    assert out.data[0, 0].tolist() == [-5, 4, 301, 32767]
    out = finish_block(src, OutputSpec(pixel_type="U4"))
    assert out.data[0, 0].tolist() == [0, 4, 15, 15]


def test_nodata_interpretation_any_and_all():
    src = block([[[0, 0, 5]], [[0, 9, 5]]], dtype=np.uint8)
    any_ = finish_block(src, OutputSpec(nodata=(0,), nodata_interpretation="any"))
    assert any_.valid.tolist() == [[False, False, True]]
    all_ = finish_block(src, OutputSpec(nodata=(0,), nodata_interpretation="all"))
    assert all_.valid.tolist() == [[False, True, True]]
    per_band = finish_block(src, OutputSpec(nodata=(5, 9), nodata_interpretation="any"))
    assert per_band.valid.tolist() == [[True, False, False]]
    with pytest.raises(InvalidParameter, match="noData.*3 values.*2 band"):
        finish_block(src, OutputSpec(nodata=(1, 2, 3)))


def test_eight_bit_stretch_uses_service_statistics_then_block():
    src = block([[0, 500, 1000]], dtype=np.uint16)
    out = finish_block(src, OutputSpec(eight_bit=True), [BandStats(0, 1000, 500, 1)])
    assert out.data.dtype == np.uint8
    assert out.data[0, 0].tolist() == [0, 128, 255]
    src2 = block([[200, 300]], dtype=np.uint16)
    out = finish_block(src2, OutputSpec(eight_bit=True))  # no stats: block min/max
    assert out.data[0, 0].tolist() == [0, 255]
    tiff = finish_block(src, OutputSpec(eight_bit=False), [BandStats(0, 1000, 500, 1)])
    assert tiff.data.dtype == np.uint16


def test_eight_bit_output_shows_three_bands():
    four = block([[[1]], [[2]], [[3]], [[4]]], dtype=np.uint8)
    out = finish_block(four, OutputSpec(eight_bit=True))
    assert out.data[:, 0, 0].tolist() == [1, 2, 3]
    out = finish_block(four, OutputSpec(eight_bit=True, default_band_ids=(3, 2, 1)))
    assert out.data[:, 0, 0].tolist() == [4, 3, 2]
    out = finish_block(four, OutputSpec(eight_bit=True, band_ids=(3, 0)))
    assert out.data[:, 0, 0].tolist() == [4, 1]  # explicit bandIds win
    with pytest.raises(InvalidParameter, match="bandIds.*4 band"):
        finish_block(four, OutputSpec(band_ids=(4,)))


def test_non_eight_bit_output_writes_nodata_into_invalid_pixels():
    src = block([[1, 2]], valid=[[True, False]], dtype=np.int16)
    out = finish_block(src, OutputSpec(), dataset_nodata=-9999)
    assert out.data[0, 0].tolist() == [1, -9999]
    assert out.nodata == -9999
    small = PixelBlock(src.data.astype(np.uint8), src.valid)
    out = finish_block(small, OutputSpec(), (), -1)
    assert out.data[0, 0].tolist() == [1, 0]  # -1 does not fit uint8
    assert out.nodata is None
