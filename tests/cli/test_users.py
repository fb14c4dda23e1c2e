"""``livemosaic user …`` and the first administrator, against a real catalog database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from livemosaic.adapters.catalog import Stores, open_stores
from livemosaic.cli.context import CliState
from livemosaic.cli.users import ensure_first_admin, user
from livemosaic.core.security import User, hash_password, verify_password
from livemosaic.errors import AlreadyExists, InvalidParameter
from livemosaic.settings import Settings

BIN = Path(sys.executable).parent / "livemosaic"
# Until `user` is registered in cli/main.py, run the real group with it added.
WRAPPER = (
    "from livemosaic.cli.main import cli\n"
    "from livemosaic.cli.users import user\n"
    "cli.add_command(user)\n"
    "cli(prog_name='livemosaic')\n"
)


class Cli:
    """Runs the `user` group in-process on one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env=None, code: int = 0) -> Result:
        state = CliState(Settings(data_dir=self.data_dir, catalog_url=""))
        result = self.runner.invoke(user, list(args), obj=state, input=input, env=env)
        state.close()
        assert result.exit_code == code, result.output
        return result

    def users(self) -> Stores:
        return open_stores(f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}")

    def get(self, name: str) -> User:
        s = self.users()
        try:
            return s.users.get_user(name)
        finally:
            s.close()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    s = open_stores(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield s
    s.close()


def test_add_list_and_never_show_hashes(cli: Cli) -> None:
    out = cli("add", "ops", "--role", "publisher", "--password-stdin", input="s3cret-pass\n").output
    assert "Added user ops (publisher)" in out
    cli("add", "Ops", "--password-stdin", input="another-pass\r\n")
    ops = cli.get("ops")
    assert ops.role == "publisher" and verify_password("s3cret-pass", ops.password_hash)
    assert cli.get("Ops").role == "user"  # the default role; names are case-sensitive
    assert verify_password("another-pass", cli.get("Ops").password_hash)
    listing = cli("list").output
    assert "ops" in listing and "publisher" in listing and "Ops" in listing
    rows = json.loads(cli("list", "--json").output)
    assert [(r["username"], r["role"]) for r in rows] == [("Ops", "user"), ("ops", "publisher")]
    for text in (listing, json.dumps(rows)):
        assert "scrypt" not in text and ops.password_hash.split("$")[-1] not in text


def test_empty_list_says_what_to_do(cli: Cli) -> None:
    assert "livemosaic user add NAME --role administrator" in cli("list").output


def test_password_from_the_environment(cli: Cli) -> None:
    cli("add", "bot", "--role", "administrator", env={"LIVEMOSAIC_NEW_PASSWORD": "from-env-123"})
    assert verify_password("from-env-123", cli.get("bot").password_hash)


def test_password_prompt_asks_again_until_acceptable(cli: Cli) -> None:
    typed = "short\nlong-enough\ndifferent\nlong-enough\nlong-enough\n"
    result = cli("add", "ann", input=typed, env={"LIVEMOSAIC_NEW_PASSWORD": ""})
    assert "at least 8" in result.output
    assert "do not match" in result.output
    assert "long-enough" not in result.output  # hidden input is not echoed
    assert verify_password("long-enough", cli.get("ann").password_hash)


def test_short_password_and_bad_names_are_refused(cli: Cli) -> None:
    out = cli("add", "ops", "--password-stdin", input="1234567\n", code=1).output
    assert "at least 8" in out
    assert (
        "not a valid user name"
        in cli("add", "a b", "--password-stdin", input="x" * 9, code=1).output
    )
    assert (
        cli("add", "ops", "--role", "root", "--password-stdin", input="x" * 9, code=2).exit_code
        == 2
    )
    assert "No users" in cli("list").output


def test_duplicate_is_refused_before_asking_for_a_password(cli: Cli) -> None:
    cli("add", "ops", "--password-stdin", input="first-pass\n")
    out = cli("add", "ops", code=1).output  # no input: it must not prompt
    assert "exists already" in out and "livemosaic user passwd ops" in out
    assert verify_password("first-pass", cli.get("ops").password_hash)


def test_passwd_changes_the_hash_and_revokes_tokens(cli: Cli) -> None:
    cli("add", "ops", "--password-stdin", input="first-pass\n")
    before = cli.get("ops")
    out = cli("passwd", "ops", "--password-stdin", input="second-pass\n").output
    assert "tokens issued before no longer work" in out
    after = cli.get("ops")
    assert after.token_epoch == before.token_epoch + 1
    assert verify_password("second-pass", after.password_hash)
    assert not verify_password("first-pass", after.password_hash)
    assert (
        "does not exist"
        in cli("passwd", "nobody", "--password-stdin", input="x" * 9, code=1).output
    )


def test_role_change_bumps_the_epoch_once(cli: Cli) -> None:
    cli("add", "ops", "--password-stdin", input="first-pass\n")
    assert "now publisher (was user)" in cli("role", "ops", "publisher").output
    assert cli.get("ops").token_epoch == 1
    assert "already publisher" in cli("role", "ops", "publisher").output
    assert cli.get("ops").token_epoch == 1
    cli("role", "ops", "superuser", code=2)


def test_the_last_administrator_stays(cli: Cli) -> None:
    cli("add", "root1", "--role", "administrator", "--password-stdin", input="first-pass\n")
    assert "only administrator" in cli("remove", "root1", code=1).output
    assert "only administrator" in cli("role", "root1", "publisher", code=1).output
    cli("add", "root2", "--role", "administrator", "--password-stdin", input="second-pass\n")
    cli("role", "root1", "publisher")
    assert "only administrator" in cli("remove", "root2", code=1).output
    assert "Removed user root1" in cli("remove", "root1").output
    assert "does not exist" in cli("remove", "root1", code=1).output
    assert [r["username"] for r in json.loads(cli("list", "--json").output)] == ["root2"]


# -- the first administrator (livemosaic init) --------------------------------------------


def test_first_admin_from_arguments_then_never_again(stores: Stores, monkeypatch) -> None:
    monkeypatch.delenv("LIVEMOSAIC_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("LIVEMOSAIC_ADMIN_PASSWORD", raising=False)
    name = ensure_first_admin(
        stores.users, username="chief", password="chief-pass", interactive=False
    )
    assert name == "chief"
    chief = stores.users.get_user("chief")
    assert chief.role == "administrator" and verify_password("chief-pass", chief.password_hash)
    again = ensure_first_admin(
        stores.users, username="other", password="other-pass", interactive=True
    )
    assert again is None
    assert [u.username for u in stores.users.list_users()] == ["chief"]


def test_first_admin_from_the_environment(stores: Stores, monkeypatch) -> None:
    monkeypatch.setenv("LIVEMOSAIC_ADMIN_USERNAME", "auto")
    monkeypatch.setenv("LIVEMOSAIC_ADMIN_PASSWORD", "auto-pass-1")
    assert (
        ensure_first_admin(stores.users, username=None, password=None, interactive=False) == "auto"
    )
    assert verify_password("auto-pass-1", stores.users.get_user("auto").password_hash)


def test_first_admin_without_a_source_creates_nothing(stores: Stores, monkeypatch) -> None:
    monkeypatch.delenv("LIVEMOSAIC_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("LIVEMOSAIC_ADMIN_PASSWORD", raising=False)
    assert ensure_first_admin(stores.users, username=None, password=None, interactive=False) is None
    assert stores.users.list_users() == []
    with pytest.raises(InvalidParameter, match="LIVEMOSAIC_ADMIN_PASSWORD is not"):
        ensure_first_admin(stores.users, username="half", password=None, interactive=False)
    monkeypatch.setenv("LIVEMOSAIC_ADMIN_PASSWORD", "only-pass")
    with pytest.raises(InvalidParameter, match="LIVEMOSAIC_ADMIN_USERNAME is not"):
        ensure_first_admin(stores.users, username=None, password=None, interactive=False)
    with pytest.raises(InvalidParameter, match="at least 8"):
        ensure_first_admin(stores.users, username="boss", password="short", interactive=False)
    assert stores.users.list_users() == []


def test_first_admin_ignores_non_administrators_and_prompts(stores: Stores, monkeypatch) -> None:
    monkeypatch.delenv("LIVEMOSAIC_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("LIVEMOSAIC_ADMIN_PASSWORD", raising=False)
    stores.users.add_user(User("viewer", "user", hash_password("viewer-pass")))
    stores.users.add_user(User("gone", "administrator", hash_password("gone-pass"), disabled=True))
    runner = CliRunner()
    with runner.isolation(input="bad name\nboss\ntyped-pass\ntyped-pass\n"):
        name = ensure_first_admin(stores.users, username=None, password=None, interactive=True)
    assert name == "boss"
    assert verify_password("typed-pass", stores.users.get_user("boss").password_hash)
    stores.users.remove_user("boss")
    with pytest.raises(AlreadyExists):  # an existing non-administrator is not promoted silently
        ensure_first_admin(
            stores.users, username="viewer", password="viewer-pass", interactive=False
        )
    assert stores.users.get_user("viewer").role == "user"


# -- the real console script --------------------------------------------------------------


def test_user_commands_in_a_real_process(tmp_path: Path) -> None:
    from livemosaic.cli.main import cli as main_group

    command = [str(BIN)] if "user" in main_group.commands else [sys.executable, "-c", WRAPPER]
    env = dict(os.environ)
    env["LIVEMOSAIC_DATA_DIR"] = str(tmp_path / "data")
    env.pop("LIVEMOSAIC_CATALOG_URL", None)
    env.pop("LIVEMOSAIC_NEW_PASSWORD", None)

    def run(*args: str, stdin: str = "", code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*command, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, proc.stderr + proc.stdout
        return proc

    assert "Usage:" in run("user", "--help").stdout
    for sub in ("add", "remove", "passwd", "list", "role"):
        assert "Usage:" in run("user", sub, "--help").stdout
    run("user", "add", "ops", "--role", "publisher", "--password-stdin", stdin="piped-pass\n")
    assert (
        "at least 8" in run("user", "add", "x", "--password-stdin", stdin="short\n", code=1).stderr
    )
    rows = json.loads(run("user", "list", "--json").stdout)
    assert rows[0]["username"] == "ops" and rows[0]["role"] == "publisher"
    s = open_stores(f"sqlite:///{(tmp_path / 'data' / 'catalog.db').resolve()}")
    try:
        assert verify_password("piped-pass", s.users.get_user("ops").password_hash)
    finally:
        s.close()
