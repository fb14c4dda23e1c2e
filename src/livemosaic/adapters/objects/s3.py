"""S3 (and S3-compatible servers) through boto3, configured as GDAL's ``/vsis3/`` is.

The same environment variables configure both, so the ingestor lists exactly what GDAL later
reads: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` (or a profile),
``AWS_REGION`` / ``AWS_DEFAULT_REGION``, and for S3-compatible servers ``AWS_S3_ENDPOINT``
(``host:port``), ``AWS_HTTPS=NO`` for plain HTTP and ``AWS_VIRTUAL_HOSTING=FALSE`` for
path-style addressing. Nothing of it is stored in the catalog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from livemosaic.core.objects import ObjectStore, StoredObject, normalise_prefix
from livemosaic.errors import InvalidParameter, NotFound, RasterRejected

CHECK = "Check the credentials (AWS_ACCESS_KEY_ID, …), AWS_S3_ENDPOINT and AWS_HTTPS."

PREFIX = "/vsis3/"


def _split(name: str) -> tuple[str, str]:
    bucket, _, key = name[len(PREFIX) :].partition("/")
    return bucket, key


class S3ObjectStore:
    """Lists and describes S3 objects (``/vsis3/bucket/key`` names)."""

    def __init__(self, env: Mapping[str, str] | None = None, *, timeout: float = 30.0) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # the s3 extra is not installed
            raise InvalidParameter(
                "object_store_prefixes",
                "listing S3 objects needs boto3, which is not installed.",
                accepted="pip install 'livemosaic[s3]'",
            ) from exc
        env = os.environ if env is None else env
        endpoint = env.get("AWS_S3_ENDPOINT")
        scheme = (
            "http" if env.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF") else "https"
        )
        virtual = env.get("AWS_VIRTUAL_HOSTING", "TRUE").upper() not in ("NO", "FALSE", "OFF")
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 3},
            s3={"addressing_style": "virtual" if virtual else "path"},
        )
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=f"{scheme}://{endpoint}" if endpoint else None,
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            config=config,
        )

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` (``/vsis3/bucket/folder/``), sorted by name."""
        bucket, key = _split(prefix)
        out: list[StoredObject] = []
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        try:
            for page in pages:
                for entry in page.get("Contents", []):
                    if not entry["Key"].endswith("/"):
                        out.append(_stored(bucket, entry["Key"], entry))
        except self._client.exceptions.NoSuchBucket as exc:
            raise NotFound(f"The bucket of {prefix} does not exist.") from exc
        except Exception as exc:  # network, credentials: say which store failed
            raise RasterRejected(prefix, f"cannot be listed ({exc}).", next_step=CHECK) from exc
        return sorted(out, key=lambda o: o.name)

    def stat(self, name: str) -> StoredObject:
        """One object's size and modification time."""
        bucket, key = _split(name)
        try:
            head = self._client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise NotFound(f"{name} does not exist.") from exc
            raise RasterRejected(name, f"cannot be read ({exc}).", next_step=CHECK) from exc
        return _stored(bucket, key, {"Size": head["ContentLength"], **head})


def _stored(bucket: str, key: str, entry: Mapping[str, Any]) -> StoredObject:
    modified = entry["LastModified"]
    return StoredObject(
        name=f"{PREFIX}{bucket}/{key}",
        size=int(entry["Size"]),
        mtime_ns=int(modified.timestamp() * 1e9),
    )


def object_store_for(prefixes: Sequence[str], *, timeout: float = 30.0) -> ObjectStore | None:
    """The object store the registered prefixes need (None when none is registered)."""
    names = [normalise_prefix(p) for p in prefixes]
    if not names:
        return None
    if any(not n.startswith(PREFIX) for n in names):
        raise InvalidParameter(
            "object_store_prefixes",
            "only S3 prefixes (s3://bucket/folder/ or /vsis3/bucket/folder/) can be listed.",
        )
    return S3ObjectStore(timeout=timeout)


__all__ = ["S3ObjectStore", "object_store_for"]
