"""``livemosaic service …``: publish mosaic datasets as image services and change their settings."""

from __future__ import annotations

from dataclasses import replace

import click

from livemosaic.cli.context import CliState, echo_json, fail, pass_state
from livemosaic.core.models import ServiceDefinition
from livemosaic.core.publishing import KNOWN_PROPERTIES, split_qualified
from livemosaic.core.service_properties import service_properties
from livemosaic.errors import LiveMosaicError


@click.group()
def service() -> None:
    """Image services: published views of mosaic datasets."""


@service.command("publish")
@click.argument("dataset_name")
@click.option(
    "--name",
    "service_name",
    default=None,
    help="Service name [Folder/]Name (default: the dataset name).",
)
@click.option(
    "--live/--static", default=False, show_default=True, help="Set hasLiveData (refreshable)."
)
@click.option("--description", default="", help="Service description.")
@click.option("--copyright", "copyright_", default="", help="Copyright text.")
@pass_state
def publish(
    state: CliState,
    dataset_name: str,
    service_name: str | None,
    live: bool,
    description: str,
    copyright_: str,
) -> None:
    """Publish mosaic dataset DATASET_NAME as an image service."""
    try:
        folder, name = split_qualified(service_name or dataset_name)
        ds = state.catalog.get_dataset(dataset_name)
        snap = state.publisher().publish(
            ServiceDefinition(
                name=name,
                dataset=ds.name,
                folder=folder,
                description=description or ds.description,
                copyright=copyright_,
                properties={"hasLiveData": "true" if live else "false"},
            )
        )
    except LiveMosaicError as exc:
        fail(exc)
    root = state.settings.root
    click.echo(
        f"Published {snap.qualified_name}.ImageServer (hasLiveData={'true' if live else 'false'}) "
        f"at /{root}/rest/services/{snap.qualified_name}/ImageServer"
    )
    if snap.summary.item_count == 0:
        refresh = (
            f"then run 'livemosaic refresh {snap.definition.name}"
            + (f" --folder {snap.definition.folder}" if snap.definition.folder else "")
            + "' (or let the watcher refresh it)"
            if live
            else "then restart the service (or the server) so that it reads the dataset again"
        )
        click.secho(
            f"Warning: dataset '{ds.name}' has no items yet, so the service has no extent and "
            f"no bands. Add rasters with 'livemosaic dataset add {ds.name} PATH…', {refresh}.",
            fg="yellow",
            err=True,
        )


@service.command("list")
@pass_state
def list_(state: CliState) -> None:
    """List image services."""
    rows = state.catalog.list_services()
    if not rows:
        click.echo("No services. Publish one with: livemosaic service publish DATASET")
        return
    for d in rows:
        live = "live" if d.has_live_data else "static"
        click.echo(
            f"{d.qualified_name + '.ImageServer':36} {d.dataset:20} {live:6} {d.configured_state}"
        )


@service.command("info")
@click.argument("service_name")
@pass_state
def info(state: CliState, service_name: str) -> None:
    """Print a service's configuration and published snapshot version."""
    try:
        folder, name = split_qualified(service_name)
        d = state.catalog.get_service(folder, name)
        snap = state.catalog.latest_snapshot(d.folder, d.name)
    except LiveMosaicError as exc:
        fail(exc)
    echo_json(
        {
            "service": d.qualified_name + ".ImageServer",
            "dataset": d.dataset,
            "description": d.description,
            "capabilities": d.capabilities,
            "configuredState": d.configured_state,
            "private": d.private,
            "properties": dict(d.properties),
            "propertyProblems": list(service_properties(d).problems),
            "publishedVersion": snap.version if snap else None,
            "publishedItemCount": snap.summary.item_count if snap else None,
        }
    )


@service.command("set")
@click.argument("service_name")
@click.option(
    "--live/--static", default=None, help="Set hasLiveData true (--live) or false (--static)."
)
@click.option("--description", default=None, help="New description.")
@click.option("--copyright", "copyright_", default=None, help="New copyright text.")
@click.option("--capabilities", default=None, help="Comma list of Image,Metadata,Catalog,…")
@click.option(
    "--private/--public",
    default=None,
    help="Secure the service (only signed-in users with access may use it) or open it to all.",
)
@click.option("--property", "props", multiple=True, help="Admin property KEY=VALUE (repeatable).")
@pass_state
def set_(
    state: CliState,
    service_name: str,
    live: bool | None,
    private: bool | None,
    description: str | None,
    copyright_: str | None,
    capabilities: str | None,
    props: tuple[str, ...],
) -> None:
    """Change a service's settings (a running server picks them up on its next refresh or restart)."""
    try:
        folder, name = split_qualified(service_name)
        d = state.catalog.get_service(folder, name)
        properties = dict(d.properties)
        if live is not None:
            properties["hasLiveData"] = "true" if live else "false"
        for kv in props:
            if "=" not in kv:
                fail(f"--property expects KEY=VALUE, got '{kv}'.")
            key, value = (part.strip() for part in kv.split("=", 1))
            if key.lower() == "private":
                fail("'private' is not a property: use --private or --public.")
            if key not in KNOWN_PROPERTIES:
                known = ", ".join(sorted(KNOWN_PROPERTIES, key=str.lower))
                fail(f"Unknown property '{key}'. Known properties: {known}.")
            properties[key] = value
        d = replace(
            d,
            private=d.private if private is None else private,
            properties=properties,
            description=d.description if description is None else description,
            copyright=d.copyright if copyright_ is None else copyright_,
            capabilities=d.capabilities if capabilities is None else capabilities,
        )
        state.publisher().update_definition(d)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(
        f"Updated {d.qualified_name}.ImageServer: "
        f"hasLiveData={'true' if d.has_live_data else 'false'}, "
        f"{'private' if d.private else 'public'}."
    )


@service.command("restart")
@click.argument("service_name")
@pass_state
def restart(state: CliState, service_name: str) -> None:
    """Restart a service: it reads its dataset again (extent, pixel size, time, dimensions).

    A running server on the same catalog serves the re-read service within a second.
    """
    try:
        folder, name = split_qualified(service_name)
        snap = state.publisher().reread(folder, name)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(
        f"Restarted {snap.qualified_name}.ImageServer: version {snap.version}, "
        f"{snap.summary.item_count} items."
    )


@service.command("delete")
@click.argument("service_name")
@pass_state
def delete(state: CliState, service_name: str) -> None:
    """Delete a service (its mosaic dataset and files stay)."""
    try:
        folder, name = split_qualified(service_name)
        state.publisher().unpublish(folder, name)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Deleted service {service_name}.")
