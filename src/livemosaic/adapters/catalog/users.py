"""Users in the SQLite catalog database: name, role, password hash and token epoch.

Usernames are case-sensitive, as in ArcGIS: ``Ops`` and ``ops`` are two users. Only hashes
made by :func:`livemosaic.core.security.hash_password` are stored, never passwords.
"""

from __future__ import annotations

import re
import sqlite3
from typing import cast

from livemosaic.adapters.catalog.connection import ConnectionPool, now_ms
from livemosaic.core.security import ROLES, Role, User
from livemosaic.errors import AlreadyExists, InvalidParameter, NotFound

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$"
USERNAME_FORM = "1-128 characters: letters, digits and . _ @ + - (starting with a letter or digit)"


def validate_username(username: str) -> str:
    """The username unchanged if it is acceptable (InvalidParameter otherwise)."""
    if not re.match(USERNAME_PATTERN, username):
        raise InvalidParameter(
            "username", f"'{username}' is not a valid user name.", accepted=USERNAME_FORM
        )
    return username


def validate_role(role: str) -> Role:
    """The role if it is one of user, publisher, administrator (InvalidParameter otherwise)."""
    if role not in ROLES:
        raise InvalidParameter("role", f"'{role}' is not a role.", accepted=" | ".join(ROLES))
    return role


def user_not_found(username: str) -> NotFound:
    """The error for an unknown user name."""
    return NotFound(
        f"User '{username}' does not exist (user names are case-sensitive).",
        next_step="List users with `livemosaic user list`.",
        message="User not found.",
    )


def _user_from_row(row: sqlite3.Row) -> User:
    return User(
        username=row["username"],
        role=cast(Role, row["role"]),
        password_hash=row["password_hash"],
        token_epoch=int(row["token_epoch"]),
        disabled=bool(row["disabled"]),
        created=row["created"],
    )


class SqliteUserStore:
    """A :class:`~livemosaic.core.ports.UserStore` in the catalog database."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def add_user(self, user: User) -> None:
        """Create a user (AlreadyExists if the name is taken)."""
        validate_username(user.username)
        validate_role(user.role)
        if not user.password_hash:
            raise InvalidParameter("password", "a user needs a password hash.")
        created = user.created if user.created is not None else now_ms()
        with self._pool.write() as conn:
            row = conn.execute(
                "SELECT 1 FROM users WHERE username = ?", (user.username,)
            ).fetchone()
            if row is not None:
                raise AlreadyExists(
                    f"User '{user.username}' exists already.",
                    next_step=f"Choose another name, or change this user with `livemosaic user "
                    f"passwd {user.username}` or `livemosaic user role {user.username} ROLE`.",
                )
            conn.execute(
                "INSERT INTO users (username, role, password_hash, token_epoch, disabled, "
                "created) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    user.username,
                    user.role,
                    user.password_hash,
                    user.token_epoch,
                    int(user.disabled),
                    created,
                ),
            )

    def get_user(self, username: str) -> User:
        """A user by exact name (NotFound otherwise)."""
        with self._pool.read() as conn:
            row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        if row is None:
            raise user_not_found(username)
        return _user_from_row(row)

    def list_users(self) -> list[User]:
        """All users by name."""
        with self._pool.read() as conn:
            rows = conn.execute("SELECT * FROM users ORDER BY username").fetchall()
        return [_user_from_row(r) for r in rows]

    def save_user(self, user: User) -> None:
        """Replace a user's role, hash, epoch or disabled flag (NotFound if absent)."""
        validate_role(user.role)
        if not user.password_hash:
            raise InvalidParameter("password", "a user needs a password hash.")
        with self._pool.write() as conn:
            cur = conn.execute(
                "UPDATE users SET role = ?, password_hash = ?, token_epoch = ?, disabled = ? "
                "WHERE username = ?",
                (
                    user.role,
                    user.password_hash,
                    user.token_epoch,
                    int(user.disabled),
                    user.username,
                ),
            )
            if cur.rowcount == 0:
                raise user_not_found(user.username)

    def remove_user(self, username: str) -> None:
        """Delete a user (NotFound otherwise)."""
        with self._pool.write() as conn:
            cur = conn.execute("DELETE FROM users WHERE username = ?", (username,))
            if cur.rowcount == 0:
                raise user_not_found(username)

    def close(self) -> None:
        """Nothing to release: the connection pool belongs to the catalog store."""
