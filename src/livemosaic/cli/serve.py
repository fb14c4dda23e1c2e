"""``livemosaic init``, ``config`` and ``serve``: set up a data folder and run the server."""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import click

from livemosaic.adapters.secret import load_or_create_secret
from livemosaic.cli.context import CliState, echo_json, fail, pass_state
from livemosaic.cli.users import administrators, ensure_first_admin, user_store
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.watch_rules import WatchRule, check_rules
from livemosaic.errors import LiveMosaicError, NotFound
from livemosaic.settings import Settings, redact_url

if TYPE_CHECKING:
    from livemosaic.context import AppContext

DEMO_DATASET = "demo_landsat"
DEMO_SERVICE = ("Demo", "Landsat")
DEMO_INCOMING = "incoming"  # <data_dir>/incoming: watched into the demo service by serve --demo
DEMO_OWN_RASTERS = "rasters"  # <data_dir>/rasters: a data folder for your own first rasters
# Server processes by default; chosen by bench/concurrency_bench.py (docs/performance.md).
DEFAULT_WORKERS = 1
LOOPS = ("auto", "asyncio", "uvloop")
HTTP_PARSERS = ("auto", "h11", "httptools")


@click.command()
@pass_state
def init(state: CliState) -> None:
    """Create the data folder and an empty catalog (safe to run again)."""
    try:
        state.settings.data_dir.mkdir(parents=True, exist_ok=True)
        state.settings.output_dir.mkdir(parents=True, exist_ok=True)
        count = len(state.catalog.list_datasets())
        load_or_create_secret(state.settings.data_dir)
        users = user_store(state)
        admin = ensure_first_admin(
            users,
            username=os.environ.get("LIVEMOSAIC_ADMIN_USERNAME"),
            password=os.environ.get("LIVEMOSAIC_ADMIN_PASSWORD"),
            interactive=sys.stdin.isatty(),
        )
        has_admin = bool(administrators(users))
    except (LiveMosaicError, OSError) as exc:
        fail(str(exc))
    where = redact_url(state.settings.effective_catalog_url)
    click.echo(f"Catalog ready at {where} ({count} datasets).")
    if admin:
        click.echo(f"Administrator '{admin}' created.")
    elif not has_admin:
        click.echo(
            "No administrator yet: set LIVEMOSAIC_ADMIN_USERNAME and LIVEMOSAIC_ADMIN_PASSWORD and "
            "run init again, or `livemosaic user add NAME --role administrator`."
        )


@click.command()
@pass_state
def config(state: CliState) -> None:
    """Print the effective configuration (environment, .env and flags applied)."""
    values = state.settings.model_dump(mode="json")
    values["catalog_url"] = redact_url(state.settings.catalog_url)
    values["effective_catalog_url"] = redact_url(state.settings.effective_catalog_url)
    echo_json(values)


def demo_folders(settings: Settings) -> list[Path]:
    """The folders the demo registers as data folders: the demo rasters, the watched
    ``incoming`` folder and ``rasters``, for a user's own first rasters (all created when
    missing)."""
    folders = [(settings.data_dir / name).resolve() for name in ("demo", DEMO_OWN_RASTERS)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return [folders[0], demo_incoming(settings), folders[1]]


def install_demo(state: CliState) -> str:
    """Copy the bundled demo rasters into the data folder and publish Demo/Landsat (idempotent).

    Registers the demo folders as data folders of ``state`` first, so the raster reader and
    the ingestor both accept them.
    """
    folders = demo_folders(state.settings)
    demo_dir = folders[0]
    missing = [f for f in folders if f not in state.settings.data_folders]
    if missing:
        state.settings = state.settings.model_copy(
            update={"data_folders": [*state.settings.data_folders, *missing]}
        )
        state._source = None  # rebuilt for the new folders
    package = resources.files("livemosaic") / "demo"
    for entry in package.iterdir():
        if entry.name.endswith(".tif"):
            target = demo_dir / entry.name
            if not target.exists():
                with resources.as_file(entry) as src:
                    shutil.copyfile(src, target)
    ingestor = state.ingestor()
    try:
        state.catalog.get_dataset(DEMO_DATASET)
    except NotFound:
        ingestor.create_dataset(
            DEMO_DATASET, "EPSG:32618", description="Landsat 7 RGB demo mosaic (four tiles)"
        )
    report = ingestor.add_paths(DEMO_DATASET, [demo_dir], include=["*.tif"])
    folder, name = DEMO_SERVICE
    try:
        state.catalog.get_service(folder, name)
    except NotFound:
        state.publisher().publish(
            ServiceDefinition(
                name=name,
                folder=folder,
                dataset=DEMO_DATASET,
                description="Demo: Landsat 7 ETM+ RGB, four overlapping tiles (CC0, USGS).",
                copyright="USGS Landsat; sample data CC0 via the rasterio project",
                properties={"hasLiveData": "true"},
            )
        )
    return f"{folder}/{name} ({report.added} new items)"


def demo_incoming(settings: Settings) -> Path:
    """The demo's watched folder, ``<data_dir>/incoming`` (created when missing)."""
    folder = (settings.data_dir / DEMO_INCOMING).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def demo_watch_rule(folder: Path) -> WatchRule:
    """Rasters dropped into ``folder`` go into the demo dataset and refresh Demo/Landsat."""
    return WatchRule(
        folder=folder,
        dataset=DEMO_DATASET,
        service="/".join(DEMO_SERVICE),
        settle_seconds=1.0,
        batch_window_seconds=0.5,
    )


@click.command()
@click.option(
    "--host", default=None, help="Address to listen on (default from settings: 127.0.0.1)."
)
@click.option("--port", default=None, type=int, help="Port (default from settings: 8080).")
@click.option(
    "--demo",
    is_flag=True,
    help="Publish the bundled demo service Demo/Landsat first and watch <data-dir>/incoming "
    "into it.",
)
@click.option(
    "--watch",
    "watch_config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file of watch rules: watch these folders inside the server "
    "(env LIVEMOSAIC_WATCH_CONFIG; see docs/watching.md).",
)
@click.option(
    "--workers",
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Server processes sharing the catalog (see docs/performance.md for how many).",
)
@click.option(
    "--loop",
    type=click.Choice(LOOPS),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed (auto), or asyncio.",
)
@click.option(
    "--http",
    type=click.Choice(HTTP_PARSERS),
    default="auto",
    show_default=True,
    help="HTTP/1.1 parser: httptools when installed (auto), or h11.",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TLS certificate (PEM): serve HTTPS (env LIVEMOSAIC_SSL_CERTFILE).",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TLS private key (PEM) for --certfile (env LIVEMOSAIC_SSL_KEYFILE).",
)
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    demo: bool,
    watch_config: Path | None,
    workers: int,
    loop: str,
    http: str,
    log_level: str,
    certfile: Path | None,
    keyfile: Path | None,
) -> None:
    """Run the ArcGIS-compatible image server (HTTPS with --certfile and --keyfile).

    With --watch (or --demo) the server also watches folders and ingests what arrives.
    """
    import uvicorn

    settings = state.settings
    overrides: dict[str, object] = {}
    if watch_config:
        overrides["watch_config"] = watch_config.resolve()
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if certfile:
        overrides["ssl_certfile"] = certfile.resolve()
    if keyfile:
        overrides["ssl_keyfile"] = keyfile.resolve()
    _check_port_free(
        str(overrides.get("host", settings.host)), int(str(overrides.get("port", settings.port)))
    )
    if demo:
        try:
            published = install_demo(state)
        except LiveMosaicError as exc:
            fail(exc)
        click.echo(f"Demo service ready: {published}")
        settings = state.settings  # now with the demo folders registered
    settings = settings.model_copy(update=overrides)
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        fail("HTTPS needs both a certificate and its key: give --certfile and --keyfile.")
    if workers > 1 and settings.watch_config is not None:
        fail(
            "The server watches folders in one process only: use --workers 1, or run "
            "`livemosaic watch --config FILE --url URL` beside a multi-process server."
        )
    state.close()
    certfile_ = str(settings.ssl_certfile) if settings.ssl_certfile else None
    keyfile_ = str(settings.ssl_keyfile) if settings.ssl_keyfile else None
    if workers > 1:
        _announce(settings)
        if demo:
            click.echo("Note: with --workers > 1 the demo's incoming folder is not watched.")
        if settings.memory_budget_mb == 0:  # the automatic budget is shared by the workers
            share = settings.memory_budget_bytes // workers // (1024 * 1024)
            settings = settings.model_copy(update={"memory_budget_mb": max(1, share)})
        _export_env(settings)
        uvicorn.run(
            "livemosaic.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            loop=loop,
            http=http,
            log_level=log_level,
            proxy_headers=False,  # livemosaic judges forwarded headers (trusted_proxies)
            ssl_certfile=certfile_,
            ssl_keyfile=keyfile_,
        )
        return
    from livemosaic.app import create_app

    ctx = serving_context(settings, demo)
    _announce(settings)
    uvicorn.run(
        create_app(settings, ctx),
        host=settings.host,
        port=settings.port,
        loop=loop,
        http=http,
        log_level=log_level,
        proxy_headers=False,
        ssl_certfile=certfile_,
        ssl_keyfile=keyfile_,
    )


def _check_port_free(host: str, port: int) -> None:
    """Exit with a hint when another program already listens on ``host:port``.

    Checked before anything is printed or started, so that a second ``serve`` does not claim
    to serve and then die in the web server's start-up.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"Cannot listen on {host}:{port}: {exc.strerror}. Check --host.")
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
        try:
            probe.bind(address)
        except OSError as exc:
            fail(
                f"Cannot listen on {host}:{port}: {exc.strerror} (another livemosaic serve, or "
                "another program, is using it). Stop it, or pick a free port with --port N."
            )


def _announce(settings: Settings) -> None:
    scheme = "https" if settings.ssl_certfile else "http"
    click.echo(
        f"livemosaic serving {scheme}://{settings.host}:{settings.port}/{settings.root}"
        "/rest/services"
    )


def serving_context(settings: Settings, demo: bool) -> AppContext:
    """The server's context with its watch rules (the demo's too) checked; exits on errors.

    Checking here (folders exist and lie inside the data folders, services publish the
    watched datasets) turns a mistake into one error line instead of a failed start-up.
    """
    from livemosaic.adapters.watch import FolderWatcher, build_pipeline
    from livemosaic.app import build_context

    try:
        ctx = build_context(settings)  # reads the watch rules file
    except LiveMosaicError as exc:
        fail(exc)
    if demo:
        incoming = demo_incoming(settings)
        if not any(rule.folder == incoming for rule in ctx.watch_rules):
            ctx.watch_rules.append(demo_watch_rule(incoming))
    try:
        if ctx.watch_rules:
            check_rules(ctx.watch_rules)
            pipeline = build_pipeline(ctx.catalog, ctx.journal, ctx.source, settings.data_folders)
            FolderWatcher(ctx.watch_rules, pipeline).check()
    except LiveMosaicError as exc:
        ctx.close()
        fail(exc)
    for rule in ctx.watch_rules:
        target = f"dataset {rule.dataset}" + (f", service {rule.service}" if rule.service else "")
        click.echo(f"Watching {rule.folder} -> {target}")
    return ctx


def _export_env(settings: Settings) -> None:
    """Pass effective settings to worker processes through the environment."""
    import json
    import os

    for key, value in settings.model_dump(mode="json").items():
        env = f"LIVEMOSAIC_{key.upper()}"
        if value is None:
            os.environ.pop(env, None)
            continue
        if isinstance(value, list):
            os.environ[env] = (
                json.dumps(value)
                if key in ("cors_origins", "trusted_proxies")
                else ",".join(map(str, value))
            )
        else:
            os.environ[env] = str(value)


def demo_paths(settings: Settings) -> Path:
    """Where the demo rasters live inside a data folder."""
    return settings.data_dir / "demo"
