"""Spool files and their ingest into DuckDB, each record exactly once.

Spool layout (``settings.spool_dir``)::

    <host>-<pid>-<uuid>.jsonl         being appended to by a live writer
    <host>-<pid>-<uuid>.jsonl.done    sealed by its writer (closed or rotated): never grows again
    rejected/<host>-<pid>-<uuid>.jsonl   lines that could not be read, kept for inspection

Exactly once: ``spool_offsets`` holds, per spool (keyed by the name before ``.jsonl``, so
sealing by rename keeps the offset), how many bytes have been ingested. An ingest opens the
database for writing (one process and, through the sidecar lock, one thread at a time),
reads each spool from its committed offset up to its last complete line, and inserts those
rows *and* the new offset in one transaction. A crash before COMMIT leaves neither, so the
range is read again; after COMMIT both are durable, so it never is. And an insert skips
ids already present (an anti-join on the id): a second guard (a spool copied by hand, say).

A spool is deleted once it is fully ingested and will not grow: sealed (``.done``) or left by
a process of this host that no longer exists (killed). A torn last line of such a spool can
never be completed, so it is moved to ``rejected/`` like any unreadable line.

How a line becomes a row of its table (and which lines are unreadable) is ``rows``.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import psutil

from faceguard.config import Settings
from faceguard.log import access
from faceguard.log.access import WriterBusy
from faceguard.log.rows import TABLES, insert_lines, kind_of
from faceguard.log.schema import open_for_write

SPOOL_SUFFIX = ".jsonl"
SEALED_SUFFIX = ".jsonl.done"
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class IngestStats:
    """What one ingest did."""

    files: int = 0  # spool files read
    lines: int = 0  # complete lines read
    inserted: int = 0  # new rows in the database
    duplicates: int = 0  # lines whose id was already there
    rejected: int = 0  # unreadable lines moved to spool/rejected/
    deleted_files: int = 0  # finished spools removed
    skipped: bool = False  # another ingest was running (skip_if_busy): it reads every spool, ours too
    seconds: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def host_tag() -> str:
    """This host's name as used in spool file names (no '-' or '.')."""
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def spool_key(path: Path) -> str:
    """The name a spool's offset is stored under: ``<host>-<pid>-<uuid>``."""
    return path.name.split(SPOOL_SUFFIX, 1)[0]


def spool_files(spool_dir: Path) -> list[Path]:
    """Every spool file, live and sealed, oldest first."""
    if not spool_dir.is_dir():
        return []
    found = [p for p in spool_dir.iterdir() if p.name.endswith((SPOOL_SUFFIX, SEALED_SUFFIX)) and p.is_file()]
    return sorted(found, key=lambda p: (_mtime(p), p.name))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def owner_gone(path: Path) -> bool:
    """True when the spool will never grow again: sealed, or its process (on this host) is dead."""
    if path.name.endswith(SEALED_SUFFIX):
        return True
    parts = spool_key(path).rsplit("-", 2)
    if len(parts) != 3 or parts[0] != host_tag() or not parts[1].isdigit():
        return False  # another host's spool (shared directory): only its owner knows
    pid = int(parts[1])
    return pid != os.getpid() and not psutil.pid_exists(pid)


class _Batch:
    """Lines and offsets that go into the database in one transaction."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {kind: [] for kind in TABLES}
        self.spools: dict[str, list[str]] = {kind: [] for kind in TABLES}  # spool key of each line
        self.offsets: dict[str, int] = {}
        self.rejected: dict[str, list[bytes]] = {}
        self.line_count = 0
        self.bytes = 0

    def add_chunk(self, key: str, chunk: bytes, end_offset: int) -> None:
        self.offsets[key] = end_offset
        self.bytes += len(chunk)
        for line in chunk.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            self.line_count += 1
            kind = kind_of(line)
            if kind is None:
                self.reject(key, line.encode())
            else:
                self.lines[kind].append(line)
                self.spools[kind].append(key)

    def reject(self, key: str, line: bytes) -> None:
        self.rejected.setdefault(key, []).append(line)

    @property
    def rejected_count(self) -> int:
        return sum(map(len, self.rejected.values()))


def _commit(con: duckdb.DuckDBPyConnection, batch: _Batch, spool_dir: Path) -> int:
    inserted = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for kind, lines in batch.lines.items():
            if lines:
                n, bad = insert_lines(con, kind, lines)
                inserted += n
                for i in bad:
                    batch.reject(batch.spools[kind][i], lines[i].encode())
        offsets = pd.DataFrame({"spool": list(batch.offsets), "offset_bytes": list(batch.offsets.values())})  # noqa: F841
        con.execute(
            "INSERT INTO spool_offsets SELECT spool, offset_bytes, current_timestamp FROM offsets "
            "ON CONFLICT (spool) DO UPDATE SET offset_bytes = excluded.offset_bytes, updated_ts = excluded.updated_ts"
        )
        _save_rejected(batch, spool_dir)  # before COMMIT: a crash may repeat a rejected line, never lose one
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return inserted


def _save_rejected(batch: _Batch, spool_dir: Path) -> None:
    if not batch.rejected:
        return
    rejected_dir = spool_dir / "rejected"
    rejected_dir.mkdir(exist_ok=True)
    for key, lines in batch.rejected.items():
        with open(rejected_dir / f"{key}{SPOOL_SUFFIX}", "ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")


def _read_from(path: Path, offset: int, limit: int) -> tuple[bytes, int] | None:
    """Bytes [offset, offset+limit) of a spool and its current size, or None if it vanished."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= offset:
                return b"", size
            fh.seek(offset)
            return fh.read(min(size - offset, limit)), size
    except FileNotFoundError:
        return None  # sealed (renamed) or deleted meanwhile: picked up under its new name


def ingest(
    settings: Settings,
    *,
    timeout_s: float = access.DEFAULT_WRITE_TIMEOUT_S,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    delete_finished: bool = True,
    skip_if_busy: bool = False,
) -> IngestStats:
    """Merge every spool file (live, sealed, or left by a dead process) into the database.

    Raises ``LogError`` when the database cannot be opened within ``timeout_s`` (the spools
    are untouched and wait for the next ingest) and ``SchemaTooNewError`` for a database
    from a newer faceguard. With ``skip_if_busy`` it returns at once (``skipped=True``) when
    another process is ingesting, instead of queueing behind it.
    """
    started = time.monotonic()
    spool_dir = settings.spool_dir
    files = spool_files(spool_dir)
    if not files:
        return IngestStats(seconds=time.monotonic() - started)
    try:
        with open_for_write(settings.db_path, timeout_s=timeout_s, skip_if_busy=skip_if_busy) as con:
            lines, inserted, rejected, deleted, read_files = _ingest_files(
                con, files, spool_dir, batch_bytes=batch_bytes, delete_finished=delete_finished
            )
    except WriterBusy:
        if not skip_if_busy:
            raise
        return IngestStats(skipped=True, seconds=time.monotonic() - started)
    return IngestStats(
        files=len(read_files),
        lines=lines,
        inserted=inserted,
        duplicates=lines - inserted - rejected,
        rejected=rejected,
        deleted_files=deleted,
        seconds=time.monotonic() - started,
    )


def _ingest_files(
    con: duckdb.DuckDBPyConnection, files: list[Path], spool_dir: Path, *, batch_bytes: int, delete_finished: bool
) -> tuple[int, int, int, int, set[str]]:
    lines = inserted = rejected = deleted = 0
    read_files: set[str] = set()
    offsets: dict[str, int] = dict(con.execute("SELECT spool, offset_bytes FROM spool_offsets").fetchall())
    sizes: dict[Path, int] = {}
    batch = _Batch()
    for path in files:
        key = spool_key(path)
        gone = owner_gone(path)  # decided before reading: a file sealed later is read next time
        while True:
            got = _read_from(path, offsets.get(key, 0), batch_bytes)
            if got is None:
                break
            data, sizes[path] = got
            start = offsets.get(key, 0)
            end = data.rfind(b"\n") + 1
            if end == 0 and data and gone and start + len(data) == sizes[path]:
                batch.reject(key, data)  # torn last line of a spool nobody will finish
                batch.line_count += 1
                batch.offsets[key] = offsets[key] = start + len(data)
                read_files.add(key)
                break
            if end == 0:
                break
            read_files.add(key)
            batch.add_chunk(key, data[:end], start + end)
            offsets[key] = start + end
            if batch.bytes >= batch_bytes:
                inserted += _commit(con, batch, spool_dir)
                lines, rejected = lines + batch.line_count, rejected + batch.rejected_count
                batch = _Batch()
            if start + end >= sizes[path]:
                break
    if batch.offsets:
        inserted += _commit(con, batch, spool_dir)
        lines, rejected = lines + batch.line_count, rejected + batch.rejected_count
    if delete_finished:
        deleted = _delete_finished(con, files, offsets, sizes)
    return lines, inserted, rejected, deleted, read_files


def _delete_finished(
    con: duckdb.DuckDBPyConnection, files: list[Path], offsets: dict[str, int], sizes: dict[Path, int]
) -> int:
    deleted: list[str] = []
    for path in files:
        key = spool_key(path)
        if path not in sizes or offsets.get(key, 0) < sizes[path] or not owner_gone(path):
            continue
        try:
            if path.stat().st_size != offsets.get(key, 0):
                continue  # grew after we read it (cannot happen once sealed; belt and braces)
            path.unlink()
        except FileNotFoundError:
            pass
        deleted.append(key)
    if deleted:
        keys = pd.DataFrame({"spool": deleted})  # noqa: F841
        con.execute("DELETE FROM spool_offsets WHERE spool IN (SELECT spool FROM keys)")
    return len(deleted)


def pending_spool_bytes(spool_dir: Path, offsets: dict[str, int]) -> int:
    """Bytes of spool not yet in the database, given the committed offsets."""
    total = 0
    for path in spool_files(spool_dir):
        total += max(_size(path) - offsets.get(spool_key(path), 0), 0)
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
