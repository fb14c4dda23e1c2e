"""Composing without temporaries (mask views, in-place sums) gives the reference results and
leaves the fed blocks untouched."""

from __future__ import annotations

import numpy as np
import pytest

from livemosaic.core.compose import compose
from livemosaic.core.ports import PixelBlock


def _blocks(dtype: type, seed: int) -> list[PixelBlock]:
    rng = np.random.default_rng(seed)
    blocks = []
    for bands in (3, 4, 2, 3):
        if np.issubdtype(dtype, np.floating):
            data = rng.normal(0, 1000, (bands, 16, 24)).astype(dtype)
            data[0, 2:4, 3:7] = np.nan
        else:
            data = rng.integers(0, 200, (bands, 16, 24)).astype(dtype)
        blocks.append(PixelBlock(data=data, valid=rng.random((16, 24)) > 0.4))
    return blocks


def _reference(blocks: list[PixelBlock], divide: bool) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros((3, 16, 24))
    count = np.zeros((3, 16, 24))
    for block in blocks:
        for b in range(min(3, block.data.shape[0])):
            values = block.data[b].astype(np.float64)
            ok = block.valid & ~np.isnan(values)
            total[b][ok] += values[ok]
            count[b][ok] += 1
    has = count > 0
    data = np.divide(total, count, out=np.zeros_like(total), where=has) if divide else total
    return np.where(has, data, 0.0), has.any(axis=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("operation", ["Mean", "Sum"])
def test_mean_and_sum_match_the_reference(dtype: type, operation: str) -> None:
    blocks = _blocks(dtype, 7)
    out = compose(blocks, operation, 3, 16, 24)  # type: ignore[arg-type]
    data, valid = _reference(blocks, divide=operation == "Mean")
    assert out.data.dtype == np.float64
    np.testing.assert_array_equal(out.valid, valid)
    np.testing.assert_allclose(out.data, data, rtol=1e-12)


@pytest.mark.parametrize("operation", ["First", "Last", "Min", "Max", "Mean", "Sum", "Blend"])
def test_fed_blocks_are_left_untouched(operation: str) -> None:
    blocks = _blocks(np.uint8, 3)
    before = [(b.data.copy(), b.valid.copy()) for b in blocks]
    compose(blocks, operation, 3, 16, 24)  # type: ignore[arg-type]
    for block, (data, valid) in zip(blocks, before, strict=True):
        np.testing.assert_array_equal(block.data, data)
        np.testing.assert_array_equal(block.valid, valid)
