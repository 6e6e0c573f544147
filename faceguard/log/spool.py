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
range is read again; after COMMIT both are durable, so it never is. Ids are primary keys and
rows go in with ``INSERT OR IGNORE``: a second guard (a spool copied by hand, say).

A spool is deleted once it is fully ingested and will not grow: sealed (``.done``) or left by
a process of this host that no longer exists (killed). A torn last line of such a spool can
never be completed, so it is moved to ``rejected/`` like any unreadable line.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd
import psutil

from faceguard.config import Settings
from faceguard.detections import Detections, iou_matrix
from faceguard.log import access
from faceguard.log.access import WriterBusy
from faceguard.log.records import dumps
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


def shadow_disagrees(boxes: list[dict], shadow_boxes: list[dict], iou_threshold: float = 0.5) -> bool:
    """Two versions disagree on an image when a box of either has no partner (IoU >= 0.5) in the other."""
    if len(boxes) != len(shadow_boxes):
        return True
    if not boxes:
        return False
    iou = iou_matrix(Detections.from_records(boxes).xyxy, Detections.from_records(shadow_boxes).xyxy)
    return bool((iou.max(axis=1) < iou_threshold).any() or (iou.max(axis=0) < iou_threshold).any())


# -- row builders: one spool dict -> one table row (column order as in the table spec) -------
def _image_row(d: dict[str, Any]) -> tuple:
    boxes = d["boxes"]
    shadow = d.get("shadow_boxes")
    return (
        d["image_id"], d["ts"], d["input_sha256"], d["source"], d["model_version"], d["variant"],
        int(d["num_faces"]), dumps(boxes), float(d["processing_ms"]), dumps(d.get("stage_ms") or {}),
        d.get("width"), d.get("height"), d["status"], d.get("error"), bool(d.get("flagged")),
        d.get("flag_reason"), d.get("shadow_version"), None if shadow is None else dumps(shadow),
        None if shadow is None else shadow_disagrees(boxes, shadow), bool(d.get("union_blur")),
        d.get("review_path"), bool(d.get("demo")),
    )


def _review_row(d: dict[str, Any]) -> tuple:
    box = d.get("box")
    return (
        d["review_id"], d["ts"], d["image_id"], d["reviewer"], d["model_version"], d["verdict"],
        d.get("detection_index"), None if box is None else dumps(box), bool(d.get("demo")),
    )


def _event_row(d: dict[str, Any]) -> tuple:
    return (
        d["event_id"], d["ts"], d["event_kind"], d["actor"], d.get("from_version"), d.get("to_version"),
        d.get("reason") or "", dumps(d.get("evidence") or {}), bool(d.get("demo")),
    )


def _alert_row(d: dict[str, Any]) -> tuple:
    return (
        d["alert_id"], d["ts"], d["rule"], d.get("version"), d["message"],
        dumps(d.get("evidence") or {}), bool(d.get("demo")),
    )


def _ack_row(d: dict[str, Any]) -> tuple:
    return (d["ack_id"], d["alert_id"], d["ts"], d["actor"], bool(d.get("demo")))


def _resource_row(d: dict[str, Any]) -> tuple:
    return (
        d["sample_id"], d["ts"], int(d["pid"]), d["source"], float(d["cpu_percent"]), float(d["rss_mb"]),
        bool(d.get("demo")),
    )


def _evaluation_row(d: dict[str, Any]) -> tuple:
    return (
        d["eval_id"], d["ts"], d["model_version"], d["dataset"], dumps(d.get("metrics") or {}),
        dumps(d.get("pr_curve") or []), bool(d.get("demo")),
    )


# record kind -> (table, columns, row builder)
TABLES: dict[str, tuple[str, tuple[str, ...], Callable[[dict[str, Any]], tuple]]] = {
    "image": ("images", (
        "image_id", "ts", "input_sha256", "source", "model_version", "variant", "num_faces", "boxes",
        "processing_ms", "stage_ms", "width", "height", "status", "error", "flagged", "flag_reason",
        "shadow_version", "shadow_boxes", "shadow_disagree", "union_blur", "review_path", "demo",
    ), _image_row),
    "review": ("reviews", (
        "review_id", "ts", "image_id", "reviewer", "model_version", "verdict", "detection_index", "box", "demo",
    ), _review_row),
    "event": ("events", (
        "event_id", "ts", "kind", "actor", "from_version", "to_version", "reason", "evidence", "demo",
    ), _event_row),
    "alert": ("alerts", ("alert_id", "ts", "rule", "version", "message", "evidence", "demo"), _alert_row),
    "alert_ack": ("alert_acks", ("ack_id", "alert_id", "ts", "actor", "demo"), _ack_row),
    "resource": ("resource_samples", (
        "sample_id", "ts", "pid", "source", "cpu_percent", "rss_mb", "demo",
    ), _resource_row),
    "evaluation": ("evaluations", (
        "eval_id", "ts", "model_version", "dataset", "metrics", "pr_curve", "demo",
    ), _evaluation_row),
}


class _Batch:
    """Rows and offsets that go into the database in one transaction."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {kind: [] for kind in TABLES}
        self.offsets: dict[str, int] = {}
        self.rejected: dict[str, list[bytes]] = {}
        self.lines = 0
        self.bytes = 0

    def add_chunk(self, key: str, chunk: bytes, end_offset: int) -> None:
        self.offsets[key] = end_offset
        self.bytes += len(chunk)
        for line in chunk.splitlines():
            if not line.strip():
                continue
            self.lines += 1
            try:
                data = json.loads(line)
                self.rows[data["kind"]].append(TABLES[data["kind"]][2](data))
            except (ValueError, KeyError, TypeError) as exc:
                self.reject(key, line + b"  # " + str(exc).encode()[:200])

    def reject(self, key: str, line: bytes) -> None:
        self.rejected.setdefault(key, []).append(line)


def insert_rows(con: duckdb.DuckDBPyConnection, kind: str, rows: list[tuple]) -> int:
    """Insert row tuples of one record kind, skipping ids already present; the number inserted."""
    table, columns, _ = TABLES[kind]
    staged = pd.DataFrame.from_records(rows, columns=list(columns))  # noqa: F841 (scanned by DuckDB)
    cols = ", ".join(columns)
    result = con.execute(f"INSERT OR IGNORE INTO {table} ({cols}) SELECT {cols} FROM staged").fetchone()
    return int(result[0]) if result else 0


def _commit(con: duckdb.DuckDBPyConnection, batch: _Batch, spool_dir: Path) -> int:
    if batch.rejected:  # written before COMMIT: a crash may repeat a rejected line, never lose one
        rejected_dir = spool_dir / "rejected"
        rejected_dir.mkdir(exist_ok=True)
        for key, lines in batch.rejected.items():
            with open(rejected_dir / f"{key}{SPOOL_SUFFIX}", "ab") as fh:
                fh.write(b"\n".join(lines) + b"\n")
    inserted = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for kind, rows in batch.rows.items():
            if rows:
                inserted += insert_rows(con, kind, rows)
        offsets = pd.DataFrame({"spool": list(batch.offsets), "offset_bytes": list(batch.offsets.values())})  # noqa: F841
        con.execute(
            "INSERT INTO spool_offsets SELECT spool, offset_bytes, current_timestamp FROM offsets "
            "ON CONFLICT (spool) DO UPDATE SET offset_bytes = excluded.offset_bytes, updated_ts = excluded.updated_ts"
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return inserted


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
                batch.lines += 1
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
                lines, rejected = lines + batch.lines, rejected + sum(map(len, batch.rejected.values()))
                batch = _Batch()
            if start + end >= sizes[path]:
                break
    if batch.offsets:
        inserted += _commit(con, batch, spool_dir)
        lines, rejected = lines + batch.lines, rejected + sum(map(len, batch.rejected.values()))
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

