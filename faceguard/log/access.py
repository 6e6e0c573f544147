"""Short-lived, lock-aware connections to the log database.

DuckDB lets one process hold a database file for writing, and while it does every other
process (readers too) is refused with "Could not set lock on file". No faceguard process
keeps the file open: the ingest opens it for one batch, a reader for one query.

To make waiting orderly rather than a storm of failed opens, faceguard processes first take
advisory locks on two sidecar files beside the database, forming a writer-preferring
readers-writer lock::

    reader: intent(EX) -> data(SH) -> release intent -> query -> release data
    writer: intent(EX) -> data(EX) -> ingest batch    -> release both

A waiting writer holds ``intent``, so new readers queue behind it while the running ones
finish; readers share ``data``, so dashboards do not block one another. ``flock`` locks
belong to an open file, so threads of one process exclude each other too, and the kernel
drops them when a process dies (SIGKILL cannot leave a stale lock). Processes that do not
play along (a DuckDB shell) are still handled: opening the database is retried with backoff
while DuckDB reports a lock conflict, up to the caller's deadline.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path
from typing import Iterator

import duckdb

from faceguard.errors import LogError

try:  # POSIX; elsewhere only DuckDB's own lock (with retry) orders access
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_WRITE_TIMEOUT_S = 30.0


class WriterBusy(LogError):
    """Another faceguard process is writing (or waiting to write) the database right now."""


def is_lock_conflict(exc: BaseException) -> bool:
    """True for DuckDB's "another process holds this file" errors (worth retrying)."""
    text = str(exc)
    return isinstance(exc, duckdb.Error) and ("Could not set lock" in text or "Conflicting lock" in text)


class _Backoff:
    """Sleeps 1 ms, 2 ms, 4 ms ... (capped, with jitter) until a deadline."""

    def __init__(self, deadline: float, cap_s: float = 0.05) -> None:
        self.deadline = deadline
        self.delay = 0.001
        self.cap_s = cap_s

    def wait(self) -> bool:
        """Sleep once; False when the deadline has passed (the caller gives up)."""
        now = time.monotonic()
        if now >= self.deadline:
            return False
        time.sleep(min(self.delay * (0.5 + random.random()), self.deadline - now))
        self.delay = min(self.delay * 2, self.cap_s)
        return True


def _flock(fd: int, op: int, backoff: _Backoff, what: Path) -> None:
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not backoff.wait():
                raise LogError(f"{what}: timed out waiting for another faceguard process") from None


def _open_lock_file(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return None  # read-only directory: fall back to DuckDB's own lock and retry


@contextlib.contextmanager
def db_lock(db_path: Path, *, exclusive: bool, deadline: float, skip_if_busy: bool = False) -> Iterator[None]:
    """Hold the sidecar readers-writer lock of ``db_path`` (see the module docstring).

    ``skip_if_busy`` (writers): raise ``WriterBusy`` at once if another writer holds or awaits
    the lock, instead of queueing behind it. Ingests read every spool, so a periodic ingest
    that finds another one running can leave the work to it.
    """
    if fcntl is None:
        yield
        return
    backoff = _Backoff(deadline)
    intent = _open_lock_file(db_path.with_name(db_path.name + ".intent.lock"))
    data = _open_lock_file(db_path.with_name(db_path.name + ".lock"))
    try:
        if intent is not None:
            if skip_if_busy:
                try:
                    fcntl.flock(intent, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise WriterBusy(f"{db_path}: another faceguard process is writing") from None
            else:
                _flock(intent, fcntl.LOCK_EX, backoff, db_path)
        if data is not None:
            _flock(data, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, backoff, db_path)
        if intent is not None and not exclusive:
            fcntl.flock(intent, fcntl.LOCK_UN)
        yield
    finally:
        for fd in (data, intent):
            if fd is not None:
                os.close(fd)  # closing the descriptor releases its flock


def connect_with_retry(db_path: Path, *, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` retried while another process holds the file; LogError otherwise."""
    backoff = _Backoff(deadline)
    while True:
        try:
            con = duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.Error as exc:
            if is_lock_conflict(exc) and backoff.wait():
                continue
            raise LogError(f"{db_path}: cannot open the log database: {exc}") from exc
        try:
            con.execute("SET TimeZone = 'UTC'")  # day/hour buckets are UTC whatever the host says
        except duckdb.Error:
            con.close()
            raise
        return con


@contextlib.contextmanager
def connection(
    db_path: Path, *, read_only: bool, timeout_s: float, skip_if_busy: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Lock, open, yield, close: the only way faceguard touches the database file."""
    deadline = time.monotonic() + timeout_s
    with db_lock(db_path, exclusive=not read_only, deadline=deadline, skip_if_busy=skip_if_busy):
        con = connect_with_retry(db_path, read_only=read_only, deadline=deadline)
        try:
            yield con
        finally:
            con.close()
