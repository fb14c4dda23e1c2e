"""Administrator API subset (spec 9): service listing, configuration, edit, start/stop, create.

Reads need the publisher role, writes the administrator role; writes are POST only. Errors
use the admin envelope ``{"status": "error", "messages": [...], "code": N}`` (spec 3.3; see
:mod:`livemosaic.rest.errors`). Changes go through the :class:`Publisher`, which persists the
definition and swaps a new snapshot in atomically — an edit never takes a service down — and
other server processes pick the new snapshot up within ``snapshot_poll_seconds``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livemosaic.core.models import SERVICE_NAME_PATTERN, ServiceDefinition
from livemosaic.core.publishing import validate_name
from livemosaic.core.refresh import RefreshRequest
from livemosaic.core.security import Principal
from livemosaic.errors import (
    AlreadyExists,
    FolderNotFound,
    InvalidParameter,
    NotFound,
    ServiceNotFound,
)
from livemosaic.rest import admin_config as ac
from livemosaic.rest import admin_folders as af
from livemosaic.rest.auth import SYSTEM_FOLDER, current_principal, require_role
from livemosaic.rest.context import app_context, root_path
from livemosaic.rest.directory import full_version
from livemosaic.rest.errors import MethodNotAllowed
from livemosaic.rest.formats import resource_response
from livemosaic.rest.html import Link, display_path, resource_page
from livemosaic.rest.params import Params, read_params

router = APIRouter()
METHODS = ["GET", "POST"]
READ_ROLE = "publisher"
WRITE_ROLE = "administrator"
SUCCESS = {"status": "success"}
SERVICE_OPS = ("edit", "start", "stop", "status", "delete")
PRIVILEGE = {"administrator": "ADMINISTER", "publisher": "PUBLISH", "user": "ACCESS"}


def _respond(request: Request, params: Params, title: str, data: Any, **links: str) -> Response:
    return resource_response(
        request,
        params,
        data,
        lambda: resource_page(
            request, title, data, children=[Link(k, v) for k, v in links.items()]
        ),
    )


def _reader(request: Request) -> Principal:
    return require_role(current_principal(request), READ_ROLE)


def _writer(request: Request) -> Principal:
    principal = require_role(current_principal(request), WRITE_ROLE)
    if request.method != "POST":
        raise MethodNotAllowed("This operation changes the server; send it as a POST request.")
    return principal


async def _services(request: Request) -> list[ServiceDefinition]:
    return await asyncio.to_thread(app_context(request).catalog.list_services)


def _folders_path(request: Request) -> Path:
    return app_context(request).settings.data_dir / af.FOLDERS_FILE


async def _listing(request: Request, params: Params, folder: str | None) -> Response:
    services = await _services(request)
    folders = af.all_folders(services, af.read_folders(_folders_path(request)))
    base = f"{root_path(request)}/admin/services"
    if folder is None:
        links = {f: f"{base}/{f}" for f in folders}
        return _respond(request, params, "Services", af.root_listing(services, folders), **links)
    canonical = next((f for f in folders if f.lower() == folder.lower()), None)
    if canonical is None:
        raise FolderNotFound(f"Folder '{folder}' does not exist.")
    data = af.folder_listing(canonical, services)
    return _respond(request, params, canonical, data, Services=base)


# -- services -------------------------------------------------------------------------------
def _split_service(segment: str) -> tuple[str, str]:
    name, _, kind = segment.rpartition(".")
    return name, kind.lower()


async def _definition(request: Request, folder: str, segment: str) -> ServiceDefinition:
    name, kind = _split_service(segment)
    where = f"{folder}/{name}" if folder else name
    if kind != "imageserver":
        raise ServiceNotFound(f"Service '{where}.{kind}' does not exist.")
    try:
        return await asyncio.to_thread(app_context(request).catalog.get_service, folder, name)
    except NotFound:
        raise ServiceNotFound(f"Service '{where}.ImageServer' does not exist.") from None


def _gp_config() -> dict[str, Any]:
    return {
        "serviceName": af.GP_SERVICE,
        "type": "GPServer",
        "description": af.GP_DESCRIPTION,
        "capabilities": "",
        "configuredState": "STARTED",
        "private": True,
        "properties": {"executionType": "Asynchronous"},
        "extensions": [],
        "frameworkProperties": {},
        "datasets": [],
    }


async def _system_service(
    request: Request, params: Params, segment: str, op: str | None
) -> Response:
    name, kind = _split_service(segment)
    if name.lower() != af.GP_SERVICE.lower() or kind != "gpserver":
        raise ServiceNotFound(f"Service 'System/{segment}' does not exist.")
    if op is None:
        return _respond(request, params, "PublishingTools.GPServer", _gp_config())
    if op == "status":
        return _respond(
            request, params, "status", {"configuredState": "STARTED", "realTimeState": "STARTED"}
        )
    _writer(request)
    raise InvalidParameter("service", "System services cannot be changed.")


async def _set_state(
    request: Request, d: ServiceDefinition, state: Literal["STARTED", "STOPPED"]
) -> None:
    publisher = app_context(request).publisher
    if d.configured_state != state:
        await asyncio.to_thread(publisher.update_definition, replace(d, configured_state=state))
    if state == "STARTED":  # a (re)started service reads its dataset again, as in ArcGIS
        await asyncio.to_thread(publisher.reread, d.folder, d.name)


def _apply_edit(request: Request, current: ServiceDefinition, text: str | None) -> None:
    """Replace a service's configuration (blocking: runs on a worker thread)."""
    ctx = app_context(request)
    config = ac.parse_service_json(text)
    new = ac.definition_from_config(config, current.folder, current)
    if new.name.lower() != current.name.lower():
        raise InvalidParameter(
            "service",
            f"serviceName '{new.name}' differs from '{current.name}': edit does not rename services.",
            accepted="the same serviceName (delete and create the service to rename it)",
        )
    new = replace(new, name=current.name)
    ctx.catalog.get_dataset(new.dataset)  # DatasetNotFound with the next step
    ctx.publisher.update_definition(new)
    if new.has_live_data and not current.has_live_data and new.configured_state == "STARTED":
        # a service that just became live gets its summary brought up to date, as a refresh would
        ctx.refresher.refresh(RefreshRequest(new.folder, new.name))


async def _service(
    request: Request, params: Params, folder: str, segment: str, op: str | None
) -> Response:
    if folder.lower() == SYSTEM_FOLDER.lower():
        return await _system_service(request, params, segment, op)
    d = await _definition(request, folder, segment)
    ctx = app_context(request)
    title = f"{d.qualified_name}.ImageServer"
    if op is None:
        return _respond(request, params, title, ac.config_json(d))
    if op == "status":
        live = ctx.registry.find(d.folder, d.name)
        real = live.definition.configured_state if live is not None else "STOPPED"
        return _respond(
            request,
            params,
            "status",
            {"configuredState": d.configured_state, "realTimeState": real},
        )
    if op not in SERVICE_OPS:
        raise NotFound(f"'{op}' is not an operation of {title}.", message="Resource not found.")
    _writer(request)
    if op == "edit":
        await asyncio.to_thread(_apply_edit, request, d, params.raw("service"))
    elif op in ("start", "stop"):
        await _set_state(request, d, "STARTED" if op == "start" else "STOPPED")
    else:  # delete
        await asyncio.to_thread(ctx.publisher.unpublish, d.folder, d.name)
    return _respond(request, params, op, SUCCESS)


async def _create_service(request: Request, params: Params, folder: str) -> Response:
    _writer(request)
    ctx = app_context(request)
    config = ac.parse_service_json(params.raw("service"))
    folder = folder or str(config.get("folderName") or "").strip("/")
    validate_name("folderName", folder, allow_empty=True)
    definition = ac.definition_from_config(config, folder)

    def create() -> None:
        try:
            ctx.catalog.get_service(definition.folder, definition.name)
        except NotFound:
            ctx.publisher.publish(definition)
            return
        raise AlreadyExists("Service already exists.", message="Service already exists.")

    await asyncio.to_thread(create)
    return _respond(request, params, "createService", SUCCESS)


async def _create_folder(request: Request, params: Params) -> Response:
    _writer(request)
    name = params.get("folderName") or ""
    validate_name("folderName", name)
    if name.lower() == SYSTEM_FOLDER.lower():
        raise AlreadyExists(f"Folder '{name}' already exists.", message="Folder already exists.")
    path = _folders_path(request)
    with af.FOLDERS_LOCK:
        names = af.read_folders(path)
        if any(n.lower() == name.lower() for n in names):
            raise AlreadyExists(
                f"Folder '{name}' already exists.", message="Folder already exists."
            )
        af.write_folders(path, [*names, name])
    return _respond(request, params, "createFolder", SUCCESS)


async def _delete_folder(request: Request, params: Params, folder: str) -> Response:
    _writer(request)
    services = await _services(request)
    if folder.lower() == SYSTEM_FOLDER.lower():
        raise InvalidParameter("folderName", "the System folder cannot be deleted.")
    if any(d.folder.lower() == folder.lower() for d in services):
        raise InvalidParameter(
            "folderName",
            f"folder '{folder}' still holds services.",
            accepted="an empty folder (delete its services first)",
        )
    path = _folders_path(request)
    with af.FOLDERS_LOCK:
        names = af.read_folders(path)
        kept = [n for n in names if n.lower() != folder.lower()]
        if len(kept) == len(names):
            raise FolderNotFound(f"Folder '{folder}' does not exist.")
        af.write_folders(path, kept)
    return _respond(request, params, "deleteFolder", SUCCESS)


async def _bulk_state(
    request: Request, params: Params, state: Literal["STARTED", "STOPPED"]
) -> Response:
    _writer(request)
    accepted = '{"services": [{"folderName": "", "serviceName": "Name", "type": "ImageServer"}]}'
    value = params.json("services", accepted)
    entries = value.get("services") if isinstance(value, dict) else value
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidParameter("services", "must list services.", accepted=accepted)
    found = []
    for e in entries:
        folder = str(e.get("folderName") or "").strip("/")
        segment = f"{e.get('serviceName', '')}.{e.get('type', 'ImageServer')}"
        found.append(await _definition(request, folder, segment))
    for d in found:
        await _set_state(request, d, state)
    return _respond(request, params, "services", SUCCESS)


# -- routes ---------------------------------------------------------------------------------
@router.api_route("/admin", methods=METHODS)
async def admin_root(request: Request) -> Response:
    """``{admin}``: the resources this server has."""
    params = await read_params(request)
    _reader(request)
    version = app_context(request).settings.current_version
    data = {
        "resources": ["services"],
        "currentVersion": version,
        "fullVersion": full_version(version),
    }
    return _respond(request, params, "Site", data, services=f"{root_path(request)}/admin/services")


@router.api_route("/admin/info", methods=METHODS)
async def admin_info(request: Request) -> Response:
    """``{admin}/info``: version and who is signed in."""
    params = await read_params(request)
    principal = _reader(request)
    version = app_context(request).settings.current_version
    data = {
        "currentVersion": version,
        "fullVersion": full_version(version),
        "loggedInUser": principal.username,
        "loggedInUserPrivilege": PRIVILEGE.get(principal.role, "ACCESS"),
    }
    return _respond(request, params, "Info", data)


@router.api_route("/admin/services", methods=METHODS)
async def services_root(request: Request) -> Response:
    """``{admin}/services``: the root folder listing."""
    params = await read_params(request)
    _reader(request)
    return await _listing(request, params, None)


def _segments(request: Request) -> list[str]:
    """The path segments after ``admin/services`` as the client spelled them."""
    parts = [p for p in display_path(request).split("/") if p]
    lowered = [p.lower() for p in parts]
    for i in range(len(lowered) - 1):
        if lowered[i] == "admin" and lowered[i + 1] == "services":
            return parts[i + 2 :]
    return [p for p in str(request.path_params["path"]).split("/") if p]


def _folder_name(segment: str) -> str:
    if not re.match(SERVICE_NAME_PATTERN, segment):
        raise FolderNotFound(f"Folder '{segment[:80]}' does not exist.")
    return segment


@router.api_route("/admin/services/{path:path}", methods=METHODS)
async def services_path(request: Request) -> Response:
    """Everything under ``{admin}/services``: folders, services and their operations."""
    params = await read_params(request)
    _reader(request)
    seg = _segments(request)
    low = [s.lower() for s in seg]
    if len(seg) == 1:
        if low[0] == "createservice":
            return await _create_service(request, params, "")
        if low[0] == "createfolder":
            return await _create_folder(request, params)
        if low[0] in ("startservices", "stopservices"):
            state: Literal["STARTED", "STOPPED"] = (
                "STARTED" if low[0] == "startservices" else "STOPPED"
            )
            return await _bulk_state(request, params, state)
        if "." in seg[0]:
            return await _service(request, params, "", seg[0], None)
        return await _listing(request, params, seg[0])
    if len(seg) == 2:
        if "." in seg[0]:
            return await _service(request, params, "", seg[0], low[1])
        if low[1] == "createservice":
            return await _create_service(request, params, _folder_name(seg[0]))
        if low[1] == "deletefolder":
            return await _delete_folder(request, params, seg[0])
        return await _service(request, params, seg[0], seg[1], None)
    if len(seg) == 3 and "." in seg[1]:
        return await _service(request, params, seg[0], seg[1], low[2])
    raise NotFound("No admin resource at this path.", message="Resource not found.")


@router.api_route("/admin/{rest:path}", methods=METHODS)
async def admin_other(request: Request) -> Response:
    """Other admin resources are not implemented (secured before they are missing)."""
    await read_params(request)
    _reader(request)
    raise NotFound(
        "This admin resource is not available in livemosaic.", message="Resource not found."
    )


__all__ = ["router"]
