"""Reading input files and writing output files, with errors that name the file.

:func:`read_bytes` and :func:`write_atomic` translate ``OSError`` into ``InputError`` /
``OutputError`` naming the file; a write either replaces the target completely or leaves it
as it was (temporary file in the same directory, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path

from faceguard.errors import InputError, OutputError

__all__ = ["read_bytes", "write_atomic"]


def read_bytes(path: str | Path) -> bytes:
    """The file's contents; ``InputError`` naming the file when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InputError(path, "no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(path, "is a directory, not a file") from exc
    except PermissionError as exc:
        raise InputError(path, "permission denied") from exc
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}") from exc


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it either fully replaces the file or changes nothing.

    The bytes go to a hidden temporary file in the same directory (same filesystem, so the
    rename is atomic), are fsynced, then renamed over the target. On any failure the
    temporary file is removed and ``OutputError`` names the target.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        tmp, fd = _create_temp(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:  # failed (or interrupted) before the rename
            with suppress(OSError):
                tmp.unlink(missing_ok=True)


def _create_temp(path: Path) -> tuple[Path, int]:
    # os.open with 0o666 lets the umask decide permissions, as for any new file; mkstemp
    # would leave every output readable by its owner only.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable across a power cut; not possible on Windows.
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
