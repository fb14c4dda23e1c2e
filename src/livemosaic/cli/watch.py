"""``livemosaic watch``, ``add`` and ``quarantine``: the monitoring program on the command line.

``watch`` follows folders (rules from ``--config rules.toml`` and/or one rule from flags) until
SIGINT/SIGTERM, or catches up once with ``--once``. ``add`` pushes named files through the same
pipeline. Both write items into the catalog database themselves. Refreshes go to the server
named by ``--url`` (or ``LIVEMOSAIC_URL``) as Refresh Service jobs over its REST API, with a
publisher's token; without a URL they are written straight into the catalog database's job
table, where the job runner of a server on the same database picks them up. ``quarantine``
lists and clears the records of files that could not be ingested.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from livemosaic.cli.context import CliState, build_settings, echo_json, fail, pass_state
from livemosaic.cli.refresh import URL_ENV, credentials
from livemosaic.client import LiveMosaicClient, RemoteError
from livemosaic.core.pipeline import BatchReport, IngestPipeline, InProcessRefresh, RefreshTrigger
from livemosaic.core.ports import IngestJournal
from livemosaic.core.watch_rules import (
    DEFAULT_BATCH_QUIET_SECONDS,
    DEFAULT_BATCH_WINDOW_SECONDS,
    DEFAULT_RESCAN_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    WatchRule,
    check_rules,
    load_rules,
    rule_from_mapping,
)
from livemosaic.errors import LiveMosaicError


def _journal(state: CliState) -> IngestJournal:
    from livemosaic.adapters.catalog.journal import open_journal

    return open_journal(state.catalog)


def _trigger(state: CliState, server: dict[str, Any]) -> RefreshTrigger:
    """Refresh over HTTP when a server URL is configured, else straight into the job table."""
    url = server.get("url") or os.environ.get(URL_ENV)
    if not url:
        from livemosaic.adapters.catalog import job_store

        return InProcessRefresh(job_store(state.catalog))
    from livemosaic.adapters.watch.http_refresh import HttpRefresh

    user, password = credentials(server.get("username"), bool(server.get("password_stdin")))
    client = LiveMosaicClient(url, user, password, verify=not server.get("insecure"))
    state.extra.setdefault("clients", []).append(client)
    try:
        client.renew_if_needed()  # wrong credentials fail now, not at the first refresh
    except RemoteError as exc:
        if exc.code != 0:
            client.close()
            raise
        click.secho(f"Warning: {exc.reason}; refreshes wait until it answers.", err=True)
    return HttpRefresh(client)


def _pipeline(
    state: CliState, *, refresh: bool = True, server: dict[str, Any] | None = None
) -> IngestPipeline:
    """The ingest pipeline on the configured catalog, with the refresh trigger to use."""
    from livemosaic.adapters.watch import build_pipeline

    trigger = _trigger(state, server or {}) if refresh else None
    return build_pipeline(state.catalog, state.source, state.settings.data_folders, trigger)


def server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, ``--username``, ``--password-stdin``, ``--insecure``: refresh over HTTP."""
    options = [
        click.option(
            "--url",
            help="Server to ask for Refresh Service over HTTP (env LIVEMOSAIC_URL); without "
            "it, jobs go straight into the catalog database's job table.",
        ),
        click.option("--username", help="Publisher account for --url (env LIVEMOSAIC_USERNAME)."),
        click.option(
            "--password-stdin",
            is_flag=True,
            help="Read the password from standard input (else LIVEMOSAIC_PASSWORD or a prompt).",
        ),
        click.option("--insecure", is_flag=True, help="Do not verify the server's certificate."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _close_clients(state: CliState) -> None:
    """Close the HTTP clients opened for refreshes."""
    for client in state.extra.pop("clients", []):
        client.close()


def _server(flags: dict[str, Any]) -> dict[str, Any]:
    """Pop the server options out of a command's keyword arguments."""
    return {k: flags.pop(k, None) for k in ("url", "username", "password_stdin", "insecure")}


def _flag_rule(values: dict[str, Any]) -> WatchRule | None:
    """The rule given by flags, or None when --folder is absent."""
    if values.get("folder") is None:
        if values.get("dataset") or values.get("service"):
            raise click.UsageError("--dataset/--service need --folder (or use --config).")
        return None
    if not values.get("dataset"):
        raise click.UsageError("--folder needs --dataset.")
    retention = {k: values.pop(k) for k in ("keep_days", "keep_last", "max_age_days")}
    values["retention"] = {k: v for k, v in retention.items() if v is not None}
    values["compute_statistics"] = not values.pop("no_statistics")
    values["marker_mode"] = values.pop("marker")
    values["include"], values["exclude"] = list(values["include"]), list(values["exclude"])
    clean = {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items() if v is not None}
    return rule_from_mapping(clean, base=Path.cwd())


@click.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of watch rules (see docs/watching.md).",
)
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), help="Folder to watch.")
@click.option("--dataset", help="Mosaic dataset the folder feeds (created if missing).")
@click.option("--service", help="Service to refresh, Folder/Name (default: all of the dataset).")
@click.option("--recursive/--no-recursive", default=True, show_default=True)
@click.option("--include", multiple=True, help="Glob of files to take (repeatable).")
@click.option("--exclude", multiple=True, help="Glob of files to skip (repeatable).")
@click.option(
    "--settle",
    "settle_seconds",
    type=float,
    default=DEFAULT_SETTLE_SECONDS,
    show_default=True,
    help="Seconds a file written in place must stay unchanged before it is taken "
    "(a file renamed into the folder is taken at once).",
)
@click.option(
    "--batch-window",
    "batch_window_seconds",
    type=float,
    default=DEFAULT_BATCH_WINDOW_SECONDS,
    show_default=True,
    help="Longest wait for more files: ready files go in one transaction and one refresh.",
)
@click.option(
    "--batch-quiet",
    "batch_quiet_seconds",
    type=float,
    default=DEFAULT_BATCH_QUIET_SECONDS,
    show_default=True,
    help="Hand a batch over once no further file became ready for this many seconds.",
)
@click.option("--marker", is_flag=True, help="Take x.tif only once x.tif.done (or x.done) exists.")
@click.option(
    "--quarantine",
    type=click.Choice(["move", "record"]),
    default="move",
    show_default=True,
    help="Move bad files to the quarantine folder, or only record them.",
)
@click.option(
    "--quarantine-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where bad files go (default: FOLDER/.quarantine).",
)
@click.option("--keep-days", type=float, help="Keep items this many days behind the newest.")
@click.option("--keep-last", type=int, help="Keep only the newest N items.")
@click.option("--max-age-days", type=float, help="Remove items added longer ago than this.")
@click.option("--build-overviews", is_flag=True, help="Write .ovr overviews for plain GeoTIFFs.")
@click.option("--no-statistics", is_flag=True, help="Do not compute statistics at ingest.")
@click.option(
    "--rescan",
    "rescan_seconds",
    type=float,
    default=DEFAULT_RESCAN_SECONDS,
    show_default=True,
    help="Seconds between full rescans (events get lost on network filesystems).",
)
@click.option("--polling", is_flag=True, help="Poll instead of OS events (network filesystems).")
@click.option("--time-pattern", help="File-name time pattern for a dataset created here.")
@click.option("--once", is_flag=True, help="Ingest what is there now, then exit.")
@click.option("--log-level", default="info", show_default=True)
@server_options
@pass_state
def watch(
    state: CliState, /, config: Path | None, once: bool, log_level: str, **flags: Any
) -> None:
    """Watch folders and add complete rasters to their mosaic datasets as they arrive."""
    from livemosaic.adapters.watch import FolderWatcher

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("rasterio").setLevel(logging.WARNING)  # GDAL chatter about bad files
    server = _server(flags)
    try:
        rules = load_rules(config) if config else []
        flag_rule = _flag_rule(dict(flags))
        if flag_rule is not None:
            rules.append(flag_rule)
        if not rules:
            raise click.UsageError("say what to watch: --config FILE or --folder F --dataset D.")
        check_rules(rules)
        watcher = FolderWatcher(rules, _pipeline(state, server=server))
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        watcher.start()
    except LiveMosaicError as exc:
        fail(exc)
    names = ", ".join(f"{r.folder} -> {r.dataset}" for r in rules)
    click.echo(f"Watching {len(rules)} folder(s): {names}")
    try:
        if once:
            while not stop.is_set() and not watcher.wait_idle(timeout=1.0):
                pass
        else:
            stop.wait()
    finally:
        watcher.stop()
        _close_clients(state)
    added = sum(len(r.files_added) for r in watcher.reports)
    bad = sum(len(r.quarantined) for r in watcher.reports)
    click.echo(f"Stopped: {added} files added, {bad} quarantined in {watcher.batches} batches.")


def _echo_report(report: BatchReport) -> None:
    click.echo(
        f"Added {report.items_added} items from {len(report.files_added)} files to "
        f"'{report.dataset}'; {len(report.skipped)} unchanged files skipped; "
        f"{len(report.replaced)} replaced; {len(report.quarantined)} quarantined."
    )
    for path, reason in [*report.quarantined, *report.rejected]:
        click.secho(f"  rejected {path}: {reason}", fg="yellow", err=True)
    if report.removed:
        click.echo(f"Retention removed {report.removed} items.")
    for name in report.refreshed:
        click.echo(f"Refresh Service job submitted for {name}.")
    for name, fields in report.changed.items():
        if name not in report.refreshed:
            click.echo(f"{name} differs from its published info ({', '.join(fields)}).")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dataset", required=True, help="Mosaic dataset to add to (created if missing).")
@click.option("--service", help="Service to refresh, Folder/Name (default: all of the dataset).")
@click.option("--refresh", is_flag=True, help="Submit Refresh Service when the summary changed.")
@click.option("--recursive/--no-recursive", default=True, show_default=True)
@click.option("--include", multiple=True, help="Glob of files to take (repeatable).")
@click.option("--exclude", multiple=True, help="Glob of files to skip (repeatable).")
@click.option("--build-overviews", is_flag=True, help="Write .ovr overviews for plain GeoTIFFs.")
@server_options
@pass_state
def add(
    state: CliState,
    /,
    paths: tuple[Path, ...],
    dataset: str,
    service: str | None,
    refresh: bool,
    recursive: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    build_overviews: bool,
    **server: Any,
) -> None:
    """Add files or folders through the watcher's pipeline (journal, quarantine, refresh)."""
    try:
        rule = replace(WatchRule.adhoc(dataset, service), build_overviews=build_overviews)
        pipeline = _pipeline(state, refresh=refresh, server=_server(server))
        files = list(
            pipeline.ingestor.expand(
                list(paths), recursive=recursive, include=include, exclude=exclude
            )
        )
        report = pipeline.process(rule, files, explicit=True, refresh=refresh)
    except LiveMosaicError as exc:
        fail(exc)
    finally:
        _close_clients(state)
    _echo_report(report)
    if (report.quarantined or report.rejected) and not (report.files_added or report.skipped):
        raise SystemExit(2)


@click.group()
def quarantine() -> None:
    """Files that could not be ingested, with the reason."""


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@quarantine.command("list")
@click.option("--dataset", help="Only this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, dataset: str | None, as_json: bool) -> None:
    """List quarantined files and why."""
    try:
        entries = _journal(state).entries(dataset, "quarantined")
    except LiveMosaicError as exc:
        fail(exc)
    if as_json:
        echo_json(
            [
                {
                    "dataset": e.dataset,
                    "path": e.path,
                    "reason": e.reason,
                    "movedTo": e.moved_to,
                    "time": _iso(e.updated),
                }
                for e in entries
            ]
        )
        return
    if not entries:
        click.echo("No quarantined files.")
    for e in entries:
        where = f" (moved to {e.moved_to})" if e.moved_to else ""
        click.echo(f"{_iso(e.updated)}  {e.dataset}  {e.path}{where}\n    {e.reason}")


@quarantine.command("clear")
@click.option("--dataset", help="Only this dataset.")
@click.option("--path", "paths", multiple=True, help="Only this file (repeatable).")
@pass_state
def clear(state: CliState, dataset: str | None, paths: tuple[str, ...]) -> None:
    """Forget quarantine records (moved files stay where they are)."""
    try:
        count = _journal(state).forget(dataset, state="quarantined", paths=list(paths) or None)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Cleared {count} quarantine records.")


@click.group()
def standalone() -> None:
    """``python -m livemosaic.cli.watch``: these commands without the main group."""


standalone.add_command(watch)
standalone.add_command(add)
standalone.add_command(quarantine)


def run_module() -> None:
    """Run :func:`standalone` with settings from the environment."""
    state = CliState(build_settings(None, ()))
    try:
        standalone.main(obj=state, prog_name="livemosaic")
    finally:
        state.close()


if __name__ == "__main__":
    run_module()
