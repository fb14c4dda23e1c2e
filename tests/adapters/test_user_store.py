"""The SQLite user store against a real catalog database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.core.security import User, hash_password, verify_password
from livemosaic.errors import AlreadyExists, InvalidParameter, NotFound

HASH = hash_password("correct horse")


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    """The catalog database of one test (another module runs these tests on PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def stores(catalog_url: str) -> Iterator[Stores]:
    s = open_stores(catalog_url)
    yield s
    s.close()


def test_users_round_trip_and_persist(catalog_url: str) -> None:
    db = catalog_url
    s = open_stores(db)
    ops = User("ops", "publisher", HASH, token_epoch=3, disabled=False, created=1234)
    s.users.add_user(ops)
    s.users.add_user(User("admin", "administrator", HASH))
    s.close()
    again = open_stores(db)
    try:
        assert again.users.get_user("ops") == ops
        admin = again.users.get_user("admin")
        assert admin.role == "administrator" and admin.created is not None and admin.created > 0
        assert [u.username for u in again.users.list_users()] == ["admin", "ops"]
        assert verify_password("correct horse", admin.password_hash)
    finally:
        again.close()


def test_names_are_case_sensitive_and_unique(stores: Stores) -> None:
    users = stores.users
    users.add_user(User("Ops", "user", HASH))
    users.add_user(User("ops", "publisher", HASH))
    assert users.get_user("Ops").role == "user"
    assert users.get_user("ops").role == "publisher"
    with pytest.raises(NotFound, match="case-sensitive") as info:
        users.get_user("OPS")
    assert "livemosaic user list" in str(info.value)
    with pytest.raises(AlreadyExists, match="exists already") as exists:
        users.add_user(User("ops", "administrator", HASH))
    assert "livemosaic user passwd ops" in str(exists.value)
    assert users.get_user("ops").role == "publisher"


def test_save_and_remove(stores: Stores) -> None:
    users = stores.users
    users.add_user(User("ops", "user", HASH, created=1))
    changed = replace(
        users.get_user("ops"),
        role="administrator",
        password_hash=hash_password("another one"),
        token_epoch=1,
        disabled=True,
    )
    users.save_user(changed)
    assert users.get_user("ops") == changed
    users.remove_user("ops")
    assert users.list_users() == []
    with pytest.raises(NotFound):
        users.remove_user("ops")
    with pytest.raises(NotFound):
        users.save_user(changed)


@pytest.mark.parametrize("name", ["", " ops", "ops ", "a b", "x" * 129, "-dash", "tab\there", "é"])
def test_bad_names_are_refused(stores: Stores, name: str) -> None:
    with pytest.raises(InvalidParameter, match="username"):
        stores.users.add_user(User(name, "user", HASH))
    assert stores.users.list_users() == []


def test_bad_roles_and_missing_hashes_are_refused(stores: Stores) -> None:
    with pytest.raises(InvalidParameter, match="'root' is not a role"):
        stores.users.add_user(User("ops", "root", HASH))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="password"):
        stores.users.add_user(User("ops", "user", ""))
    stores.users.add_user(User("ops", "user", HASH))
    with pytest.raises(InvalidParameter, match="role"):
        stores.users.save_user(User("ops", "superuser", HASH))  # type: ignore[arg-type]
    assert stores.users.get_user("ops").role == "user"


def test_the_database_itself_refuses_unknown_roles(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    open_stores(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO users (username, role, password_hash, created) VALUES ('x', 'root', 'h', 0)"
        )
    conn.close()
