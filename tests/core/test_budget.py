"""The memory estimate (core.budget), the admission gate (core.admission) and cooperative
cancellation (core.cancel) of image work."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from livemosaic.core.admission import MemoryGate
from livemosaic.core.budget import FIXED_BYTES, MIB, ExportShape, export_bytes, stage_bytes
from livemosaic.core.cancel import CancelToken
from livemosaic.core.export import ExportLimits, ExportRequest, ImageExporter
from livemosaic.core.models import Extent
from livemosaic.core.mosaic_rules import MosaicRule
from livemosaic.errors import LimitExceeded, RequestCancelled, ServerBusy
from tests.core.fakes import CRS, World, make_item

ISSUE_PIXELS = 15000 * 4100  # the largest documented image size


def shape(**kw):
    values = {
        "rows": 4100,
        "cols": 15000,
        "bands": 3,
        "item_dtype": np.dtype(np.uint8),
        "operation": "First",
        "out_bands": 3,
        "out_dtype": None,
        "format": "tiff",
    }
    values.update(kw)
    return ExportShape(**values)


# --- the estimate -----------------------------------------------------------------------------


def test_the_issue_request_is_estimated_stage_by_stage():
    # 8-bit RGB items, First, pixelType=F64, GeoTIFF, 15000 x 4100
    s = shape(out_dtype=np.dtype(np.float64))
    assert stage_bytes(s) == {
        "compose": 7 + 9 + 6,  # accumulator + masks, item block, feed temporaries
        "result": 7 + 3 + 1,
        "finish": 4 + 24,  # the composed block and its float64 cast
        "encode": 25 + 48 + 8,  # final block, compressed file twice, one band's copy
    }
    assert export_bytes(s) == FIXED_BYTES + ISSUE_PIXELS * 81
    assert export_bytes(s) // MIB == 4814  # measured by bench/memory_bench.py: 2825 MiB added


def test_the_largest_8bit_image_fits_the_default_request_limit():
    png = shape(eight_bit=True, format="png")
    assert stage_bytes(png) == {"compose": 22, "result": 11, "finish": 4, "encode": 4 + 20}
    assert export_bytes(png) == FIXED_BYTES + ISSUE_PIXELS * 24
    assert export_bytes(png) < 1536 * MIB  # request_memory_mb's default
    f64 = shape(out_dtype=np.dtype(np.float64))
    assert export_bytes(f64) > 1536 * MIB


def test_float_accumulation_lower_types_and_fewer_bands_cost_what_the_code_allocates():
    first = export_bytes(shape())
    mean = export_bytes(shape(operation="Mean"))
    assert stage_bytes(shape(operation="Mean"))["compose"] == 16 * 3 + 9 + 6 + 32 * 3
    assert mean > 4 * first
    # a pixel type that cannot hold every value is converted through float64 copies
    f32_from_f64 = shape(item_dtype=np.dtype(np.float64), out_dtype=np.dtype(np.float32))
    assert stage_bytes(f32_from_f64)["finish"] == 3 * 8 + 1 + 3 * (24 + 4)
    one_band = shape(out_dtype=np.dtype(np.float64), out_bands=1, band_selection=True)
    assert export_bytes(one_band) < export_bytes(shape(out_dtype=np.dtype(np.float64)))
    u16 = shape(out_dtype=np.dtype(np.uint16))
    assert export_bytes(u16) < export_bytes(shape(out_dtype=np.dtype(np.float64)))
    assert export_bytes(shape(rows=0, cols=0)) == FIXED_BYTES


@pytest.fixture
def world():
    return World()


def exporter(world, **limits):
    return ImageExporter(
        world.catalog, world.source, world.projector, world.encoder, ExportLimits(**limits)
    )


def three_items(world, bands=3):
    for oid in (1, 2, 3):
        world.add(make_item(oid, 0, 400, 400, 400, bands=bands), np.full((bands, 400, 400), oid))


def big_request(**kw):
    kw.setdefault("format", "tiff")
    return ExportRequest(Extent(0, 0, 400, 400), CRS, 4000, 4000, **kw)


def test_over_the_request_limit_is_refused_before_any_read(world: World):
    three_items(world)
    ex = exporter(world, max_width=15000, max_height=15000, max_request_bytes=512 * MIB)
    snap = world.snapshot()
    request = big_request(pixel_type="F64")
    need = ex.memory_estimate(snap, request)
    assert need == export_bytes(ex.export_shape(snap, request)) > 512 * MIB
    with pytest.raises(LimitExceeded) as err:
        ex.export(snap, request)
    assert world.source.reads == []
    text = str(err.value)
    assert "4000x4000 pixels of 3 band(s) as F64" in text
    assert "the limit per request is 512 MiB" in text
    assert "smaller pixelType" in text and "bandIds" in text
    # the size the message suggests does fit
    fit = text.split("about ")[2].split(" pixels fits")[0]
    w, h = (int(v) for v in fit.split("x"))
    smaller = ExportRequest(Extent(0, 0, 400, 400), CRS, w, h, format="tiff", pixel_type="F64")
    assert ex.check_memory(snap, smaller) <= 512 * MIB
    # and so does a smaller pixel type at the same size; fewer bands need less
    assert ex.check_memory(snap, big_request(pixel_type="U8")) <= 512 * MIB
    one_band = ex.memory_estimate(snap, big_request(pixel_type="F64", band_ids=(0,)))
    assert one_band < need - 256 * MIB


def test_point_operations_have_a_budget_too(world: World):
    three_items(world, bands=1)
    ex = exporter(world, max_request_bytes=FIXED_BYTES + 1000 * 20 * 3000)
    snap = world.snapshot()
    assert ex.check_points(snap, 1000) < ex.limits.max_request_bytes
    with pytest.raises(LimitExceeded, match="fewer points"):
        ex.check_points(snap, 2000)


# --- cancellation -------------------------------------------------------------------------------


class CancellingSource:
    """The fake source, cancelling a token once ``after`` items were read."""

    def __init__(self, world: World, token: CancelToken, after: int) -> None:
        self.inner, self.token, self.after = world.source, token, after

    def read(self, item, request):
        block = self.inner.read(item, request)
        if len(self.inner.reads) >= self.after:
            self.token.cancel("the client disconnected")
        return block


def test_cancelled_work_stops_between_item_reads(world: World):
    three_items(world)
    token = CancelToken()
    ex = exporter(world)
    ex.source = CancellingSource(world, token, after=1)  # type: ignore[assignment]
    request = big_request(mosaic_rule=MosaicRule(method="None", operation="Mean"))
    with pytest.raises(RequestCancelled, match="client disconnected"):
        ex.export(world.snapshot(), request, token)
    assert world.source.reads == [1]  # items 2 and 3 were never read
    assert world.encoder.blocks == []  # nothing was encoded


def test_a_passed_deadline_stops_work_with_a_504():
    token = CancelToken.after(0.0)
    time.sleep(0.01)
    with pytest.raises(RequestCancelled) as err:
        token.check()
    assert err.value.code == 504
    assert "limit of 0 seconds" in str(err.value)
    assert CancelToken.after(60).reason is None


def test_work_is_checked_before_encoding(world: World):
    world.add(make_item(1, 0, 4, 4, 4), np.ones((1, 4, 4), dtype=np.uint8))
    token = CancelToken()

    class CancelOnRead:
        def read(self, item, request):
            token.cancel("stop")
            return world.source.read(item, request)

    ex = exporter(world)
    ex.source = CancelOnRead()  # type: ignore[assignment]
    with pytest.raises(RequestCancelled):
        ex.export(world.snapshot(), ExportRequest(Extent(0, 0, 4, 4), CRS, 4, 4), token)
    assert world.encoder.blocks == []


# --- the admission gate --------------------------------------------------------------------------


def gate(budget=1000, slots=4, waiting=8, wait=1.0):
    return MemoryGate(budget, slots, max_waiting=waiting, wait_seconds=wait, retry_after_seconds=7)


def test_the_gate_admits_while_the_budget_has_room_and_queues_the_rest():
    async def run():
        g = gate(budget=1000)
        a = await g.acquire(600)
        b = await g.acquire(400)
        assert (g.in_use, g.running) == (1000, 2)
        waiter = asyncio.create_task(g.acquire(300))
        await asyncio.sleep(0.05)
        assert g.waiting == 1 and not waiter.done()
        a.release()
        c = await asyncio.wait_for(waiter, 1)
        assert (g.in_use, g.running, g.waiting) == (700, 2, 0)
        a.release()  # a second release changes nothing
        assert g.in_use == 700
        b.release()
        c.release()
        assert (g.in_use, g.running, g.peak_in_use) == (0, 0, 1000)

    asyncio.run(run())


def test_no_room_within_the_wait_is_a_503_with_retry_after():
    async def run():
        g = gate(budget=1000, wait=0.2)
        held = await g.acquire(900)
        started = time.monotonic()
        with pytest.raises(ServerBusy) as err:
            await g.acquire(200)
        assert 0.15 <= time.monotonic() - started < 5
        assert err.value.code == 503 and err.value.retry_after == 7
        assert "within 0.2 seconds" in str(err.value)
        assert g.waiting == 0 and g.refused == 1
        held.release()
        (await g.acquire(1000)).release()

    asyncio.run(run())


def test_a_full_queue_is_refused_at_once():
    async def run():
        g = gate(budget=100, waiting=2, wait=5)
        held = await g.acquire(100)
        waiters = [asyncio.create_task(g.acquire(50)) for _ in range(2)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(ServerBusy, match="2 are waiting"):
            await g.acquire(1)
        assert time.monotonic() - started < 1
        held.release()
        for permit in await asyncio.gather(*waiters):
            permit.release()
        assert g.in_use == 0

    asyncio.run(run())


def test_slots_bound_concurrency_and_the_queue_is_first_come_first_served():
    async def run():
        g = gate(budget=1000, slots=1)
        first = await g.acquire(1)
        big = asyncio.create_task(g.acquire(900))
        await asyncio.sleep(0.01)
        small = asyncio.create_task(g.acquire(1))
        await asyncio.sleep(0.05)
        assert not big.done() and not small.done()  # one slot only
        first.release()
        permit = await asyncio.wait_for(big, 1)
        assert not small.done()  # the small one does not overtake
        permit.release()
        (await asyncio.wait_for(small, 1)).release()

    asyncio.run(run())


def test_a_weight_above_the_budget_runs_alone():
    async def run():
        g = gate(budget=1000)
        permit = await g.acquire(5000)
        assert g.in_use == 1000
        permit.release()

    asyncio.run(run())


def test_release_from_a_worker_thread_wakes_the_queue():
    async def run():
        g = gate(budget=100)
        held = await g.acquire(100)
        waiter = asyncio.create_task(g.acquire(100))
        await asyncio.sleep(0.01)
        threading.Thread(target=held.release).start()
        (await asyncio.wait_for(waiter, 2)).release()
        assert g.in_use == 0

    asyncio.run(run())


def test_a_waiter_that_gives_up_leaves_the_queue():
    async def run():
        g = gate(budget=100, wait=5)
        held = await g.acquire(100)
        waiter = asyncio.create_task(g.acquire(100))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert g.waiting == 0
        held.release()
        assert (g.in_use, g.running) == (0, 0)

    asyncio.run(run())


def test_a_finished_request_keeps_only_its_answer_until_it_is_sent():
    async def run():
        g = gate(budget=1000, slots=1)
        permit = await g.acquire(800)
        permit.keep(50)  # the work is done; a 50-byte answer is still to be sent
        assert (g.in_use, g.running) == (50, 0)
        other = await asyncio.wait_for(g.acquire(900), 1)  # the slot and the bytes are free
        permit.release()
        other.release()
        assert (g.in_use, g.running) == (0, 0)
        assert permit.released

    asyncio.run(run())
