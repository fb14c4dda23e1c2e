"""Items whose files are missing: the catalog still lists them, but there are no pixels.

A file deleted or renamed away keeps its items unless a watch rule removes them
(``remove_missing``); exports skip such items (and draw a hole). :func:`missing_files`
lists them, file by file, for ``livemosaic dataset missing`` and
``{root}/livemosaic/missing``. It reads the catalog page by page in OBJECTID order and checks
each distinct file once: its cost grows with the dataset's size, so it is an administrator's
tool, not something run per request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livemosaic.core.ports import CatalogStore, ItemQuery
from livemosaic.core.where_ast import Compare, Field, Literal_

PAGE_SIZE = 1000


@dataclass(slots=True)
class MissingFile:
    """A file the catalog references that is not there any more."""

    path: str
    item_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class MissingReport:
    """The missing files of a dataset (at most ``limit``), and whether there are more."""

    dataset: str
    files: list[MissingFile]
    items_checked: int
    exceeded: bool

    def to_json(self) -> dict[str, Any]:
        """The JSON form (CLI ``--json`` and ``{root}/livemosaic/missing``)."""
        return {
            "dataset": self.dataset,
            "files": [{"path": f.path, "itemIds": f.item_ids} for f in self.files],
            "itemsChecked": self.items_checked,
            "exceededTransferLimit": self.exceeded,
        }


def missing_files(
    catalog: CatalogStore,
    dataset: str,
    *,
    limit: int | None = None,
    exists: Callable[[str], bool] = os.path.lexists,
) -> MissingReport:
    """The files of ``dataset`` that are missing, in OBJECTID order of their first item."""
    found: dict[str, MissingFile] = {}
    present: set[str] = set()
    checked = 0
    last = 0
    while True:
        after = Compare(">", Field("OBJECTID"), Literal_(last))
        query = ItemQuery(where=after, order_by=(("OBJECTID", True),), limit=PAGE_SIZE)
        page = catalog.find_items(dataset, query)
        for item in page:
            checked += 1
            last = max(last, item.id or 0)
            if item.path in present:
                continue
            entry = found.get(item.path)
            if entry is None:
                if exists(item.path):
                    present.add(item.path)
                    continue
                if limit is not None and len(found) >= limit:
                    return MissingReport(dataset, list(found.values()), checked, True)
                entry = found[item.path] = MissingFile(item.path)
            if item.id is not None:
                entry.item_ids.append(item.id)
        if len(page) < PAGE_SIZE:
            return MissingReport(dataset, list(found.values()), checked, False)


__all__ = ["PAGE_SIZE", "MissingFile", "MissingReport", "missing_files"]
