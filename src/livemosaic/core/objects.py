"""Rasters in object storage: names, prefixes and the port that lists and describes objects.

An item may reference an object instead of a file: ``s3://bucket/key`` is stored and read as
GDAL's ``/vsis3/bucket/key``. Like data folders, object-store prefixes are registered
(``object_store_prefixes``): nothing outside them is listed, added or read. Credentials come
from the environment of the process (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_S3_ENDPOINT``, …, which GDAL reads too) and are never stored in
the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from livemosaic.errors import PathNotAllowed

# URI scheme → GDAL virtual file system prefix
SCHEMES = {"s3://": "/vsis3/"}


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as the catalog records a file: GDAL name, size and modification time."""

    name: str  # /vsis3/bucket/key
    size: int
    mtime_ns: int


class ObjectStore(Protocol):
    """Lists and describes objects of a store (S3 and S3-compatible servers)."""

    def list(self, prefix: str) -> list[StoredObject]:
        """The objects whose GDAL name starts with ``prefix``, sorted by name."""
        ...

    def stat(self, name: str) -> StoredObject:
        """One object (NotFound when there is none)."""
        ...


def gdal_name(text: str) -> str | None:
    """The GDAL name of an object URI (``s3://b/k`` → ``/vsis3/b/k``; a ``/vsis3/`` name is
    kept), or None for a local path."""
    for scheme, prefix in SCHEMES.items():
        if text.startswith(scheme):
            return prefix + text[len(scheme) :]
        if text.startswith(prefix):
            return text
    return None


def normalise_prefix(text: str) -> str:
    """An object-store prefix setting as a GDAL name ending in ``/``."""
    name = gdal_name(text) or text
    return name if name.endswith("/") else name + "/"


def object_inside(name: str, prefixes: Sequence[str]) -> bool:
    """True when ``name`` lies under one of ``prefixes`` (GDAL names ending in ``/``), with no
    ``..`` or ``.`` segments, encoded dots, queries or fragments that could lead elsewhere."""
    for prefix in prefixes:
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            return not (
                any(seg in (".", "..") for seg in rest.split("/"))
                or any(c in rest for c in ("?", "#", "\\", "@"))
                or "%2e" in rest.lower()
                or any(ord(c) < 32 for c in rest)
            )
    return False


def check_allowed_object(name: str, prefixes: Sequence[str]) -> str:
    """``name`` when it lies under a registered prefix, else PathNotAllowed."""
    if not object_inside(name, [normalise_prefix(p) for p in prefixes]):
        raise PathNotAllowed(name, kind="object-store prefix")
    return name


__all__ = [
    "SCHEMES",
    "ObjectStore",
    "StoredObject",
    "check_allowed_object",
    "gdal_name",
    "normalise_prefix",
    "object_inside",
]
