from __future__ import annotations

import numpy as np
import pytest

from livemosaic.core.compose import (
    FirstCompositor,
    compose,
    compose_point,
    edge_weights,
    make_compositor,
)
from livemosaic.core.models import Extent
from livemosaic.core.ports import PixelBlock


def block(values, valid, dtype=np.uint8):
    data = np.asarray(values, dtype=dtype)
    if data.ndim == 2:
        data = data[None]
    return PixelBlock(data=data, valid=np.asarray(valid, dtype=bool))


# Two overlapping items on a 1x4 grid: A valid in columns 0-2, B valid in columns 1-3.
A = block([[10, 20, 30, 0]], [[1, 1, 1, 0]])
B = block([[0, 5, 40, 7]], [[0, 1, 1, 1]])


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("First", [10, 20, 30, 7]),
        ("Last", [10, 5, 40, 7]),
        ("Min", [10, 5, 30, 7]),
        ("Max", [10, 20, 40, 7]),
        ("Mean", [10, 12.5, 35, 7]),
        ("Sum", [10, 25, 70, 7]),
        ("Blend", [10, 12.5, 35, 7]),  # without weights Blend is a plain mean
    ],
)
def test_operators_on_partially_valid_overlap(operation, expected):
    out = compose([A, B], operation, bands=1, rows=1, cols=4)
    assert out.valid.tolist() == [[True, True, True, True]]
    assert out.data[0, 0].tolist() == pytest.approx(expected)


def test_typed_operators_keep_dtype_and_float_ones_use_float64():
    for op in ("First", "Last", "Min", "Max"):
        assert compose([A, B], op, 1, 1, 4).data.dtype == np.uint8
    for op in ("Mean", "Sum", "Blend"):
        assert compose([A, B], op, 1, 1, 4).data.dtype == np.float64
    wide = block([[300, 300, 300, 300]], [[1, 1, 1, 1]], dtype=np.uint16)
    out = compose([A, wide], "Max", 1, 1, 4)
    assert out.data.dtype == np.uint16
    assert out.data[0, 0].tolist() == [300, 300, 300, 300]


def test_nothing_valid_gives_invalid_block():
    empty = block([[1, 2]], [[0, 0]])
    out = compose([empty, None], "Mean", 1, 1, 2)
    assert not out.valid.any()
    out = compose([], "First", 3, 2, 2)
    assert out.data.shape == (3, 2, 2)
    assert not out.valid.any()


def test_first_reports_done_once_every_pixel_is_filled():
    comp = FirstCompositor(1, 1, 4)
    assert comp.feed(A) is True
    assert not comp.done
    assert comp.feed(B) is True  # fills column 3
    assert comp.done
    assert comp.feed(block([[1, 1, 1, 1]], [[1, 1, 1, 1]])) is False


def test_first_keeps_an_owned_block_and_never_changes_a_borrowed_one():
    full = block([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[1, 1], [1, 1]])
    comp = FirstCompositor(2, 2, 2)
    assert comp.feed(full, owned=True) and comp.done
    out = comp.result()
    assert out.data is full.data  # one item filled the image: no copy, no compositing
    assert out.valid.all()

    holes = block([[10, 20, 30, 0]], [[1, 0, 1, 0]])
    before = holes.data.copy(), holes.valid.copy()
    out = compose([holes, B], "First", 1, 1, 4)  # compose() borrows its blocks
    assert out.data[0, 0].tolist() == [10, 5, 30, 7]
    assert holes.data.tolist() == before[0].tolist()
    assert holes.valid.tolist() == before[1].tolist()


def test_first_fills_the_gaps_of_an_owned_block_from_the_next_items():
    comp = FirstCompositor(1, 1, 4)
    first = block([[10, 99, 30, 99]], [[1, 0, 1, 0]])
    assert comp.feed(first, owned=True) and not comp.done
    assert comp.feed(block([[0, 5, 0, 0]], [[0, 1, 0, 0]]), owned=True)
    out = comp.result()
    assert out.data[0, 0].tolist() == [10, 5, 30, 0]  # the pixel nobody covers is zeroed
    assert out.valid.tolist() == [[True, True, True, False]]


def test_first_zeroes_a_band_left_invalid_by_nan_in_a_full_item():
    data = np.array([[[1.0, np.nan]], [[3.0, 4.0]]], dtype=np.float32)
    comp = FirstCompositor(2, 1, 2)
    comp.feed(PixelBlock(data=data, valid=np.ones((1, 2), dtype=bool)), owned=True)
    out = comp.result()
    assert out.data.tolist() == [[[1.0, 0.0]], [[3.0, 4.0]]]
    assert out.valid.tolist() == [[True, True]]


def test_first_takes_whole_pixels_from_one_item():
    two_band = block([[[1, 2]], [[3, 4]]], [[1, 0]])
    one_band = block([[9, 9]], [[1, 1]])
    out = compose([two_band, one_band], "First", 2, 1, 2)
    # pixel 0 from the 2-band item; pixel 1 from the 1-band item, whose band 2 is empty
    assert out.data[:, 0, :].tolist() == [[1, 9], [3, 0]]
    assert out.valid.tolist() == [[True, True]]


def test_missing_bands_do_not_count_in_mean():
    two_band = block([[[10]], [[20]]], [[1]])
    one_band = block([[30]], [[1]])
    out = compose([two_band, one_band], "Mean", 2, 1, 1)
    assert out.data[:, 0, 0].tolist() == [20.0, 20.0]  # band 2 is the 2-band item alone


def test_nan_is_invalid_for_float_items():
    a = block([[np.nan, 2.0]], [[1, 1]], dtype=np.float32)
    b = block([[5.0, 4.0]], [[1, 1]], dtype=np.float32)
    out = compose([a, b], "Min", 1, 1, 2)
    assert out.data[0, 0].tolist() == [5.0, 2.0]


def test_blend_weights_by_distance_to_item_edges():
    grid = Extent(0, 0, 4, 1)  # four 1x1 pixels, centres at x = 0.5 .. 3.5
    wa = edge_weights(Extent(0, -10, 3, 10), grid, 1, 4)
    wb = edge_weights(Extent(1, -10, 4, 10), grid, 1, 4)
    assert wa[0].tolist() == [0.5, 1.5, 0.5, 0.0]
    assert wb[0].tolist() == [0.0, 0.5, 1.5, 0.5]
    comp = make_compositor("Blend", 1, 1, 4)
    comp.feed(A, wa)
    comp.feed(B, wb)
    out = comp.result()
    # column 1: (20*1.5 + 5*0.5) / 2 = 16.25 ; column 2: (30*0.5 + 40*1.5) / 2 = 37.5
    assert out.data[0, 0].tolist() == pytest.approx([10, 16.25, 37.5, 7])


def test_compose_point_reports_the_supplying_item():
    p1 = block([[4]], [[1]])
    p2 = block([[9]], [[1]])
    ext = Extent(0, 0, 10, 10)
    out, idx = compose_point([(ext, p1), (ext, p2)], "First", (5, 5))
    assert (out.data[0, 0, 0], idx) == (4, 0)
    out, idx = compose_point([(ext, p1), (ext, p2)], "Last", (5, 5))
    assert (out.data[0, 0, 0], idx) == (9, 1)
    out, _ = compose_point([(ext, p1), (ext, p2)], "Sum", (5, 5))
    assert out.data[0, 0, 0] == 13
    assert compose_point([], "First", (0, 0)) == (None, -1)


def test_feeding_a_block_of_the_wrong_size_fails():
    comp = make_compositor("First", 1, 2, 2)
    with pytest.raises(ValueError, match="fed to a 2x2 mosaic"):
        comp.feed(A)
