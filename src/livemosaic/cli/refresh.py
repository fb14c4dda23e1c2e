"""``livemosaic refresh`` and ``livemosaic job show``: Refresh Service from the command line.

Both talk to a running server over HTTP through :mod:`livemosaic.client`. The server is
``--url``, else ``LIVEMOSAIC_URL``, else the local server of the settings
(``http://<host>:<port>/<root>``). Credentials come from ``--username`` /
``LIVEMOSAIC_USERNAME`` and ``--password-stdin`` / ``LIVEMOSAIC_PASSWORD`` (or a hidden
prompt): never from the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click

from livemosaic.cli.context import CliState, echo_json, fail
from livemosaic.client import JobInfo, LiveMosaicClient, RefreshServiceError
from livemosaic.errors import InvalidParameter, LiveMosaicError

URL_ENV = "LIVEMOSAIC_URL"
USERNAME_ENV = "LIVEMOSAIC_USERNAME"
PASSWORD_ENV = "LIVEMOSAIC_PASSWORD"
TIME_FIELDS = ("timeInfo.timeExtent", "timeExtent")
SHORT_TYPES = {
    "esriJobMessageTypeInformative": "info",
    "esriJobMessageTypeWarning": "warning",
    "esriJobMessageTypeError": "error",
    "esriJobMessageTypeEmpty": "",
    "esriJobMessageTypeAbort": "abort",
}


def server_url(url: str | None, state: CliState | None) -> str:
    """``--url``, else LIVEMOSAIC_URL, else the local server named by the settings."""
    if url:
        return url
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    if state is not None:
        s = state.settings
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host
        return f"http://{host}:{s.port}/{s.root}"
    return "http://127.0.0.1:8080/arcgis"


def credentials(username: str | None, password_stdin: bool) -> tuple[str | None, str | None]:
    """(username, password) from the options, the environment or a hidden prompt."""
    user = username or os.environ.get(USERNAME_ENV) or None
    if password_stdin:
        line = sys.stdin.readline()
        password: str | None = line.rstrip("\r\n")
        if not password:
            fail("--password-stdin was given but standard input held no password.")
    else:
        password = os.environ.get(PASSWORD_ENV)
    if user and password is None:
        if not sys.stdin.isatty():
            fail(
                f"No password for {user}, and standard input is not a terminal to ask for one. "
                f"Pipe it with --password-stdin (printf '%s\\n' \"$PASSWORD\" | livemosaic … "
                f"--password-stdin) or set {PASSWORD_ENV}."
            )
        password = click.prompt(f"Password for {user}", hide_input=True)
    if password is not None and not user:
        fail(f"A password was given without a username: use --username or {USERNAME_ENV}.")
    return user, password


@contextmanager
def connected(
    state: CliState | None,
    url: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
    timeout: float,
) -> Iterator[LiveMosaicClient]:
    """A client for the chosen server; LiveMosaicErrors become CLI errors."""
    user, password = credentials(username, password_stdin)
    try:
        with LiveMosaicClient(
            server_url(url, state),
            user,
            password,
            verify=not insecure,
            timeout=timeout,
        ) as client:
            yield client
    except LiveMosaicError as exc:
        fail(exc)


def parse_options(text: str | None) -> dict[str, Any] | None:
    """``--options`` as a JSON object (None when absent or ``#``)."""
    if text is None or text.strip() in ("", "#"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidParameter("--options", "is not a JSON object.", accepted='{"force": true}')
    return value


def _iso(ms: Any) -> str:
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(ms)


def show_value(name: str, value: Any) -> str:
    """A changed field's value, short and readable (times as ISO 8601, lists compact)."""
    if value is None:
        return "none"
    if name in TIME_FIELDS and isinstance(value, list):
        return "[" + ", ".join(_iso(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return "[" + ", ".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in value) + "]"
    text = json.dumps(value, default=str, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:157] + "..."


def describe_changes(results: Mapping[str, Any]) -> list[str]:
    """Human-readable lines for a refreshResults value: what changed, before → after."""
    service = results.get("service", "the service")
    changed = list(results.get("changed") or [])
    before = results.get("before") or {}
    after = results.get("after") or {}
    generation = results.get("generation")
    previous = results.get("previousGeneration")
    moved = previous is not None and previous != generation
    version = f"generation {previous} → {generation}" if moved else f"generation {generation}"
    if not changed:
        return [f"{service}: no changes detected ({version}, {results.get('itemCount')} items)."]
    lines = [f"Refreshed {service} ({version}, {results.get('itemCount')} items)."]
    lines.append("Changed:")
    for name in changed:
        old = show_value(name, before.get(name)) if name in before else "?"
        new = show_value(name, after.get(name)) if name in after else "?"
        lines.append(f"  {name}: {old} → {new}")
    return lines


def describe_job(job: JobInfo) -> list[str]:
    """Human-readable lines for a job: status, then its messages."""
    lines = [f"Job {job.job_id}: {job.status}"]
    for m in job.messages:
        kind = SHORT_TYPES.get(m.type, m.type)
        lines.append(f"  [{kind}] {m.description}" if kind else f"  {m.description}")
    return lines


_url_option = click.option(
    "--url",
    default=None,
    help=f"Server root, e.g. https://img.example.org/arcgis (env {URL_ENV}; "
    "default: the local server of the settings).",
)
_username_option = click.option(
    "--username", default=None, help=f"User to sign in as (env {USERNAME_ENV})."
)
_password_option = click.option(
    "--password-stdin",
    is_flag=True,
    help=f"Read the password from standard input (else env {PASSWORD_ENV}, else a prompt).",
)
_insecure_option = click.option(
    "--insecure", is_flag=True, help="Do not verify the server's TLS certificate."
)


@click.command("refresh")
@click.argument("name")
@click.option("--folder", default=None, help="The service's folder (default: the root folder).")
@click.option(
    "--service-type",
    default="ImageServer",
    show_default=True,
    help="ImageServer | FeatureServer | MapServer | SceneServer.",
)
@click.option(
    "--options",
    "options_json",
    default=None,
    help="refreshOptions as JSON, e.g. '{\"force\": true}'.",
)
@click.option(
    "--timeout", default=60.0, show_default=True, help="Seconds to wait for the job to finish."
)
@click.option("--json", "as_json", is_flag=True, help="Print the refreshResults JSON.")
@_url_option
@_username_option
@_password_option
@_insecure_option
@click.pass_context
def refresh(
    ctx: click.Context,
    name: str,
    folder: str | None,
    service_type: str,
    options_json: str | None,
    timeout: float,
    as_json: bool,
    url: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Refresh a live service's information (Refresh Service) and print what changed.

    NAME is the service name, or Folder/Name.
    """
    try:
        options = parse_options(options_json)
    except InvalidParameter as exc:
        fail(exc)
    state = ctx.find_object(CliState)
    with connected(state, url, username, password_stdin, insecure, 30.0) as client:
        try:
            results = client.refresh_service(name, service_type, folder, options, timeout=timeout)
        except RefreshServiceError as exc:
            for line in describe_job(JobInfo(exc.job_id, exc.status, exc.messages)):
                click.echo(line, err=True)
            fail(exc)
    if as_json:
        echo_json(results)
        return
    for line in describe_changes(results):
        click.echo(line)


@click.group("job")
def job() -> None:
    """Geoprocessing jobs (Refresh Service) on a running server."""


@job.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job JSON as the server gives it.")
@_url_option
@_username_option
@_password_option
@_insecure_option
@click.pass_context
def show(
    ctx: click.Context,
    job_id: str,
    as_json: bool,
    url: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Print a job's status and messages (and its changes once it succeeded)."""
    state = ctx.find_object(CliState)
    with connected(state, url, username, password_stdin, insecure, 30.0) as client:
        info = client.job(job_id)
        results: Any = client.job_result(job_id) if info.succeeded else None
    if isinstance(results, str):
        try:
            results = json.loads(results)
        except ValueError:
            pass
    if as_json:
        echo_json(
            {
                "jobId": info.job_id,
                "jobStatus": info.status,
                "messages": [{"type": m.type, "description": m.description} for m in info.messages],
                "results": {"refreshResults": results} if results is not None else {},
            }
        )
        return
    for line in describe_job(info):
        click.echo(line)
    if isinstance(results, dict):
        for line in describe_changes(results):
            click.echo(line)
    elif results is not None:
        click.echo(f"refreshResults: {results}")


__all__ = [
    "PASSWORD_ENV",
    "URL_ENV",
    "USERNAME_ENV",
    "credentials",
    "describe_changes",
    "describe_job",
    "job",
    "parse_options",
    "refresh",
    "server_url",
    "show",
    "show_value",
]
