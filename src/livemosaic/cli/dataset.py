"""``livemosaic dataset …``: create, add to, remove from, list and describe mosaic datasets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from livemosaic.cli.context import CliState, echo_json, fail, pass_state
from livemosaic.core.ingest import validate_time_field
from livemosaic.core.missing import missing_files
from livemosaic.core.models import DatasetSummary
from livemosaic.core.objects import gdal_name
from livemosaic.core.overview_build import MosaicOverviews, OverviewReport
from livemosaic.core.overview_grid import (
    DEFAULT_FACTOR,
    DEFAULT_MIN_ITEMS,
    DEFAULT_TILE_SIZE,
    EVERYWHERE,
    MIN_FACTOR,
    is_overview_dataset,
)
from livemosaic.core.ports import RemoveFilter
from livemosaic.core.where import parse_date, parse_where
from livemosaic.errors import InvalidParameter, LiveMosaicError


def _parse_when(value: str) -> int:
    """An ISO date/time or a relative age like 30d / 12h → epoch ms."""
    now = dt.datetime.now(dt.UTC)
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    if value and value[-1] in units and value[:-1].isdigit():
        moment = now - dt.timedelta(**{units[value[-1]]: int(value[:-1])})
    else:
        ms = parse_date(value)  # the REST API's date parser
        if ms is None:
            raise click.BadParameter(
                f"'{value}' is neither an ISO date (2024-05-01) nor an age (30d, 12h, 2w)."
            ) from None
        return ms
    return int(moment.timestamp() * 1000)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def summary_json(summary: DatasetSummary) -> dict[str, Any]:
    """A readable JSON form of a dataset summary."""
    ext = summary.extent
    return {
        "itemCount": summary.item_count,
        "extent": None if ext is None else [ext.xmin, ext.ymin, ext.xmax, ext.ymax],
        "cellSize": [summary.min_cell_size_x, summary.min_cell_size_y],
        "maxCellSize": [summary.max_cell_size_x, summary.max_cell_size_y],
        "timeExtent": None
        if summary.time_extent is None
        else [_iso(summary.time_extent[0]), _iso(summary.time_extent[1])],
        "bandCount": summary.band_count,
        "bandNames": list(summary.band_names),
        "pixelType": summary.pixel_type,
        "variables": {
            v.name: {d.name: len(d.values) for d in v.dimensions} for v in summary.variables
        },
        "bandStatistics": [
            {"min": s.min, "max": s.max, "mean": s.mean, "std": s.std} for s in summary.band_stats
        ],
        "version": summary.version,
    }


class RasterLocation(click.ParamType["Path | str"]):
    """A file or folder that exists, or an object URI (s3://bucket/key, s3://bucket/prefix/)."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """An object URI as given; a local path checked to exist (as click.Path does)."""
        text = str(value)
        if gdal_name(text) is not None:
            return text
        return click.Path(exists=True, path_type=Path).convert(text, param, ctx)


RASTER_LOCATION = RasterLocation()


TIME_FIELD_HELP = (
    "Metadata item holding each file's acquisition time, [DOMAIN:]NAME: a NetCDF global "
    "attribute (time_coverage_start), a TIFF tag (TIFFTAG_DATETIME) or any GDAL metadata "
    "item (IMAGERY:ACQUISITIONDATETIME). Used before --time-pattern."
)
TIME_FORMAT_HELP = (
    "strftime format of the time field's value, e.g. %Y%m%d%H%M (%z for an offset). "
    "Default: ISO 8601 and the other date forms the REST API reads."
)


@click.group()
def dataset() -> None:
    """Mosaic datasets: catalogs of rasters referenced in place."""


@dataset.command("create")
@click.argument("name")
@click.option(
    "--crs", default=None, help="EPSG:n, a bare code, or WKT. Default: the first raster's CRS."
)
@click.option(
    "--time-pattern",
    default=None,
    help="Regex with named groups Y m d [H M S] (or %Y-%m-%d style) that finds the time in file names.",
)
@click.option(
    "--no-history", is_flag=True, help="Do not keep geoprocessing history for this dataset."
)
@click.option("--description", default="", help="Free text shown in service descriptions.")
@click.option("--time-field", default=None, help=TIME_FIELD_HELP)
@click.option("--time-format", default=None, help=TIME_FORMAT_HELP)
@pass_state
def create(
    state: CliState,
    name: str,
    crs: str | None,
    time_pattern: str | None,
    no_history: bool,
    description: str,
    time_field: str | None,
    time_format: str | None,
) -> None:
    """Create an empty mosaic dataset NAME."""
    try:
        if crs is not None and crs.isdigit():
            crs = f"EPSG:{crs}"
        if crs is not None:
            crs = _checked_crs(state, crs)
        ds = state.ingestor().create_dataset(
            name,
            crs,
            time_pattern=time_pattern,
            history=not no_history,
            description=description,
            time_field=time_field,
            time_format=time_format,
        )
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Created mosaic dataset '{ds.name}' ({ds.crs or 'CRS from the first raster'}).")
    click.echo(f"Next: livemosaic dataset add {ds.name} PATH…")


def _checked_crs(state: CliState, crs: str) -> str:
    """The dataset CRS as stored; an unknown one fails naming the --crs option."""
    try:
        return state.projector.validate(_sr(crs))
    except InvalidParameter as exc:
        why = exc.reason.removeprefix("Invalid value for 'spatialReference': ")
        why = why.split(" Accepted form:")[0].rstrip(".")
        fail(
            f"Invalid value for '--crs': {why}. Give EPSG:n (for example EPSG:4326 or "
            "EPSG:3857), a bare EPSG code, or the CRS as WKT."
        )


def _sr(crs: str) -> Any:
    from livemosaic.core.models import SpatialRef

    if crs.upper().startswith("EPSG:") and crs[5:].isdigit():
        return SpatialRef.from_epsg(int(crs[5:]))
    return SpatialRef(wkt=crs)


@dataset.command("add")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True, type=RASTER_LOCATION)
@click.option(
    "--recursive/--no-recursive", default=True, show_default=True, help="Descend into sub-folders."
)
@click.option("--include", multiple=True, help="Glob of files to take (repeatable), e.g. '*.tif'.")
@click.option("--exclude", multiple=True, help="Glob of files to skip (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Submit Refresh Service for the dataset's live services whose extent, resolution, "
    "time or dimensions changed (a server on the same catalog runs it).",
)
@pass_state
def add(
    state: CliState,
    name: str,
    paths: tuple[Path | str, ...],
    recursive: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    quiet: bool,
    refresh: bool,
) -> None:
    """Add raster files or folders (referenced in place) to dataset NAME."""
    bar: tqdm[Any] | None = None

    def progress(done: int, total: int, current: str) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=total, unit="file", desc=f"Adding to {name}", leave=True)
        bar.n = done
        bar.set_postfix_str(Path(current).name[-40:] if current else "")
        bar.refresh()

    try:
        ovr = _overviews(state)
        # the new items' area is unknown yet: everything is drawn from the items meanwhile
        has_overviews = ovr.invalidate(name, [EVERYWHERE])
        report = state.ingestor().add_paths(
            name,
            list(paths),
            recursive=recursive,
            include=include,
            exclude=exclude,
            progress=progress,
        )
        rebuilt = ovr.update(name) if has_overviews else None
    except LiveMosaicError as exc:
        fail(exc)
    finally:
        if bar is not None:
            bar.close()
    click.echo(
        f"Added {report.added} items from {report.files_added} files; "
        f"{report.skipped} unchanged files skipped; {report.replaced} replaced; "
        f"{len(report.rejected)} rejected."
    )
    _echo_overviews(rebuilt, has_overviews)
    for path, reason in report.rejected:
        click.secho(f"  rejected {path}: {reason}", fg="yellow", err=True)
    if report.added or report.replaced:
        _after_change(state, name, refresh)
    if report.rejected and not report.added and not report.skipped:
        raise SystemExit(2)


def _after_change(state: CliState, name: str, refresh: bool) -> None:
    """Tell each service of the dataset about changed rasters: a live one whose summary
    changed gets a Refresh Service job; for a static one, say how it shows the change."""
    from livemosaic.core.refresh import summary_changes
    from livemosaic.core.triggers import InProcessRefresh
    from livemosaic.rest.refresh_wire import GP_JOBS, wire_names

    summary = state.catalog.summary(name)
    trigger = InProcessRefresh(state.jobs, GP_JOBS, owner="cli")
    for d in state.catalog.list_services():
        if d.dataset.lower() != name.lower():
            continue
        published = state.catalog.latest_snapshot(d.folder, d.name)
        changes = wire_names(summary_changes(published, summary))
        if not changes:
            continue
        label = d.qualified_name
        if not d.has_live_data:
            click.echo(
                f"Service {label} is static: it shows the new {', '.join(changes)} when it is "
                f"restarted ('livemosaic service restart {label}', or a server restart); "
                f"'livemosaic service set {label} --live' makes it refreshable."
            )
        elif refresh:
            trigger.request_refresh(d.folder, d.name)
            click.echo(
                f"Refresh Service job {trigger.last_job(d.folder, d.name)} submitted for {label} "
                f"({', '.join(changes)} changed); a server on this catalog runs it."
            )
        else:
            click.echo(
                f"Service {label} needs a refresh for {', '.join(changes)}: run "
                f"'livemosaic refresh {d.name}"
                + (f" --folder {d.folder}" if d.folder else "")
                + "'."
            )


@dataset.command("remove")
@click.argument("name")
@click.option("--id", "ids", multiple=True, type=int, help="OBJECTID to remove (repeatable).")
@click.option(
    "--where", default=None, help="Where clause over catalog fields, e.g. \"Variable = 'tas'\"."
)
@click.option("--path", default=None, help="A file path, or a folder path ending in '/'.")
@click.option(
    "--older-than", default=None, help="Acquisition time before an ISO date or an age (30d, 12h)."
)
@pass_state
def remove(
    state: CliState,
    name: str,
    ids: tuple[int, ...],
    where: str | None,
    path: str | None,
    older_than: str | None,
) -> None:
    """Remove items of dataset NAME (never the files themselves)."""
    if not (ids or where or path or older_than):
        fail("say which items to remove: --id, --where, --path or --older-than.")
    try:
        flt = RemoveFilter(
            object_ids=tuple(ids) or None,
            where=parse_where(where) if where else None,
            path=path,
            older_than=_parse_when(older_than) if older_than else None,
        )
        ovr = _overviews(state)
        has_overviews = ovr.invalidate(name, [EVERYWHERE])  # drawn from the items meanwhile
        count = state.ingestor().remove(name, flt)
        rebuilt = ovr.update(name) if has_overviews else None
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Removed {count} items from '{name}'.")
    _echo_overviews(rebuilt, has_overviews)
    if count:
        _after_change(state, name, refresh=True)


@dataset.command("missing")
@click.argument("name")
@click.option("--remove", "remove_items", is_flag=True, help="Also remove their items.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@pass_state
def missing(state: CliState, name: str, remove_items: bool, as_json: bool) -> None:
    """List the files of dataset NAME that are gone while their items remain (and remove those
    items with --remove; published live services then need a refresh)."""
    try:
        report = missing_files(state.catalog, state.catalog.get_dataset(name).name)
        removed = 0
        if remove_items:
            ingestor = state.ingestor()
            for entry in report.files:
                removed += ingestor.remove(report.dataset, RemoveFilter(path=entry.path))
    except LiveMosaicError as exc:
        fail(exc)
    if as_json:
        echo_json(report.to_json() | ({"removed": removed} if remove_items else {}))
        return
    for entry in report.files:
        ids = ", ".join(str(i) for i in entry.item_ids)
        click.echo(f"{entry.path}  (items {ids})")
    click.echo(
        f"{len(report.files)} missing files of {report.items_checked} items in '{report.dataset}'"
        + (f"; removed {removed} items." if remove_items else ".")
    )
    if report.files and not remove_items:
        click.echo(f"Remove their items with: livemosaic dataset missing {report.dataset} --remove")


@dataset.command("list")
@pass_state
def list_(state: CliState) -> None:
    """List mosaic datasets with their item counts."""
    rows = state.catalog.list_datasets()
    if not rows:
        click.echo("No mosaic datasets. Create one with: livemosaic dataset create NAME")
        return
    for ds in rows:
        if is_overview_dataset(ds.name):
            continue  # a dataset's overviews: shown by `dataset info`
        s = state.catalog.summary(ds.name)
        crs = ds.crs if len(ds.crs) < 40 else ds.crs[:37] + "…"
        click.echo(f"{ds.name:24} {s.item_count:8d} items  {crs}")


@dataset.command("info")
@click.argument("name")
@click.option(
    "--history", "show_history", is_flag=True, help="Also print recent geoprocessing history."
)
@pass_state
def info(state: CliState, name: str, show_history: bool) -> None:
    """Print a dataset's settings and summary as JSON."""
    try:
        ds = state.catalog.get_dataset(name)
        out: dict[str, Any] = {
            "name": ds.name,
            "crs": ds.crs,
            "timePattern": ds.time_pattern,
            "timeField": ds.time_field,
            "timeFormat": ds.time_format,
            "history": ds.history_enabled,
            "summary": summary_json(state.catalog.summary(ds.name)),
        }
        ovr = _overviews(state).settings(ds.name)
        if ovr is not None:
            out["overviews"] = {
                "auto": ovr.auto,
                "minItems": ovr.min_items,
                "factor": ovr.factor,
                "tileSize": ovr.tile_size,
                "levels": ovr.levels,
                "cellSizes": [ovr.level_ps(k) for k in range(ovr.levels)],
                "folder": ovr.folder,
                "dirtyAreas": len(ovr.dirty),
            }
        if show_history:
            out["recentHistory"] = [
                {"time": _iso(h.time), "operation": h.operation, "details": dict(h.details)}
                for h in state.catalog.history(ds.name, 20)
            ]
    except LiveMosaicError as exc:
        fail(exc)
    echo_json(out)


@dataset.command("set")
@click.argument("name")
@click.option(
    "--history/--no-history",
    default=None,
    help="Keep (or stop keeping) geoprocessing history, e.g. off for routine updates.",
)
@click.option("--time-pattern", default=None, help="New file-name time pattern for future adds.")
@click.option("--description", default=None, help="New description.")
@click.option(
    "--time-field", default=None, help=TIME_FIELD_HELP + " Empty text removes it (future adds)."
)
@click.option("--time-format", default=None, help=TIME_FORMAT_HELP)
@pass_state
def set_(
    state: CliState,
    name: str,
    history: bool | None,
    time_pattern: str | None,
    description: str | None,
    time_field: str | None,
    time_format: str | None,
) -> None:
    """Change a dataset's settings."""
    from dataclasses import replace

    try:
        ds = state.catalog.get_dataset(name)
        ds = replace(
            ds,
            history_enabled=ds.history_enabled if history is None else history,
            time_pattern=ds.time_pattern if time_pattern is None else time_pattern,
            description=ds.description if description is None else description,
            time_field=ds.time_field if time_field is None else (time_field or None),
            time_format=ds.time_format if time_format is None else (time_format or None),
        )
        if time_field == "":  # removing the field removes its format
            ds = replace(ds, time_format=None)
        validate_time_field(ds.time_field, ds.time_format)
        ds = state.catalog.update_dataset(ds)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Updated '{ds.name}': history {'on' if ds.history_enabled else 'off'}.")


@dataset.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def delete(state: CliState, name: str, yes: bool) -> None:
    """Delete dataset NAME with its items and history (the raster files stay)."""
    try:
        ds = state.catalog.get_dataset(name)
        count = state.catalog.summary(ds.name).item_count
        if not yes:
            click.confirm(f"Delete '{ds.name}' and its {count} catalog items?", abort=True)
        _overviews(state).remove(ds.name)
        state.catalog.delete_dataset(ds.name)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Deleted mosaic dataset '{ds.name}' ({count} items; no file was touched).")


def _echo_overviews(rebuilt: OverviewReport | None, has_overviews: bool) -> None:
    if rebuilt is not None:
        click.echo(f"Rebuilt {rebuilt.written} overview tiles in {rebuilt.seconds:.1f} s.")
    elif has_overviews:
        click.echo(
            "The overviews are not kept current automatically: images are drawn from the "
            "items until `livemosaic dataset overviews build` runs again."
        )


def _overviews(state: CliState) -> MosaicOverviews:
    from livemosaic.adapters.raster.overview_tiles import CogTileWriter

    return MosaicOverviews(
        state.catalog, state.source, CogTileWriter(), state.settings.data_folders
    )


@dataset.group("overviews")
def overviews() -> None:
    """Mosaic-level overviews: lower-resolution mosaics that draw small scales."""


@overviews.command("build")
@click.argument("name")
@click.option(
    "--auto/--no-auto",
    default=None,
    help="Keep them current after every ingest (default: on).",
)
@click.option(
    "--factor",
    type=click.IntRange(min=MIN_FACTOR),
    default=None,
    help=f"Cell size ratio between levels (default {DEFAULT_FACTOR}).",
)
@click.option(
    "--tile-size",
    type=click.IntRange(min=64),
    default=None,
    help=f"Pixels per tile side (default {DEFAULT_TILE_SIZE}).",
)
@click.option(
    "--min-items",
    type=click.IntRange(min=0),
    default=None,
    help="With --auto, build them once the dataset holds more than this many items "
    f"(default {DEFAULT_MIN_ITEMS}).",
)
@pass_state
def overviews_build(
    state: CliState,
    name: str,
    auto: bool | None,
    factor: int | None,
    tile_size: int | None,
    min_items: int | None,
) -> None:
    """Build (or rebuild) the overviews of dataset NAME."""
    try:
        ovr = _overviews(state)
        ovr.configure(name, auto=auto, factor=factor, tile_size=tile_size, min_items=min_items)
        report = ovr.build(name)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(
        f"Built {report.levels} overview levels of '{name}': {report.written} tiles "
        f"in {report.seconds:.1f} s."
    )


@overviews.command("set")
@click.argument("name")
@click.option("--auto/--no-auto", default=None, help="Keep them current after every ingest.")
@click.option(
    "--min-items",
    type=click.IntRange(min=0),
    default=None,
    help="Build them automatically once the dataset holds more than this many items.",
)
@pass_state
def overviews_set(state: CliState, name: str, auto: bool | None, min_items: int | None) -> None:
    """Turn automatic overviews of dataset NAME on or off, and set their trigger."""
    try:
        settings = _overviews(state).configure(name, auto=auto, min_items=min_items)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(
        f"Overviews of '{name}': automatic {'on' if settings.auto else 'off'}, built once it "
        f"holds more than {settings.min_items} items; {settings.levels} levels built."
    )


@overviews.command("remove")
@click.argument("name")
@pass_state
def overviews_remove(state: CliState, name: str) -> None:
    """Remove the overviews of dataset NAME (tiles, catalog entries and settings)."""
    try:
        state.catalog.get_dataset(name)
        count = _overviews(state).remove(name)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Removed {count} overview tiles of '{name}'.")
