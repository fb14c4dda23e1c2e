"""Mosaic operators: how overlapping valid pixels of several items combine (MT_FIRST … MT_SUM).

A :class:`Compositor` is fed item blocks in priority order (highest first), all on the same
output grid, and yields one block. ``First`` reports :attr:`Compositor.done` as soon as every
output pixel is filled, so the caller can stop reading items. Items with fewer bands than the
output contribute nothing to the missing bands (those bands are invalid for them).

Data types: First, Last, Min and Max keep the items' dtype (promoted with
``numpy.result_type`` when items differ); Mean, Sum and Blend accumulate and return float64.

Blend (a livemosaic choice, spec 7.4.2): a weighted mean of the overlapping valid pixels where
an item's weight at a pixel is the distance, in map units, from the pixel centre to the
nearest edge of the item's extent (see :func:`edge_weights`). Weights depend only on
geometry, never on the request window, so adjacent tiles blend seamlessly. Without a weight
a block counts with weight 1 (plain mean).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from livemosaic.core.models import Extent
from livemosaic.core.mosaic_rules import MosaicOperation
from livemosaic.core.ports import PixelBlock

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_MIN_WEIGHT = 1e-12


def _band_view(block: PixelBlock, bands: int) -> tuple[npt.NDArray[np.generic], BoolArray]:
    """Data padded/truncated to ``bands`` bands and a per-band validity mask.

    NaN values of float data are invalid in their band whatever the block mask says.
    """
    data = block.data
    have = data.shape[0]
    rows, cols = block.valid.shape
    if have > bands:
        data = data[:bands]
        have = bands
    floating = np.issubdtype(data.dtype, np.floating)
    if have == bands and not floating:
        # every band valid where the block is: a read-only view, no (bands, rows, cols) copy
        return data, np.broadcast_to(block.valid, (bands, rows, cols))
    bvalid = np.zeros((bands, rows, cols), dtype=bool)
    bvalid[:have] = block.valid[None, :, :]
    if have < bands:
        pad = np.zeros((bands - have, rows, cols), dtype=data.dtype)
        data = np.concatenate([data, pad], axis=0)
    if floating:
        bvalid &= ~np.isnan(data)
    return data, bvalid


def _any_band(bvalid: BoolArray) -> BoolArray:
    """Pixels valid in at least one band (the block mask itself when ``bvalid`` is its view)."""
    if bvalid.strides[0] == 0:
        return np.asarray(bvalid[0], dtype=bool)
    return np.asarray(bvalid.any(axis=0), dtype=bool)


class Compositor:
    """Combines item blocks fed in priority order into one block."""

    def __init__(self, bands: int, rows: int, cols: int) -> None:
        self.bands = max(int(bands), 1)
        self.rows = int(rows)
        self.cols = int(cols)
        self.band_names: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        """True when further items cannot change the result."""
        return False

    def feed(
        self, block: PixelBlock, weight: FloatArray | None = None, *, owned: bool = False
    ) -> bool:
        """Add the next item's block; True when it contributed at least one pixel.

        ``owned``: the block is the caller's to give away (a fresh read), so the compositor
        may keep its arrays and write into them instead of copying them."""
        if block.valid.shape != (self.rows, self.cols):
            raise ValueError(
                f"block of {block.valid.shape} pixels fed to a {self.rows}x{self.cols} mosaic"
            )
        data, bvalid = _band_view(block, self.bands)
        if not self.band_names and len(block.band_names) == self.bands:
            self.band_names = block.band_names
        return self._feed(data, bvalid, weight, owned and data is block.data)

    def _feed(
        self,
        data: npt.NDArray[np.generic],
        bvalid: BoolArray,
        weight: FloatArray | None,
        owned: bool,
    ) -> bool:
        raise NotImplementedError

    def result(self) -> PixelBlock:
        """The composed block (fully invalid when nothing was fed)."""
        raise NotImplementedError

    def _empty(self) -> PixelBlock:
        return PixelBlock(
            data=np.zeros((self.bands, self.rows, self.cols), dtype=np.uint8),
            valid=np.zeros((self.rows, self.cols), dtype=bool),
        )


def _promoted(acc: npt.NDArray[np.generic], dtype: np.dtype[np.generic]) -> npt.NDArray[np.generic]:
    """``acc`` in the type that also holds ``dtype`` (itself when it already does)."""
    if acc.dtype == dtype:
        return acc
    promoted = np.result_type(acc.dtype, dtype)
    return acc if promoted == acc.dtype else acc.astype(promoted)


class _TypedCompositor(Compositor):
    """Keeps one accumulator in the items' (promoted) dtype plus per-band validity."""

    def __init__(self, bands: int, rows: int, cols: int) -> None:
        super().__init__(bands, rows, cols)
        self.acc: npt.NDArray[np.generic] | None = None
        self.has = np.zeros((self.bands, self.rows, self.cols), dtype=bool)

    def _accumulator(self, dtype: np.dtype[np.generic]) -> npt.NDArray[np.generic]:
        if self.acc is None:
            self.acc = np.zeros((self.bands, self.rows, self.cols), dtype=dtype)
        else:
            self.acc = _promoted(self.acc, dtype)
        return self.acc

    def result(self) -> PixelBlock:
        """The composed block in the items' dtype (the accumulator itself, invalid values
        zeroed in place: no copy of the image is made; call once, after the last feed)."""
        if self.acc is None:
            return self._empty()
        valid = np.asarray(self.has.any(axis=0), dtype=bool)
        np.copyto(self.acc, np.zeros((), dtype=self.acc.dtype), where=~self.has)
        data, self.acc = self.acc, None
        return PixelBlock(data=data, valid=valid, band_names=self.band_names)


class FirstCompositor(Compositor):
    """MT_FIRST: the highest-priority item valid at a pixel supplies all its bands.

    The first item that contributes is taken as it is (its arrays kept when the block is
    ``owned``, else copied once), so the common image drawn by one item costs no
    compositing at all. Per-band validity is only kept once an item has bands valid where
    others are not (NaN in float data, or fewer bands); until then every band is valid
    exactly where ``filled`` is."""

    def __init__(self, bands: int, rows: int, cols: int) -> None:
        super().__init__(bands, rows, cols)
        self.acc: npt.NDArray[np.generic] | None = None
        self.has: BoolArray | None = None  # per-band validity, once bands differ
        self.filled: BoolArray | None = None
        self._full = False

    @property
    def done(self) -> bool:
        """True once every output pixel has a value."""
        return self._full

    def _feed(
        self,
        data: npt.NDArray[np.generic],
        bvalid: BoolArray,
        weight: FloatArray | None,
        owned: bool,
    ) -> bool:
        per_band = bvalid.strides[0] != 0
        if self.acc is None or self.filled is None:  # the first item: kept as it is (its
            valid = _any_band(bvalid)  # invalid pixels are zeroed by ``result``)
            if not valid.any():
                return False
            self.acc = data if owned and data.flags.writeable else data.copy()
            self.has = bvalid if per_band else None
            self.filled = valid
            self._full = bool(valid.all())
            return True
        take = _any_band(bvalid) & ~self.filled
        if not take.any():
            return False
        acc = self.acc = _promoted(self.acc, data.dtype)
        # np.copyto with a broadcast mask avoids materialising fancy-indexed copies
        np.copyto(acc, data, where=take[None], casting="unsafe")
        if per_band and self.has is None:
            self.has = np.array(np.broadcast_to(self.filled, acc.shape), dtype=bool)
        if self.has is not None:
            np.copyto(self.has, bvalid, where=take[None])
        self.filled = self.filled | take
        self._full = bool(self.filled.all())
        return True

    def result(self) -> PixelBlock:
        """The composed block (the first item's arrays themselves when it filled the image;
        invalid values zeroed in place; call once, after the last feed)."""
        if self.acc is None or self.filled is None:
            return self._empty()
        data, self.acc = self.acc, None
        invalid = None
        if self.has is not None:
            if not self.has.all():
                invalid = ~self.has
        elif not self._full:
            invalid = np.broadcast_to(~self.filled, data.shape)
        if invalid is not None:
            if not data.flags.writeable:
                data = data.copy()
            np.copyto(data, np.zeros((), dtype=data.dtype), where=invalid)
        valid = self.filled if self.filled.flags.writeable else self.filled.copy()
        return PixelBlock(data=data, valid=valid, band_names=self.band_names)


class LastCompositor(_TypedCompositor):
    """MT_LAST: the lowest-priority item valid at a pixel supplies all its bands."""

    def _feed(
        self,
        data: npt.NDArray[np.generic],
        bvalid: BoolArray,
        weight: FloatArray | None,
        owned: bool,
    ) -> bool:
        acc = self._accumulator(data.dtype)
        take = _any_band(bvalid)
        if not take.any():
            return False
        np.copyto(acc, data, where=take[None], casting="unsafe")
        np.copyto(self.has, bvalid, where=take[None])
        return True


class _ExtremeCompositor(_TypedCompositor):
    """Per band, keep the smallest (Min) or largest (Max) valid value."""

    keep_smaller = True

    def _feed(
        self,
        data: npt.NDArray[np.generic],
        bvalid: BoolArray,
        weight: FloatArray | None,
        owned: bool,
    ) -> bool:
        acc = self._accumulator(data.dtype)
        if not bvalid.any():
            return False
        better = np.less(data, acc) if self.keep_smaller else np.greater(data, acc)
        take = bvalid & (~self.has | better)
        acc[take] = data[take]
        self.has |= bvalid
        return True


class MinCompositor(_ExtremeCompositor):
    """MT_MIN: the smallest valid value of each band."""

    keep_smaller = True


class MaxCompositor(_ExtremeCompositor):
    """MT_MAX: the largest valid value of each band."""

    keep_smaller = False


class _WeightedCompositor(Compositor):
    """Float64 weighted sums per band; the result is sum (Sum) or sum / weights (Mean, Blend)."""

    divide = True
    use_weight = False

    def __init__(self, bands: int, rows: int, cols: int) -> None:
        super().__init__(bands, rows, cols)
        self.total = np.zeros((self.bands, self.rows, self.cols), dtype=np.float64)
        self.weights = np.zeros((self.bands, self.rows, self.cols), dtype=np.float64)

    def _feed(
        self,
        data: npt.NDArray[np.generic],
        bvalid: BoolArray,
        weight: FloatArray | None,
        owned: bool,
    ) -> bool:
        if not bvalid.any():
            return False
        if not (self.use_weight and weight is not None):
            # weight 1: add the valid values and count them, in place (no float64 temporaries)
            np.add(self.total, data, out=self.total, where=bvalid, casting="unsafe")
            np.add(self.weights, 1.0, out=self.weights, where=bvalid)
            return True
        w = np.maximum(np.asarray(weight, dtype=np.float64), _MIN_WEIGHT)[None, :, :]
        values = np.where(bvalid, data.astype(np.float64), 0.0)
        wmask = np.where(bvalid, w, 0.0)
        self.total += values * wmask
        self.weights += wmask
        return True

    def result(self) -> PixelBlock:
        """The composed block as float64."""
        has = self.weights > 0
        if self.divide:
            data = np.divide(self.total, self.weights, out=np.zeros_like(self.total), where=has)
        else:
            data = np.where(has, self.total, 0.0)
        valid = np.asarray(has.any(axis=0), dtype=bool)
        return PixelBlock(data=data, valid=valid, band_names=self.band_names)


class MeanCompositor(_WeightedCompositor):
    """MT_MEAN: the mean of the valid values of each band."""


class SumCompositor(_WeightedCompositor):
    """MT_SUM: the sum of the valid values of each band."""

    divide = False


class BlendCompositor(_WeightedCompositor):
    """MT_BLEND: a mean weighted by each item's distance-to-edge weights."""

    use_weight = True


_COMPOSITORS: dict[str, type[Compositor]] = {
    "First": FirstCompositor,
    "Last": LastCompositor,
    "Min": MinCompositor,
    "Max": MaxCompositor,
    "Mean": MeanCompositor,
    "Sum": SumCompositor,
    "Blend": BlendCompositor,
}


def make_compositor(operation: MosaicOperation, bands: int, rows: int, cols: int) -> Compositor:
    """The compositor of a mosaic operation for a bands x rows x cols output."""
    return _COMPOSITORS[operation](bands, rows, cols)


def compose(
    blocks: Iterable[PixelBlock | None],
    operation: MosaicOperation,
    bands: int,
    rows: int,
    cols: int,
) -> PixelBlock:
    """Compose blocks given in priority order (None entries are skipped)."""
    comp = make_compositor(operation, bands, rows, cols)
    for block in blocks:
        if comp.done:
            break
        if block is not None:
            comp.feed(block)
    return comp.result()


def compose_point(
    parts: Sequence[tuple[Extent, PixelBlock]],
    operation: MosaicOperation,
    point: tuple[float, float],
) -> tuple[PixelBlock | None, int]:
    """Compose 1x1 blocks at a point, given in priority order with their items' extents.

    Returns the composed block (None when ``parts`` is empty) and the index of the part
    that supplied the value (First: the first part; Last: the last; otherwise the first).
    """
    if not parts:
        return None, -1
    order = list(range(len(parts)))
    op = operation
    if op == "Last":
        order.reverse()
        op = "First"
    bands = max(block.data.shape[0] for _, block in parts)
    comp = make_compositor(op, bands, 1, 1)
    cell = Extent(point[0], point[1], point[0], point[1])
    for i in order:
        extent, block = parts[i]
        weight = edge_weights(extent, cell, 1, 1) if op == "Blend" else None
        comp.feed(block, weight)
    return comp.result(), order[0]


def pixel_centers(grid: Extent, rows: int, cols: int) -> tuple[FloatArray, FloatArray]:
    """x of each column centre and y of each row centre (row 0 at the top) of a grid."""
    dx = grid.width / cols
    dy = grid.height / rows
    xs = grid.xmin + (np.arange(cols, dtype=np.float64) + 0.5) * dx
    ys = grid.ymax - (np.arange(rows, dtype=np.float64) + 0.5) * dy
    return xs, ys


def edge_weights(item_extent: Extent, grid: Extent, rows: int, cols: int) -> FloatArray:
    """Blend weights: distance from each pixel centre to the nearest edge of ``item_extent``.

    Both extents are in the same CRS; pixels outside the item get weight 0.
    """
    xs, ys = pixel_centers(grid, rows, cols)
    dxs = np.minimum(xs - item_extent.xmin, item_extent.xmax - xs)
    dys = np.minimum(ys - item_extent.ymin, item_extent.ymax - ys)
    dist = np.minimum(dys[:, None], dxs[None, :])
    return np.clip(dist, 0.0, None)


__all__ = [
    "BlendCompositor",
    "Compositor",
    "FirstCompositor",
    "LastCompositor",
    "MaxCompositor",
    "MeanCompositor",
    "MinCompositor",
    "SumCompositor",
    "compose",
    "compose_point",
    "edge_weights",
    "make_compositor",
    "pixel_centers",
]
