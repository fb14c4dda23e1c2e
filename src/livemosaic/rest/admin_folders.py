"""Admin folder listings (spec 9.2) and the folders made by ``createFolder``.

Folders exist while they hold a service; ``createFolder`` also records a folder in
``<data_dir>/admin_folders.json`` so it exists while still empty. ``System`` always exists
and holds the ``PublishingTools`` GP service.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from livemosaic.core.models import ServiceDefinition
from livemosaic.rest.auth import SYSTEM_FOLDER

FOLDERS_FILE = "admin_folders.json"
FOLDERS_LOCK = threading.Lock()  # createFolder/deleteFolder of this process, one at a time
GP_SERVICE = "PublishingTools"
GP_DESCRIPTION = "Publishing tools: Refresh Service."


def read_folders(path: Path) -> list[str]:
    """Folders created with createFolder (they exist even while empty)."""
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def write_folders(path: Path, names: Iterable[str]) -> None:
    """Replace the created-folders file atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sorted(set(names), key=str.lower)), encoding="utf-8")
    os.replace(tmp, path)


def all_folders(services: Sequence[ServiceDefinition], created: Iterable[str]) -> list[str]:
    """Every folder: those holding services, those created, and System."""
    names = {d.folder for d in services if d.folder}
    names.update(created)
    names.add(SYSTEM_FOLDER)
    return sorted(names, key=str.lower)


def service_entry(d: ServiceDefinition) -> dict[str, Any]:
    """One service of a folder listing."""
    return {
        "folderName": d.folder or "/",
        "serviceName": d.name,
        "type": "ImageServer",
        "description": d.description,
    }


def gp_entry() -> dict[str, Any]:
    """The PublishingTools GP service in the System folder listing."""
    return {
        "folderName": SYSTEM_FOLDER,
        "serviceName": GP_SERVICE,
        "type": "GPServer",
        "description": GP_DESCRIPTION,
    }


def root_listing(services: Sequence[ServiceDefinition], folders: Sequence[str]) -> dict[str, Any]:
    """``{admin}/services``: folders and the root folder's services."""
    return {
        "folderName": "/",
        "description": "Root folder",
        "webEncrypted": False,
        "isDefault": True,
        "folders": list(folders),
        "foldersDetail": [
            {"folderName": f, "description": "", "webEncrypted": False, "isDefault": False}
            for f in folders
        ],
        "services": [service_entry(d) for d in services if not d.folder],
    }


def folder_listing(folder: str, services: Sequence[ServiceDefinition]) -> dict[str, Any]:
    """``{admin}/services/{folder}``: the services of one folder."""
    entries = [service_entry(d) for d in services if d.folder.lower() == folder.lower()]
    if folder == SYSTEM_FOLDER:
        entries.append(gp_entry())
    return {
        "folderName": folder,
        "description": "",
        "webEncrypted": False,
        "isDefault": False,
        "services": entries,
    }


__all__ = [
    "FOLDERS_FILE",
    "FOLDERS_LOCK",
    "GP_SERVICE",
    "all_folders",
    "folder_listing",
    "gp_entry",
    "read_folders",
    "root_listing",
    "service_entry",
    "write_folders",
]
