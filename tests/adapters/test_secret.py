"""The server secret file: created once, owner-only, never replaced, refused when exposed."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest

from livemosaic.adapters.secret import SECRET_FILE, SecretError, load_or_create_secret
from livemosaic.core.security import TokenClaims, TokenSigner

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def test_created_once_with_owner_only_mode(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    old_umask = os.umask(0o000)  # even a permissive umask must not widen the file
    try:
        first = load_or_create_secret(data)
    finally:
        os.umask(old_umask)
    path = data / SECRET_FILE
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == first
    assert load_or_create_secret(data) == first
    assert [p.name for p in data.iterdir()] == [SECRET_FILE]  # no temporary files left
    other = tmp_path / "other"
    assert load_or_create_secret(other) != first
    signer = TokenSigner(first)
    token = signer.issue(TokenClaims("ops", "publisher", 10**13, "none", "", 0))
    assert signer.verify(token, 0).username == "ops"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_an_exposed_secret_is_refused(tmp_path: Path, mode: int) -> None:
    secret = load_or_create_secret(tmp_path)
    path = tmp_path / SECRET_FILE
    path.chmod(mode)
    with pytest.raises(SecretError, match="chmod 600") as info:
        load_or_create_secret(tmp_path)
    assert str(path) in str(info.value)
    assert f"{mode:04o}" in str(info.value)
    assert path.read_bytes() == secret  # left alone
    path.chmod(0o600)
    assert load_or_create_secret(tmp_path) == secret


def test_a_truncated_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SECRET_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(SecretError, match="fewer than 32"):
        load_or_create_secret(tmp_path)


def test_a_data_folder_that_cannot_hold_it_is_explained(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    with pytest.raises(SecretError, match="cannot be created") as info:
        load_or_create_secret(not_a_folder)
    assert "writable" in str(info.value)


def create_in(folder: str, out) -> None:
    out.put(load_or_create_secret(Path(folder)))


def test_processes_racing_get_one_secret(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=create_in, args=(str(tmp_path), out)) for _ in range(6)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(set(got)) == 1
    assert got[0] == (tmp_path / SECRET_FILE).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]
