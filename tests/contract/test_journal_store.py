"""IngestJournal: per-file states, and commit as one unit of work with the items."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from livemosaic.core.models import Extent
from livemosaic.core.ports import ItemQuery, JournalEntry, JournalState, RemoveFilter
from livemosaic.errors import DatasetNotFound, LiveMosaicError, RasterRejected
from tests.contract.items import dataset, item
from tests.contract.stores import StoreSet


def entry(path: str, state: JournalState = "pending", ds: str = "ds", **kw: Any) -> JournalEntry:
    """A journal entry for version (100, 1) of a file."""
    return JournalEntry(ds, path, 100, 1, state, **kw)


def test_entries_are_recorded_looked_up_listed_and_forgotten(stores: StoreSet) -> None:
    j = stores.journal
    stores.catalog.create_dataset(dataset("Ds"))
    stores.catalog.create_dataset(dataset("other"))
    j.record(
        [
            entry("/in/b.tif", first_seen=10, updated=10),
            entry("/in/a.tif", "quarantined", reason="no georeferencing", moved_to="/q/a.tif"),
            entry("/in/sub/c.tif", "added", item_count=2),
            entry("/in2/d.tif", ds="other"),
        ]
    )
    found = j.lookup("ds", ["/in/a.tif", "/in/b.tif", "/in/none.tif"])
    assert set(found) == {"/in/a.tif", "/in/b.tif"}
    a = found["/in/a.tif"]
    assert (a.dataset, a.state, a.reason, a.moved_to, a.key) == (
        "Ds",
        "quarantined",
        "no georeferencing",
        "/q/a.tif",
        (100, 1),
    )
    assert a.first_seen > 0 and a.updated > 0

    j.record([replace(found["/in/b.tif"], state="added", size=200, first_seen=99, updated=20)])
    b = j.lookup("ds", ["/in/b.tif"])["/in/b.tif"]
    assert (b.state, b.size, b.first_seen, b.updated) == ("added", 200, 10, 20)  # first kept

    assert [e.path for e in j.entries()] == [
        "/in/a.tif",
        "/in/b.tif",
        "/in/sub/c.tif",
        "/in2/d.tif",
    ]
    assert [e.path for e in j.entries("DS")] == ["/in/a.tif", "/in/b.tif", "/in/sub/c.tif"]
    assert [e.path for e in j.entries(state="added")] == ["/in/b.tif", "/in/sub/c.tif"]
    assert [e.path for e in j.entries(under="/in")] == ["/in/a.tif", "/in/b.tif", "/in/sub/c.tif"]
    assert [e.path for e in j.entries(under="/in/sub/")] == ["/in/sub/c.tif"]
    assert [e.path for e in j.entries(limit=1)] == ["/in/a.tif"]
    assert [e.item_count for e in j.entries("ds", "added")] == [0, 2]

    assert j.forget("ds", state="quarantined") == 1
    assert j.forget(paths=["/in/b.tif", "/in2/d.tif"]) == 2
    assert [e.path for e in j.entries()] == ["/in/sub/c.tif"]
    assert j.forget() == 1
    assert j.entries() == []


def test_journal_methods_name_an_unknown_dataset(stores: StoreSet) -> None:
    j = stores.journal
    for call in (
        lambda: j.lookup("nope", ["/a.tif"]),
        lambda: j.record([entry("/a.tif", ds="nope")]),
        lambda: j.commit("nope", [item(1)], [entry("/data/in/1.tif", "added", ds="nope")]),
        lambda: j.entries("nope"),
        lambda: j.forget("nope"),
    ):
        with pytest.raises(DatasetNotFound):
            call()


def test_commit_adds_items_and_their_entries_together(stores: StoreSet) -> None:
    cat, j = stores.catalog, stores.journal
    cat.create_dataset(dataset())
    j.record([entry("/data/in/1.tif"), entry("/data/in/2.tif")])
    result = j.commit(
        "ds",
        [item(1), item(2)],
        [entry("/data/in/1.tif", "added", item_count=1), entry("/data/in/2.tif", "added")],
    )
    assert len(result.added) == 2
    assert cat.count_items("ds", ItemQuery()) == 2 and cat.summary("ds").item_count == 2
    assert cat.file_state("ds", "/data/in/1.tif") == (100, 1)
    assert {e.state for e in j.entries("ds")} == {"added"}
    assert cat.history("ds")[0].operation == "add"

    again = j.commit("ds", [item(1)], [entry("/data/in/1.tif", "added")])
    assert again.added == () and again.skipped_paths == ("/data/in/1.tif",)
    only_rows = j.commit("ds", [], [entry("/data/in/3.tif", "quarantined", reason="bad")])
    assert only_rows.added == () and j.lookup("ds", ["/data/in/3.tif"])


def test_a_failed_commit_leaves_neither_items_nor_entries(stores: StoreSet) -> None:
    cat, j = stores.catalog, stores.journal
    cat.create_dataset(dataset())
    j.record([entry("/data/in/1.tif")])
    before = cat.summary("ds")

    bad_item = replace(item(2), extent=Extent(5, 5, 1, 1))
    with pytest.raises(RasterRejected):
        j.commit(
            "ds",
            [item(1), bad_item],
            [entry("/data/in/1.tif", "added"), entry("/data/in/2.tif", "added")],
        )
    # the items are written first; a journal row the store refuses must undo them
    bad_entry = entry("/data/in/2.tif", "bogus")  # type: ignore[arg-type]
    with pytest.raises(LiveMosaicError):
        j.commit("ds", [item(1), item(2)], [entry("/data/in/1.tif", "added"), bad_entry])

    assert cat.count_items("ds", ItemQuery()) == 0
    assert cat.summary("ds").version == before.version and cat.summary("ds").item_count == 0
    assert cat.file_state("ds", "/data/in/1.tif") is None
    assert [(e.path, e.state) for e in j.entries("ds")] == [("/data/in/1.tif", "pending")]
    assert [h.operation for h in cat.history("ds")] == ["create"]


def test_deleting_a_dataset_deletes_its_journal(stores: StoreSet) -> None:
    cat, j = stores.catalog, stores.journal
    cat.create_dataset(dataset())
    j.commit("ds", [item(1)], [entry("/data/in/1.tif", "added")])
    j.record([entry("/data/in/2.tif", "quarantined")])
    cat.remove_items("ds", RemoveFilter(path="/data/"))
    cat.delete_dataset("ds")
    cat.create_dataset(dataset())
    assert j.entries() == []
    assert j.lookup("ds", ["/data/in/1.tif", "/data/in/2.tif"]) == {}
