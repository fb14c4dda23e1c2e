"""``livemosaic user …``: the people who sign in for tokens, and the first administrator.

Passwords never appear on the command line (where other users could read them in the
process list): they come from standard input (``--password-stdin``), the environment
(``LIVEMOSAIC_NEW_PASSWORD``) or a hidden prompt. Only salted scrypt hashes are stored, and
``passwd`` and ``role`` bump the user's token epoch, which revokes every token issued before.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from livemosaic.cli.context import CliState, echo_json, fail, pass_state
from livemosaic.core.ports import UserStore
from livemosaic.core.security import ROLES, Role, User, hash_password
from livemosaic.errors import AlreadyExists, InvalidParameter, LiveMosaicError, NotFound

if TYPE_CHECKING:
    from livemosaic.adapters.catalog import Stores

MIN_PASSWORD_LENGTH = 8
NEW_PASSWORD_ENV = "LIVEMOSAIC_NEW_PASSWORD"
ADMIN_USERNAME_ENV = "LIVEMOSAIC_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "LIVEMOSAIC_ADMIN_PASSWORD"
ADMINISTRATOR: Role = "administrator"


def check_password(password: str) -> str:
    """The password unchanged if it is long enough (InvalidParameter otherwise)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidParameter(
            "password",
            f"it has {len(password)} characters; at least {MIN_PASSWORD_LENGTH} are required.",
            accepted=f"a password of {MIN_PASSWORD_LENGTH} or more characters",
        )
    return password


def _check_username(username: str) -> str:
    from livemosaic.adapters.catalog.users import validate_username

    return validate_username(username)


def _prompt_check(check: Callable[[str], str]) -> Callable[[str], str]:
    """A click ``value_proc`` that asks again when ``check`` rejects the value."""

    def proc(value: str) -> str:
        try:
            return check(value)
        except InvalidParameter as exc:
            raise click.UsageError(str(exc)) from None

    return proc


def prompt_password(label: str = "Password") -> str:
    """A new password from a hidden prompt, typed twice (asks again until it is acceptable)."""
    while True:
        first = str(click.prompt(label, hide_input=True))
        try:
            check_password(first)
        except InvalidParameter as exc:
            click.echo(f"Error: {exc}", err=True)
            continue
        if str(click.prompt("Repeat for confirmation", hide_input=True)) == first:
            return first
        click.echo("Error: the two entries do not match.", err=True)


def read_new_password(from_stdin: bool) -> str:
    """A new password: first line of stdin, else $LIVEMOSAIC_NEW_PASSWORD, else a prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        return check_password(line.rstrip("\r\n"))
    env = os.environ.get(NEW_PASSWORD_ENV)
    if env:
        return check_password(env)
    return prompt_password()


def user_store(state: CliState) -> UserStore:
    """The user store of the configured catalog database (opened once per command)."""
    stores: Stores | None = state.extra.get("stores")
    if stores is None:
        from livemosaic.adapters.catalog import open_stores

        state.settings.data_dir.mkdir(parents=True, exist_ok=True)
        stores = open_stores(state.settings.effective_catalog_url)
        state.extra["stores"] = stores
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.find_root().call_on_close(stores.close)
    return stores.users


def administrators(users: UserStore) -> list[str]:
    """Names of the enabled administrators."""
    return [u.username for u in users.list_users() if u.role == ADMINISTRATOR and not u.disabled]


def _refuse_last_administrator(users: UserStore, username: str, action: str) -> None:
    if administrators(users) == [username]:
        raise InvalidParameter(
            "username",
            f"'{username}' is the only administrator and cannot be {action}.",
            accepted="add another administrator first "
            "(`livemosaic user add NAME --role administrator`)",
        )


def ensure_first_admin(
    users: UserStore, *, username: str | None, password: str | None, interactive: bool
) -> str | None:
    """Create the first administrator unless one exists; returns the name created, if any.

    The name and password come from the arguments, else from $LIVEMOSAIC_ADMIN_USERNAME and
    $LIVEMOSAIC_ADMIN_PASSWORD (automation), else from prompts when ``interactive``. Without
    any of these nothing is created and None is returned.
    """
    if administrators(users):
        return None
    username = username or os.environ.get(ADMIN_USERNAME_ENV) or None
    password = password or os.environ.get(ADMIN_PASSWORD_ENV) or None
    if username is None and password is None and not interactive:
        return None
    if username is None:
        if not interactive:
            raise InvalidParameter(
                "username",
                f"{ADMIN_PASSWORD_ENV} is set but {ADMIN_USERNAME_ENV} is not.",
                accepted=f"both {ADMIN_USERNAME_ENV} and {ADMIN_PASSWORD_ENV}",
            )
        username = str(
            click.prompt(
                "Administrator user name",
                default="admin",
                value_proc=_prompt_check(_check_username),
            )
        )
    _check_username(username)
    if password is None:
        if not interactive:
            raise InvalidParameter(
                "password",
                f"{ADMIN_USERNAME_ENV} is set but {ADMIN_PASSWORD_ENV} is not.",
                accepted=f"both {ADMIN_USERNAME_ENV} and {ADMIN_PASSWORD_ENV}",
            )
        password = prompt_password(f"Password for {username}")
    check_password(password)
    users.add_user(User(username, ADMINISTRATOR, hash_password(password)))
    return username


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def user() -> None:
    """Users who sign in for tokens, each with one role: user, publisher or administrator."""


PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help=f"Read the password from the first line of standard input (else ${NEW_PASSWORD_ENV}, "
    "else a hidden prompt).",
)


@user.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="user",
    show_default=True,
    help="user: read secured services; publisher: also refresh services; "
    "administrator: everything.",
)
@PASSWORD_STDIN
@pass_state
def add(state: CliState, username: str, role: Role, password_stdin: bool) -> None:
    """Add user USERNAME (case-sensitive) with a role and a password."""
    try:
        _check_username(username)
        users = user_store(state)
        try:
            users.get_user(username)
        except NotFound:
            pass
        else:
            raise AlreadyExists(
                f"User '{username}' exists already.",
                next_step=f"Change it with `livemosaic user passwd {username}` or "
                f"`livemosaic user role {username} ROLE`.",
            )
        password = read_new_password(password_stdin)
        users.add_user(User(username, role, hash_password(password)))
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Added user {username} ({role}).")


@user.command("remove")
@click.argument("username")
@pass_state
def remove(state: CliState, username: str) -> None:
    """Remove user USERNAME (their tokens stop working at once)."""
    try:
        users = user_store(state)
        users.get_user(username)
        _refuse_last_administrator(users, username, "removed")
        users.remove_user(username)
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Removed user {username}.")


@user.command("passwd")
@click.argument("username")
@PASSWORD_STDIN
@pass_state
def passwd(state: CliState, username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME; tokens issued before stop working."""
    try:
        users = user_store(state)
        old = users.get_user(username)
        password = read_new_password(password_stdin)
        users.save_user(
            replace(old, password_hash=hash_password(password), token_epoch=old.token_epoch + 1)
        )
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"Changed the password of {username}; tokens issued before no longer work.")


@user.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@pass_state
def set_role(state: CliState, username: str, role: Role) -> None:
    """Give USERNAME another ROLE; tokens issued before stop working."""
    try:
        users = user_store(state)
        old = users.get_user(username)
        if old.role == role:
            click.echo(f"{username} is already {role}.")
            return
        if old.role == ADMINISTRATOR:
            _refuse_last_administrator(users, username, f"made {role}")
        users.save_user(replace(old, role=role, token_epoch=old.token_epoch + 1))
    except LiveMosaicError as exc:
        fail(exc)
    click.echo(f"{username} is now {role} (was {old.role}); tokens issued before no longer work.")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, as_json: bool) -> None:
    """List users and their roles (never password hashes)."""
    try:
        rows = user_store(state).list_users()
    except LiveMosaicError as exc:
        fail(exc)
    if as_json:
        echo_json(
            [
                {
                    "username": u.username,
                    "role": u.role,
                    "disabled": u.disabled,
                    "created": _iso(u.created),
                }
                for u in rows
            ]
        )
        return
    if not rows:
        click.echo("No users. Add one with: livemosaic user add NAME --role administrator")
        return
    for u in rows:
        state_text = "disabled" if u.disabled else ""
        click.echo(f"{u.username:32} {u.role:14} {_iso(u.created) or '':21} {state_text}".rstrip())
