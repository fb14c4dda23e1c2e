"""Composition root: adapters from settings, the FastAPI application and its lifespan.

``build_context(settings)`` opens the catalog, job and user stores and builds the raster
adapters, the event bus, the service registry, the publisher, the image exporter, the token
signer (server secret in the data folder), the refresher, the job runner and the watch rules
(``watch_config``) into one :class:`AppContext`. ``create_app(settings)`` wires the REST layer
on top, with the notification hub on ``app.state.notify_hub``. The lifespan loads every
service's published snapshot, starts the event bus, the notification hub, the job runner, the
ingest pipeline (kept on the context for the HTTP ingest endpoint) and the folder watcher when
there are rules, the snapshot poller and the export-output cleaner, and stops them on
shutdown. GDAL work runs on the context's bounded thread pool, never on the event loop.

Events (:mod:`livemosaic.core.events`) go over the bus named by ``event_bus``: the registry
announces each swap (the notification hub listens), the publisher announces each stored
snapshot and the snapshot follower of every other process installs it. The poller swaps in
snapshots other processes stored while the bus does not bring their events: always with the
local bus (every process serves a refresh within ``snapshot_poll_seconds``), with PostgreSQL
only while its connection is lost (and once more when it is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import APIRouter, FastAPI

from livemosaic import __version__
from livemosaic.adapters.events import open_event_bus
from livemosaic.adapters.jobs.runner import JobRunner
from livemosaic.adapters.watch import FolderWatcher, build_pipeline
from livemosaic.context import AppContext as AppContext
from livemosaic.core.admission import MemoryGate
from livemosaic.core.export import ExportLimits, ImageExporter
from livemosaic.core.follow import SnapshotFollower, announce_swaps
from livemosaic.core.pipeline import IngestPipeline, InProcessRefresh
from livemosaic.core.publishing import Publisher
from livemosaic.core.refresh import Refresher
from livemosaic.core.registry import ServiceRegistry
from livemosaic.core.security import ANONYMOUS, Principal, TokenSigner
from livemosaic.core.signin import SigninThrottle
from livemosaic.core.watch_rules import check_rules, load_rules
from livemosaic.errors import LiveMosaicError, TokenInvalid
from livemosaic.rest.auth import Caller, authenticate, can_read_service
from livemosaic.rest.errors import install_error_handlers
from livemosaic.rest.middleware import install_middleware
from livemosaic.rest.notify_hub import Authorizer, Credentials, NotificationHub, TokenCheck
from livemosaic.rest.refresh_wire import GP_JOBS
from livemosaic.rest.routes import include_routers
from livemosaic.settings import MIB, Settings, physical_memory_bytes

log = logging.getLogger("livemosaic")

# threads beyond read_threads for light blocking work (parsing, catalog queries, output files),
# so that requests waiting for admission are never stuck behind the admitted image work
LIGHT_THREADS = 2
GP_SERVICE = ("System", "PublishingTools", "GPServer")


def configure_gdal(settings: Settings) -> None:
    """Size GDAL's block cache (honoured when set before GDAL reads its first raster)."""
    os.environ.setdefault("GDAL_CACHEMAX", str(settings.gdal_cache_mb))


def build_context(settings: Settings) -> AppContext:
    """Open the stores and build adapters, registry, publisher, exporter, tokens and jobs."""
    from livemosaic.adapters.catalog import open_stores
    from livemosaic.adapters.raster import RasterEncoder, RasterioProjector, RasterioSource
    from livemosaic.adapters.raster.crs import keep_thread_env
    from livemosaic.adapters.secret import load_or_create_secret

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    configure_gdal(settings)
    stores = open_stores(settings.effective_catalog_url)
    catalog = stores.catalog
    source = RasterioSource(
        settings.data_folders,
        object_store_prefixes=settings.object_store_prefixes,
        object_store_timeout_seconds=settings.object_store_timeout_seconds,
    )
    projector = RasterioProjector()
    encoder = RasterEncoder()
    registry = ServiceRegistry()
    events = open_event_bus(
        settings.event_bus,
        catalog_url=settings.effective_catalog_url,
        channel=settings.event_channel,
    )
    announce_swaps(registry, events)
    follower = SnapshotFollower(catalog, registry, events)
    follower.start()
    publisher = Publisher(catalog, registry, projector, events=events)
    limits = ExportLimits(
        max_width=settings.max_image_width,
        max_height=settings.max_image_height,
        max_items=settings.max_mosaic_image_count,
        max_request_bytes=min(settings.request_memory_mb * MIB, settings.memory_budget_bytes),
    )
    exporter = ImageExporter(catalog, source, projector, encoder, limits)
    executor = ThreadPoolExecutor(
        max_workers=max(1, settings.read_threads) + LIGHT_THREADS,
        thread_name_prefix="livemosaic-read",
        initializer=keep_thread_env,
    )
    refresher = Refresher(catalog, publisher)
    runner = JobRunner(
        stores.jobs, refresher, GP_JOBS, retention_seconds=settings.job_retention_hours * 3600
    )
    rules = load_rules(settings.watch_config) if settings.watch_config else []
    return AppContext(
        settings=settings,
        catalog=catalog,
        source=source,
        projector=projector,
        encoder=encoder,
        registry=registry,
        publisher=publisher,
        exporter=exporter,
        executor=executor,
        gate=admission_gate(settings),
        jobs=stores.jobs,
        users=stores.users,
        journal=stores.journal,
        signer=TokenSigner(load_or_create_secret(settings.data_dir)),
        refresher=refresher,
        throttle=SigninThrottle(
            stores.signins, settings.signin_max_failures, settings.signin_window_seconds
        ),
        runner=runner,
        watch_rules=rules,
        extra_services=[GP_SERVICE],
        events=events,
        follower=follower,
    )


def _notify_principal(ctx: AppContext, credentials: Credentials) -> Principal:
    """The principal of a notification client, by the same check as an HTTP request."""
    if credentials.token is None:
        return ANONYMOUS
    if not isinstance(credentials.caller, Caller):
        raise TokenInvalid("The token was presented without a connection to check it against.")
    return authenticate(ctx, credentials.token, credentials.caller)


def admission_gate(settings: Settings) -> MemoryGate:
    """The memory-weighted admission gate of a server process (core.admission): the memory
    budget, one slot per read thread, the bounded queue. A budget that, with GDAL's cache,
    passes half the machine's memory is allowed but logged."""
    worst = settings.memory_budget_bytes + settings.gdal_cache_mb * MIB
    machine = physical_memory_bytes()
    if worst > machine // 2:
        log.warning(
            "memory_budget_mb (%d MiB) and gdal_cache_mb (%d MiB) allow one server process "
            "more than half of this machine's %d MiB; with several workers, each has its own.",
            settings.memory_budget_bytes // MIB,
            settings.gdal_cache_mb,
            machine // MIB,
        )
    return MemoryGate(
        settings.memory_budget_bytes,
        max(1, settings.read_threads),
        max_waiting=settings.max_waiting_requests,
        wait_seconds=settings.admission_wait_seconds,
        retry_after_seconds=settings.busy_retry_after_seconds,
    )


def notify_authorizer(ctx: AppContext) -> Authorizer:
    """Who may follow a service over the notification WebSocket: anyone for a public service;
    for a secured one, a token that passes :func:`~livemosaic.rest.auth.authenticate` (IP and
    referer binding of the handshake included) of a user who may read it, as over HTTP."""

    def authorize(credentials: Credentials, key: str) -> bool:
        folder, _, name = key.rpartition("/")
        snapshot = ctx.registry.find(folder, name)
        if snapshot is None:
            return False
        if not snapshot.definition.private:
            return True
        try:
            principal = _notify_principal(ctx, credentials)
        except LiveMosaicError:
            return False
        return can_read_service(principal, snapshot.definition)

    return authorize


def notify_token_check(ctx: AppContext) -> TokenCheck:
    """Why a notification client's token is not good now (expired, revoked, bound elsewhere)."""

    def check(credentials: Credentials) -> str | None:
        try:
            _notify_principal(ctx, credentials)
        except LiveMosaicError as exc:
            return exc.reason
        return None

    return check


def notification_hub(ctx: AppContext) -> NotificationHub:
    """The notification hub of a server, sized by the settings."""
    return NotificationHub(
        ctx.registry,
        events=ctx.events,
        authorize=notify_authorizer(ctx),
        check_token=notify_token_check(ctx),
        token_check_seconds=ctx.settings.notify_token_check_seconds,
        queue_size=ctx.settings.notify_queue_size,
        heartbeat_seconds=ctx.settings.notify_heartbeat_seconds,
        max_lag_seconds=ctx.settings.notify_max_lag_seconds,
    )


def start_ingest(ctx: AppContext, loop: asyncio.AbstractEventLoop) -> IngestPipeline:
    """Build the in-process ingest pipeline: refresh jobs go to the job store and wake the
    runner on ``loop`` at once."""
    runner = ctx.runner

    def wake() -> None:
        if runner is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the runner is gone
                loop.call_soon_threadsafe(runner.wake)

    trigger = InProcessRefresh(ctx.jobs, GP_JOBS, wake, owner="watcher")
    ctx.pipeline = build_pipeline(
        ctx.catalog,
        ctx.journal,
        ctx.source,
        ctx.settings.data_folders,
        trigger,
        ctx.registry,
        ctx.events,
    )
    return ctx.pipeline


def purge_outputs(output_dir: Path, ttl_seconds: float, now: float | None = None) -> int:
    """Delete export outputs older than ``ttl_seconds`` (and emptied folders); returns how many."""
    if not output_dir.is_dir():
        return 0
    limit = (time.time() if now is None else now) - ttl_seconds
    removed = 0
    for root, _dirs, files in os.walk(output_dir, topdown=False):
        for name in files:
            path = Path(root) / name
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        if Path(root) != output_dir:
            with contextlib.suppress(OSError):
                Path(root).rmdir()  # only succeeds when empty
    return removed


async def _cleanup_loop(ctx: AppContext) -> None:
    ttl = max(1.0, float(ctx.settings.output_ttl_seconds))
    period = max(1.0, min(60.0, ttl / 4))
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(purge_outputs, ctx.settings.output_dir, ttl)
        except Exception:  # the cleaner must never stop; the cause goes to the log
            log.exception("cleaning export outputs failed")


async def _snapshot_poller(ctx: AppContext, follower: SnapshotFollower) -> None:
    """Follow other processes' snapshots by polling while the bus does not bring their
    events (always with the local bus; with PostgreSQL, while its connection is lost)."""
    period = float(ctx.settings.snapshot_poll_seconds)
    while True:
        await asyncio.sleep(period)
        if ctx.events.connected:
            continue
        try:
            await asyncio.to_thread(follower.sync_all)
        except Exception:  # the poller must never stop; the cause goes to the log
            log.exception("reading published snapshot versions failed")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def freeze_startup_objects() -> None:
    """Keep what start-up built out of the cyclic collector's full passes: it lives as long
    as the server, and a full pass over it (about 100k objects) held the GIL for 40-60 ms,
    once or twice per thousand small requests, which showed as their p99. Garbage is
    collected first, so only live objects are frozen; the lifespan unfreezes them on stop."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load snapshots; start notifications, the job runner, the ingest pipeline and folder
    watcher, the snapshot poller and the output cleaner; stop all."""
    ctx: AppContext = app.state.ctx
    problems = await asyncio.to_thread(ctx.publisher.load_all)
    for problem in problems:
        log.warning("service: %s", problem)
    hub: NotificationHub | None = getattr(app.state, "notify_hub", None)
    if hub is not None:
        hub.start()
    if ctx.runner is not None:
        await ctx.runner.start()
    await asyncio.to_thread(ctx.events.start)  # catches up once connected (on_gap)
    cleaner = asyncio.create_task(_cleanup_loop(ctx), name="livemosaic-output-cleaner")
    poller: asyncio.Task[None] | None = None
    if ctx.follower is not None:
        poller = asyncio.create_task(
            _snapshot_poller(ctx, ctx.follower), name="livemosaic-snapshot-poller"
        )
    try:
        try:
            pipeline = start_ingest(ctx, asyncio.get_running_loop())
        except LiveMosaicError as exc:  # e.g. a catalog store without an ingest journal
            if ctx.watch_rules:
                raise
            log.warning("no ingest pipeline (HTTP ingest unavailable): %s", exc)
        if ctx.watch_rules:  # a bad rule fails the start-up, after stopping what started
            check_rules(ctx.watch_rules)
            watcher = FolderWatcher(ctx.watch_rules, pipeline)
            await watcher.start_async()
            ctx.watcher = watcher
            names = ", ".join(f"{r.folder} -> {r.dataset}" for r in ctx.watch_rules)
            log.info("watching %d folder(s): %s", len(ctx.watch_rules), names)
        freeze_startup_objects()
        yield
    finally:
        gc.unfreeze()
        if ctx.watcher is not None:
            await ctx.watcher.stop_async()  # a batch being ingested is finished first
            ctx.watcher = None
        if poller is not None:
            await _stop(poller)
        await _stop(cleaner)
        if ctx.runner is not None:
            await ctx.runner.stop()
        if hub is not None:
            await hub.stop()
        await asyncio.to_thread(ctx.close)


def create_app(
    settings: Settings,
    context: AppContext | None = None,
    *,
    extra_routers: tuple[APIRouter, ...] = (),
) -> FastAPI:
    """The livemosaic ASGI application (``context`` defaults to ``build_context(settings)``)."""
    ctx = context if context is not None else build_context(settings)
    app = FastAPI(
        title="livemosaic",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    app.state.settings = settings  # presentation settings of this app (status policy, root, CORS)
    app.state.notify_hub = notification_hub(ctx)  # started by the lifespan
    install_error_handlers(app)
    include_routers(app, settings.root, extra_routers)
    install_middleware(
        app, cors_origins=settings.cors_origins, max_body_bytes=settings.max_request_body_bytes
    )
    return app


def app_from_env() -> FastAPI:
    """The application from environment settings (``serve --workers N`` worker processes)."""
    return create_app(Settings())


__all__ = [
    "AppContext",
    "app_from_env",
    "admission_gate",
    "build_context",
    "configure_gdal",
    "freeze_startup_objects",
    "create_app",
    "lifespan",
    "notification_hub",
    "notify_authorizer",
    "notify_token_check",
    "purge_outputs",
    "start_ingest",
]
