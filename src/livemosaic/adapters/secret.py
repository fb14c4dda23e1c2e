"""The server secret: 32 random bytes in ``<data_dir>/secret.key`` that sign every token.

The file is created once, atomically (written to a private temporary file, then linked into
place, so a concurrent process either wins the race or reads the complete file) with mode
0600. An existing file that others can read is refused: anyone who reads it can forge tokens.
Replacing the file signs every user out.
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

from livemosaic.errors import LiveMosaicError

SECRET_FILE = "secret.key"
SECRET_BYTES = 32


class SecretError(LiveMosaicError, PermissionError):
    """The server secret file is unsafe or unreadable."""

    code = 500


def secret_path(data_dir: Path) -> Path:
    """Where the server secret of a data folder lives."""
    return data_dir / SECRET_FILE


def _cannot(path: Path, action: str, exc: OSError, next_step: str) -> SecretError:
    return SecretError(
        f"The server secret {path} cannot be {action}: {exc.strerror or exc}.", next_step=next_step
    )


def _read(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _cannot(path, "read", exc, "Run livemosaic as the owner of the data folder.") from exc
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"The server secret {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
            "anyone who reads it can forge tokens.",
            next_step=f"Restrict it with `chmod 600 {path}` and start again.",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _cannot(path, "read", exc, "Run livemosaic as the owner of the data folder.") from exc
    if len(data) < SECRET_BYTES:
        raise SecretError(
            f"The server secret {path} holds {len(data)} bytes, fewer than {SECRET_BYTES}.",
            next_step="Delete it to have a new one created (this signs every user out).",
        )
    return data


def _write_new(target: Path) -> None:
    """Create ``target`` with a fresh secret, owner-only (FileExistsError if present)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if os.name == "posix":
            os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_bytes(SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: Path) -> None:
    """Put a new secret at ``path`` unless one appears there first; never a partial file."""
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        _write_new(tmp)
        try:
            os.link(tmp, path)  # atomic, and never replaces another process's secret
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            with suppress(FileExistsError):
                _write_new(path)
    finally:
        with suppress(OSError):
            tmp.unlink()


def load_or_create_secret(data_dir: Path) -> bytes:
    """The server secret of a data folder, created (0600, atomically) on first use."""
    path = secret_path(data_dir)
    if not path.exists():
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            _create(path)
        except OSError as exc:
            raise _cannot(
                path, "created", exc, f"Make {data_dir} writable by the user running livemosaic."
            ) from exc
    return _read(path)


__all__ = ["SECRET_FILE", "SecretError", "load_or_create_secret", "secret_path"]
