"""The ``livemosaic`` command: a group with one module per subcommand family."""

from __future__ import annotations

from pathlib import Path

import click

from livemosaic import __version__
from livemosaic.cli.context import CliState, build_settings
from livemosaic.cli.dataset import dataset
from livemosaic.cli.refresh import job, refresh
from livemosaic.cli.serve import config, init, serve
from livemosaic.cli.service import service
from livemosaic.cli.users import user
from livemosaic.cli.watch import add, quarantine, watch


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="livemosaic")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the catalog database and server state (env LIVEMOSAIC_DATA_DIR; default ./data).",
)
@click.option(
    "--data-folder",
    "data_folders",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder rasters may be added from (repeatable; env LIVEMOSAIC_DATA_FOLDERS, comma-separated).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, data_folders: tuple[Path, ...]) -> None:
    """livemosaic: a live, ArcGIS-compatible image server for imagery that keeps arriving."""
    state = CliState(build_settings(data_dir, data_folders))
    ctx.obj = state
    ctx.call_on_close(state.close)


cli.add_command(init)
cli.add_command(config)
cli.add_command(serve)
cli.add_command(dataset)
cli.add_command(service)
cli.add_command(user)
cli.add_command(refresh)
cli.add_command(job)
cli.add_command(watch)
cli.add_command(add)
cli.add_command(quarantine)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="livemosaic")
