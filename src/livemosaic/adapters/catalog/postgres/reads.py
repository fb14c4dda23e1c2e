"""Item reads of the PostgreSQL catalog: queries, counts, aggregates, the summary, history.

Every read runs in one ``REPEATABLE READ`` transaction, so it sees one committed state; the
``FROM … WHERE …`` of a query comes from :func:`.query.item_query_sql`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from livemosaic.adapters.catalog.aggregates import distinct_of, extent_of, statistics_of
from livemosaic.adapters.catalog.postgres.connection import PgConnection, PgPool, as_dbapi
from livemosaic.adapters.catalog.postgres.query import POSTGRES, item_query_sql
from livemosaic.adapters.catalog.rows import item_from_row
from livemosaic.adapters.catalog.sqlwhere import order_clause
from livemosaic.adapters.catalog.summary import read_summary
from livemosaic.core.models import DatasetSummary, Extent, HistoryEntry, MosaicDataset, RasterItem
from livemosaic.core.ports import FieldStatistic, ItemQuery
from livemosaic.errors import DatasetNotFound, ItemNotFound


def _unfiltered(query: ItemQuery) -> bool:
    """True when a query selects every item of its dataset."""
    q = query
    return (
        q.object_ids is None
        and q.extent is None
        and q.time is None
        and q.where is None
        and not q.dimensions
        and q.pixel_size is None
    )


def dataset_from_row(row: Any) -> MosaicDataset:
    """The dataset a row of ``datasets`` stores."""
    return MosaicDataset(
        name=row["name"],
        crs=row["crs"],
        time_pattern=row["time_pattern"],
        time_field=row["time_field"],
        time_format=row["time_format"],
        history_enabled=bool(row["history_enabled"]),
        description=row["description"],
        id=row["id"],
        created=row["created"],
    )


def dataset_not_found(name: str) -> DatasetNotFound:
    """The error for an unknown dataset name."""
    return DatasetNotFound(
        f"Mosaic dataset '{name}' does not exist.",
        next_step=f"Create it with `livemosaic dataset create {name}`.",
    )


class ItemReads:
    """The read half of :class:`~.catalog.PostgresCatalog` (datasets by name, items)."""

    pg: PgPool

    @staticmethod
    def dataset_in(conn: PgConnection, name: str) -> MosaicDataset:
        """The dataset with this name, read in the caller's transaction."""
        row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name.strip(),)).fetchone()
        if row is None:
            raise dataset_not_found(name)
        return dataset_from_row(row)

    def _ds_id(self, conn: PgConnection, name: str) -> int:
        oid = self.dataset_in(conn, name).id
        assert oid is not None
        return oid

    def _find_sql(
        self, conn: PgConnection, dataset: str, query: ItemQuery, select: str = "i.*"
    ) -> tuple[str, list[Any]]:
        ds = self._ds_id(conn, dataset)
        from_where, params = item_query_sql(ds, query)
        order, order_params = order_clause(
            query.order_by, nearest_to=query.nearest_to, nearest_ascending=query.nearest_ascending
        )
        limit = None if query.limit is None else max(int(query.limit), 0)
        sql = f"SELECT {select} {from_where} {order} LIMIT ? OFFSET ?"
        return sql, [*params, *order_params, limit, max(int(query.offset), 0)]

    def find_items(self, dataset: str, query: ItemQuery) -> list[RasterItem]:
        """Items matching a query: O(log n + k) through the spatial and time indexes."""
        with self.pg.read() as conn:
            sql, params = self._find_sql(conn, dataset, query)
            rows = conn.execute(sql, params).fetchall()
        return [item_from_row(r) for r in rows]

    def explain(self, dataset: str, query: ItemQuery) -> list[str]:
        """PostgreSQL's plan of ``find_items`` (one line per plan line)."""
        with self.pg.read() as conn:
            sql, params = self._find_sql(conn, dataset, query)
            rows = conn.execute("EXPLAIN " + sql, params).fetchall()
        return [str(r[0]) for r in rows]

    def count_items(self, dataset: str, query: ItemQuery) -> int:
        """How many items match (offset and limit ignored); O(1) without filters."""
        with self.pg.read() as conn:
            ds = self._ds_id(conn, dataset)
            if _unfiltered(query):
                row = conn.execute(
                    "SELECT item_count FROM summary WHERE dataset_id = ?", (ds,)
                ).fetchone()
            else:
                from_where, params = item_query_sql(ds, query)
                row = conn.execute(f"SELECT count(*) {from_where}", params).fetchone()
        return int(row[0]) if row is not None else 0

    def item_ids(self, dataset: str, query: ItemQuery) -> list[int]:
        """The OBJECTIDs ``find_items`` would return, in its order and page."""
        with self.pg.read() as conn:
            sql, params = self._find_sql(conn, dataset, query, "i.id")
            return [int(r[0]) for r in conn.execute(sql, params).fetchall()]

    def item_extent(self, dataset: str, query: ItemQuery) -> Extent | None:
        """The union of the matching items' extents: the summary's without filters, else
        MIN/MAX over the bounds of the matching rows."""
        with self.pg.read() as conn:
            ds = self._ds_id(conn, dataset)
            if _unfiltered(query):  # the summary keeps it: O(1)
                row = conn.execute(
                    "SELECT item_count, xmin, ymin, xmax, ymax FROM summary WHERE dataset_id = ?",
                    (ds,),
                ).fetchone()
                return None if row is None or row[0] <= 0 else Extent(*map(float, row[1:]))
            from_where, params = item_query_sql(ds, query)
            return extent_of(conn, from_where, params)

    def item_statistics(
        self,
        dataset: str,
        query: ItemQuery,
        statistics: Sequence[FieldStatistic],
        group_by: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Grouped statistics of the matching items, aggregated in SQL."""
        with self.pg.read() as conn:
            from_where, params = item_query_sql(self._ds_id(conn, dataset), query)
            return statistics_of(
                conn, from_where, params, statistics, group_by, query.offset, query.limit, POSTGRES
            )

    def distinct_values(
        self, dataset: str, query: ItemQuery, fields: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """Distinct combinations of fields among the matching items (SQL DISTINCT)."""
        with self.pg.read() as conn:
            from_where, params = item_query_sql(self._ds_id(conn, dataset), query)
            return distinct_of(
                conn,
                from_where,
                params,
                fields,
                query.order_by,
                query.offset,
                query.limit,
                POSTGRES,
            )

    def get_item(self, dataset: str, object_id: int) -> RasterItem:
        """One item (ItemNotFound otherwise)."""
        with self.pg.read() as conn:
            ds = self._ds_id(conn, dataset)
            row = conn.execute(
                "SELECT * FROM items WHERE id = ? AND dataset_id = ?", (int(object_id), ds)
            ).fetchone()
        if row is None:
            raise ItemNotFound(
                f"Item {object_id} does not exist in mosaic dataset '{dataset}'.",
                next_step="Query the catalog for valid OBJECTIDs.",
            )
        return item_from_row(row)

    def summary(self, dataset: str) -> DatasetSummary:
        """The current dataset summary, O(1) in the number of items."""
        with self.pg.read() as conn:
            return read_summary(as_dbapi(conn), self._ds_id(conn, dataset))

    def history(self, dataset: str, limit: int = 100) -> list[HistoryEntry]:
        """Most recent geoprocessing-history entries first."""
        with self.pg.read() as conn:
            ds = self._ds_id(conn, dataset)
            rows = conn.execute(
                "SELECT time, operation, details FROM history WHERE dataset_id = ? "
                "ORDER BY id DESC LIMIT ?",
                (ds, max(int(limit), 0)),
            ).fetchall()
        return [HistoryEntry(r[0], r[1], json.loads(r[2])) for r in rows]
