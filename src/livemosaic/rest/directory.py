"""Discovery resources (spec 2): the services catalog, folders, server info, output files.

Listings show what the caller may read: secured services only to callers granted them, the
``System`` folder (``PublishingTools``) only to publishers and administrators. Services of
other kinds register themselves in ``AppContext.extra_services`` and are listed here without
this module knowing them.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from livemosaic.core.security import Principal
from livemosaic.errors import FolderNotFound, NotFound
from livemosaic.rest.auth import (
    SYSTEM_FOLDER,
    SYSTEM_ROLE,
    can_read_service,
    current_principal,
    hide_missing_service,
    request_origin_of,
    require_role,
)
from livemosaic.rest.context import app_context, root_path
from livemosaic.rest.formats import resource_response
from livemosaic.rest.html import Link, display_path, page, resource_page
from livemosaic.rest.params import read_params

router = APIRouter()

METHODS = ["GET", "POST"]


def _may_see_system(principal: Principal) -> bool:
    return principal.at_least(SYSTEM_ROLE)


def _folders(request: Request, principal: Principal) -> list[str]:
    """Folders with something this caller may read (System only for publishers and up)."""
    ctx = app_context(request)
    names = {
        s.definition.folder
        for s in ctx.registry.all()
        if s.definition.folder and can_read_service(principal, s.definition)
    }
    names.update(folder for folder, _name, _type in ctx.extra_services if folder)
    names.add(SYSTEM_FOLDER)
    if not _may_see_system(principal):
        names.discard(SYSTEM_FOLDER)
    return sorted(names, key=str.lower)


def _services_in(request: Request, folder: str, principal: Principal) -> list[dict[str, str]]:
    """Services of a folder this caller may read (secured ones are hidden from others)."""
    ctx = app_context(request)
    out: list[dict[str, str]] = []
    for snap in ctx.registry.all():
        if snap.definition.folder.lower() == folder.lower() and can_read_service(
            principal, snap.definition
        ):
            out.append({"name": snap.qualified_name, "type": "ImageServer"})
    if folder.lower() == SYSTEM_FOLDER.lower() and not _may_see_system(principal):
        return out
    for f, name, kind in ctx.extra_services:
        if f.lower() == folder.lower():
            out.append({"name": f"{f}/{name}" if f else name, "type": kind})
    return out


def _folder_exists(request: Request, folder: str) -> str | None:
    """The canonical spelling of a folder that exists (whoever may see it), else None."""
    ctx = app_context(request)
    names = set(ctx.registry.folders())
    names.update(f for f, _name, _type in ctx.extra_services if f)
    names.add(SYSTEM_FOLDER)
    return next((f for f in names if f.lower() == folder.lower()), None)


def _listing_page(
    request: Request, title: str, folders: list[str], services: list[dict[str, str]]
) -> str:
    root = root_path(request)
    return page(
        request,
        "directory.html",
        title,
        current_version=app_context(request).settings.current_version,
        folders=[Link(f, f"{root}/rest/services/{f}") for f in folders],
        services=[
            {
                "label": s["name"],
                "type": s["type"],
                "url": f"{root}/rest/services/{s['name']}/{s['type']}",
            }
            for s in services
        ],
    )


@router.api_route("/rest/services", methods=METHODS)
async def services_root(request: Request) -> Response:
    """``{root}/rest/services``: folders (always with System) and root services."""
    params = await read_params(request)
    ctx = app_context(request)
    principal = current_principal(request)
    folders = _folders(request, principal)
    services = _services_in(request, "", principal)
    data = {
        "currentVersion": ctx.settings.current_version,
        "folders": folders,
        "services": services,
    }
    return resource_response(
        request, params, data, lambda: _listing_page(request, "Home", folders, services)
    )


@router.api_route("/rest/services/{folder}", methods=METHODS)
async def services_folder(request: Request) -> Response:
    """``{root}/rest/services/{folder}``: the services of a folder (names carry the folder)."""
    params = await read_params(request)
    ctx = app_context(request)
    wanted = str(request.path_params["folder"])
    principal = current_principal(request)
    canonical = _folder_exists(request, wanted)
    if canonical is None:
        hide_missing_service(request, wanted)
        spelled = display_path(request).rsplit("/", 1)[-1]
        raise FolderNotFound(f"Folder '{spelled}' does not exist.")
    if canonical == SYSTEM_FOLDER:
        require_role(principal, SYSTEM_ROLE)
    services = _services_in(request, canonical, principal)
    if not services and principal.is_anonymous:
        hide_missing_service(request, canonical)  # a folder of secured services only
    data = {"currentVersion": ctx.settings.current_version, "folders": [], "services": services}
    return resource_response(
        request, params, data, lambda: _listing_page(request, canonical, [], services)
    )


def full_version(version: float) -> str:
    """``11.1`` → ``"11.1.0"``."""
    parts = f"{version:g}".split(".")
    return ".".join((parts + ["0", "0"])[:3])


@router.api_route("/rest/info", methods=METHODS)
async def rest_info(request: Request) -> Response:
    """``{root}/rest/info``: version and token security info (``tokenServicesUrl``, spec 2.3)."""
    params = await read_params(request)
    ctx = app_context(request)
    version = ctx.settings.current_version
    origin = request_origin_of(request)
    data = {
        "currentVersion": version,
        "fullVersion": full_version(version),
        "authInfo": {
            "isTokenBasedSecurity": True,
            "tokenServicesUrl": f"{origin.base}{root_path(request)}/tokens/generateToken",
            "shortLivedTokenValidity": ctx.settings.default_token_minutes,
        },
    }
    root = root_path(request)
    return resource_response(
        request,
        params,
        data,
        lambda: resource_page(
            request, "Server info", data, children=[Link("Services", f"{root}/rest/services")]
        ),
    )


@router.api_route("/rest", methods=METHODS)
async def rest_home(request: Request) -> Response:
    """``{root}/rest`` redirects to the services directory."""
    return RedirectResponse(f"{root_path(request)}/rest/services", status_code=302)


@router.api_route("/info", methods=METHODS)
async def root_info(request: Request) -> Response:
    """``{root}/info`` is not an ArcGIS Server resource: 404 (py then probes rest/info)."""
    await read_params(request)
    raise NotFound(
        f"There is no resource at {root_path(request)}/info; use {root_path(request)}/rest/info.",
        message="Resource not found.",
    )


@router.api_route("/rest/directories/arcgisoutput/{path:path}", methods=METHODS)
async def output_file(request: Request) -> Response:
    """An exportImage output (``href`` of f=json); nothing outside the output folder is served."""
    await read_params(request)
    ctx = app_context(request)
    relative = str(request.path_params["path"])
    target = safe_output_path(ctx.settings.output_dir, relative)
    if target is None:
        raise NotFound(
            f"Output '{relative[:200]}' does not exist or has expired.",
            message="Resource not found.",
        )
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix.lower() in (".lerc", ".bip", ".bsq"):
        media_type = "application/octet-stream"
    return FileResponse(
        target, media_type=media_type, headers={"Cache-Control": "private, max-age=60"}
    )


def safe_output_path(output_dir: Path, relative: str) -> Path | None:
    """The output file named by ``relative`` if it is a regular file inside ``output_dir``."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    try:
        base = Path(os.path.realpath(output_dir))
        target = Path(os.path.realpath(base.joinpath(*parts)))
        if base not in target.parents or not target.is_file():
            return None
    except (OSError, ValueError):  # a name too long for the file system, an odd character
        return None
    return target


__all__ = ["full_version", "router", "safe_output_path"]
