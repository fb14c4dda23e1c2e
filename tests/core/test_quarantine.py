"""The quarantine's file moves on a real folder: no move under a writer, no file replaced."""

from __future__ import annotations

import os
from pathlib import Path

from livemosaic.core.quarantine import file_version, move_aside, move_back


def test_a_file_that_changed_since_its_check_is_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "scene.tif"
    path.write_bytes(b"half")
    version = file_version(str(path))
    assert version is not None
    with path.open("ab") as fh:  # the writer came back
        fh.write(b" and more")
    target = tmp_path / ".quarantine" / "scene.tif"
    assert move_aside(str(path), str(target), version).result == "changed"
    assert path.exists() and not target.exists()
    again = file_version(str(path))
    assert again is not None
    assert move_aside(str(path), str(target), again).result == "moved"
    assert target.read_bytes() == b"half and more" and not path.exists()


def test_a_file_replaced_by_another_inode_is_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "scene.tif"
    path.write_bytes(b"same")
    version = file_version(str(path))
    assert version is not None
    other = tmp_path / "other.tif"
    other.write_bytes(b"same")
    os.utime(other, ns=(version[1], version[1]))  # same size and mtime, another file
    os.replace(other, path)
    assert move_aside(str(path), str(tmp_path / "q" / "scene.tif"), version).result == "changed"


def test_move_back_never_replaces_and_finishes_an_interrupted_move(tmp_path: Path) -> None:
    moved = tmp_path / "q" / "scene.tif"
    moved.parent.mkdir()
    moved.write_bytes(b"quarantined")
    path = tmp_path / "scene.tif"
    path.write_bytes(b"delivered again")
    assert move_back(str(moved), str(path)) is False
    assert path.read_bytes() == b"delivered again" and moved.exists()
    path.unlink()
    os.link(moved, path)  # a move back interrupted between its two steps
    assert move_back(str(moved), str(path)) is True
    assert path.read_bytes() == b"quarantined" and not moved.exists()
    assert move_back(str(moved), str(path)) is False  # gone from the quarantine
