"""Service definitions and published snapshots in the SQLite catalog."""

from __future__ import annotations

import json
import re
import sqlite3

from livemosaic.adapters.catalog import codec
from livemosaic.adapters.catalog.connection import ConnectionPool
from livemosaic.core.models import SERVICE_NAME_PATTERN, ServiceDefinition, ServiceSnapshot
from livemosaic.core.registry import service_key
from livemosaic.errors import AlreadyExists, DatasetNotFound, InvalidParameter, ServiceNotFound

SNAPSHOTS_KEPT = 10  # older snapshots of a service are pruned


def _qualified(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _service_not_found(folder: str, name: str) -> ServiceNotFound:
    return ServiceNotFound(
        f"Service '{_qualified(folder, name)}.ImageServer' was not found.",
        next_step="List services with `livemosaic service list`.",
    )


class ServiceTables:
    """The service and snapshot half of the SQLite catalog store."""

    _pool: ConnectionPool

    @staticmethod
    def _service_row(conn: sqlite3.Connection, folder: str, name: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM services WHERE folder = ? AND name = ?", (folder, name)
        ).fetchone()
        return row

    def save_service(self, definition: ServiceDefinition, *, create: bool) -> None:
        """Create (create=True, AlreadyExists if present) or create-or-replace a definition."""
        d = definition
        if not re.match(SERVICE_NAME_PATTERN, d.name):
            raise InvalidParameter(
                "serviceName", f"'{d.name}' is not a valid service name.", accepted="A-Z a-z 0-9 _"
            )
        if d.folder and not re.match(SERVICE_NAME_PATTERN, d.folder):
            raise InvalidParameter(
                "folderName", f"'{d.folder}' is not a valid folder name.", accepted="A-Z a-z 0-9 _"
            )
        data = codec.dumps(codec.definition_to_json(d))
        with self._pool.write() as conn:
            if (
                conn.execute("SELECT 1 FROM datasets WHERE name = ?", (d.dataset,)).fetchone()
                is None
            ):
                raise DatasetNotFound(
                    f"Mosaic dataset '{d.dataset}' of service '{d.qualified_name}' does not exist.",
                    next_step=f"Create it with `livemosaic dataset create {d.dataset}`.",
                )
            row = self._service_row(conn, d.folder, d.name)
            if row is not None and create:
                raise AlreadyExists(
                    f"Service '{_qualified(row['folder'], row['name'])}' exists already.",
                    next_step="Choose another name, or update the existing service.",
                )
            if row is None:
                conn.execute(
                    "INSERT INTO services (folder, name, dataset, definition) VALUES (?, ?, ?, ?)",
                    (d.folder, d.name, d.dataset, data),
                )
            else:
                conn.execute(
                    "UPDATE services SET folder = ?, name = ?, dataset = ?, definition = ? "
                    "WHERE id = ?",
                    (d.folder, d.name, d.dataset, data, row["id"]),
                )

    def get_service(self, folder: str, name: str) -> ServiceDefinition:
        """A service by folder and name, case-insensitive (ServiceNotFound otherwise)."""
        with self._pool.read() as conn:
            row = self._service_row(conn, folder, name)
        if row is None:
            raise _service_not_found(folder, name)
        return codec.definition_from_json(json.loads(row["definition"]))

    def list_services(self) -> list[ServiceDefinition]:
        """Every service, by folder then name."""
        with self._pool.read() as conn:
            rows = conn.execute("SELECT definition FROM services ORDER BY folder, name").fetchall()
        return [codec.definition_from_json(json.loads(r[0])) for r in rows]

    def delete_service(self, folder: str, name: str) -> None:
        """Delete a service definition and its snapshots (not the dataset)."""
        with self._pool.write() as conn:
            row = self._service_row(conn, folder, name)
            if row is None:
                raise _service_not_found(folder, name)
            conn.execute("DELETE FROM snapshots WHERE service_id = ?", (row["id"],))
            conn.execute("DELETE FROM services WHERE id = ?", (row["id"],))

    def save_snapshot(self, snapshot: ServiceSnapshot) -> ServiceSnapshot:
        """Persist a published snapshot; its version must exceed the stored one."""
        d = snapshot.definition
        data = codec.dumps(codec.snapshot_to_json(snapshot))
        with self._pool.write() as conn:
            row = self._service_row(conn, d.folder, d.name)
            if row is None:
                raise _service_not_found(d.folder, d.name)
            sid = row["id"]
            stored = conn.execute(
                "SELECT MAX(version) FROM snapshots WHERE service_id = ?", (sid,)
            ).fetchone()[0]
            if stored is not None and snapshot.version <= stored:
                raise AlreadyExists(
                    f"Service '{d.qualified_name}' already has snapshot version {stored}; "
                    f"version {snapshot.version} is not newer.",
                    next_step="Reload the latest snapshot and refresh again.",
                )
            conn.execute(
                "INSERT INTO snapshots (service_id, version, published_at, data) "
                "VALUES (?, ?, ?, ?)",
                (sid, snapshot.version, snapshot.published_at, data),
            )
            conn.execute(
                "DELETE FROM snapshots WHERE service_id = ?1 AND id NOT IN (SELECT id FROM "
                "snapshots WHERE service_id = ?1 ORDER BY version DESC LIMIT ?2)",
                (sid, SNAPSHOTS_KEPT),
            )
        return snapshot

    def latest_snapshot(self, folder: str, name: str) -> ServiceSnapshot | None:
        """The last persisted snapshot of a service, if any."""
        with self._pool.read() as conn:
            row = conn.execute(
                "SELECT s.data FROM snapshots AS s JOIN services AS v ON v.id = s.service_id "
                "WHERE v.folder = ? AND v.name = ? ORDER BY s.version DESC LIMIT 1",
                (folder, name),
            ).fetchone()
        return None if row is None else codec.snapshot_from_json(json.loads(row[0]))

    def snapshot_versions(self) -> dict[str, int]:
        """The newest stored snapshot version of every service, by registry key.

        One query over the services table, each maximum read from the (service_id, version)
        index: cheap enough to poll a few times a second, so every server process notices a
        refresh done by another one and loads the stored snapshot.
        """
        with self._pool.read() as conn:
            rows = conn.execute(
                "SELECT v.folder, v.name, (SELECT MAX(s.version) FROM snapshots AS s "
                "WHERE s.service_id = v.id) AS version FROM services AS v"
            ).fetchall()
        return {service_key(f, n): int(ver) for f, n, ver in rows if ver is not None}
