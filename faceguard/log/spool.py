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
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import psutil

from faceguard.config import Settings
from faceguard.log import access
from faceguard.log.access import WriterBusy
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
    """Two versions disagree on an image when a box of either has no partner (IoU >= 0.5) in the other.

    Plain Python: the lists hold a handful of boxes, where numpy's per-call cost dominates.
    """
    if len(boxes) != len(shadow_boxes):
        return True
    a = [(float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"])) for b in boxes]
    b = [(float(s["x"]), float(s["y"]), float(s["w"]), float(s["h"])) for s in shadow_boxes]
    matched_b = [False] * len(b)
    for box in a:
        hits = [j for j, other in enumerate(b) if _iou(box, other) >= iou_threshold]
        if not hits:
            return True
        for j in hits:
            matched_b[j] = True
    return not all(matched_b)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


# -- parsing: DuckDB reads the JSON lines (one parse per line, vectorised) ---------------------
@dataclass(frozen=True)
class _Column:
    name: str  # table column
    type: str  # DuckDB type of the JSON field ("JSON" keeps the text as is)
    field: str = ""  # spool field, when it differs from the column name
    required: bool = False
    default: str | None = None  # SQL literal when the field is missing

    @property
    def key(self) -> str:
        return self.field or self.name

    def select(self) -> str:
        value = f"r.{self.key}"
        if self.name == "ts":
            value = f"TRY_CAST({value} AS TIMESTAMPTZ)"
        elif self.type == "JSON":
            value = f"CAST({value} AS VARCHAR)"
        return f"coalesce({value}, {self.default})" if self.default else value


def _c(name: str, type_: str, *, field: str = "", required: bool = False, default: str | None = None) -> _Column:
    return _Column(name, type_, field, required, default)


_ID, _TS, _DEMO = (lambda n: _c(n, "VARCHAR", required=True)), _c("ts", "VARCHAR", required=True), \
    _c("demo", "BOOLEAN", default="false")

# record kind -> (table, columns)
TABLES: dict[str, tuple[str, tuple[_Column, ...]]] = {
    "image": ("images", (
        _ID("image_id"), _TS, _c("input_sha256", "VARCHAR", required=True), _c("source", "VARCHAR", required=True),
        _c("model_version", "VARCHAR", required=True), _c("variant", "VARCHAR", required=True),
        _c("num_faces", "INTEGER", required=True), _c("boxes", "JSON", default="'[]'"),
        _c("processing_ms", "DOUBLE", required=True), _c("stage_ms", "JSON", default="'{}'"),
        _c("width", "INTEGER"), _c("height", "INTEGER"), _c("status", "VARCHAR", required=True),
        _c("error", "VARCHAR"), _c("flagged", "BOOLEAN", default="false"), _c("flag_reason", "VARCHAR"),
        _c("shadow_version", "VARCHAR"), _c("shadow_boxes", "JSON"), _c("union_blur", "BOOLEAN", default="false"),
        _c("review_path", "VARCHAR"), _DEMO,
    )),
    "review": ("reviews", (
        _ID("review_id"), _TS, _c("image_id", "VARCHAR", required=True), _c("reviewer", "VARCHAR", required=True),
        _c("model_version", "VARCHAR", required=True), _c("verdict", "VARCHAR", required=True),
        _c("detection_index", "INTEGER"), _c("box", "JSON"), _DEMO,
    )),
    "event": ("events", (
        _ID("event_id"), _TS, _c("kind", "VARCHAR", field="event_kind", required=True),
        _c("actor", "VARCHAR", required=True), _c("from_version", "VARCHAR"), _c("to_version", "VARCHAR"),
        _c("reason", "VARCHAR", default="''"), _c("evidence", "JSON", default="'{}'"), _DEMO,
    )),
    "alert": ("alerts", (
        _ID("alert_id"), _TS, _c("rule", "VARCHAR", required=True), _c("version", "VARCHAR"),
        _c("message", "VARCHAR", required=True), _c("evidence", "JSON", default="'{}'"), _DEMO,
    )),
    "alert_ack": ("alert_acks", (
        _ID("ack_id"), _c("alert_id", "VARCHAR", required=True), _TS, _c("actor", "VARCHAR", required=True), _DEMO,
    )),
    "resource": ("resource_samples", (
        _ID("sample_id"), _TS, _c("pid", "INTEGER", required=True), _c("source", "VARCHAR", required=True),
        _c("cpu_percent", "DOUBLE", required=True), _c("rss_mb", "DOUBLE", required=True), _DEMO,
    )),
    "evaluation": ("evaluations", (
        _ID("eval_id"), _TS, _c("model_version", "VARCHAR", required=True), _c("dataset", "VARCHAR", required=True),
        _c("metrics", "JSON", default="'{}'"), _c("pr_curve", "JSON", default="'[]'"), _DEMO,
    )),
}
_KIND_PREFIX = '{"kind":"'


def _kind_of(line: str) -> str | None:
    if line.startswith(_KIND_PREFIX):  # how records.to_json writes it: no parse needed
        end = line.find('"', len(_KIND_PREFIX))
        kind = line[len(_KIND_PREFIX):end]
        if kind in TABLES:
            return kind
    try:
        kind = json.loads(line).get("kind")
    except (ValueError, AttributeError):
        return None
    return kind if kind in TABLES else None


def _shadow_disagree(line: str) -> bool | None:
    """Computed here (IoU matching) only for the few lines where a second version ran."""
    if '"shadow_boxes":[' not in line:
        return None
    try:
        data = json.loads(line)
        return shadow_disagrees(data.get("boxes") or [], data["shadow_boxes"])
    except (ValueError, KeyError, TypeError):
        return None  # the line is rejected by the SQL checks if it is really broken


def insert_lines(con: duckdb.DuckDBPyConnection, kind: str, lines: list[str]) -> tuple[int, list[int]]:
    """Insert spool lines of one record kind, skipping ids already present.

    Returns (rows inserted, indices of lines that could not be read: invalid JSON or a
    required field missing or of the wrong type).
    """
    table, columns = TABLES[kind]
    structure = json.dumps({c.key: c.type for c in columns})
    arrays = {"n": pa.array(np.arange(len(lines))), "line": pa.array(lines, pa.string())}
    extra = ""
    if kind == "image":
        arrays["shadow_disagree"] = pa.array([_shadow_disagree(x) for x in lines], pa.bool_())
        extra = ", shadow_disagree"
    staged = pa.table(arrays)  # noqa: F841 (scanned by DuckDB, zero-copy)
    valid = " AND ".join(["r IS NOT NULL"] + [f"{c.select()} IS NOT NULL" for c in columns if c.required])
    names = [c.name for c in columns] + (["shadow_disagree"] if extra else [])
    values = [f"{c.select()} AS {c.name}" for c in columns] + (["shadow_disagree"] if extra else [])
    # Parsed once into a temp table (selecting r.field from a subquery would parse per column);
    # try(): a line that is not JSON at all becomes NULL instead of failing the whole batch.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE parsed AS SELECT n{extra}, try(json_transform(line, $structure)) AS r FROM staged",
        {"structure": structure},
    )
    try:
        id_col = columns[0].name
        row = con.execute(  # skip ids already in the table, and repeats within the batch
            f"INSERT INTO {table} ({', '.join(names)}) "
            f"SELECT * FROM (SELECT {', '.join(values)} FROM parsed WHERE coalesce({valid}, false)) AS fresh "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS old WHERE old.{id_col} = fresh.{id_col}) "
            f"QUALIFY row_number() OVER (PARTITION BY fresh.{id_col}) = 1"
        ).fetchone()
        inserted = int(row[0]) if row else 0
        bad: list[int] = []
        if inserted < len(lines):  # duplicates or unreadable lines: tell them apart (rare)
            bad = [r[0] for r in con.execute(f"SELECT n FROM parsed WHERE NOT coalesce({valid}, false)").fetchall()]
    finally:
        con.execute("DROP TABLE IF EXISTS parsed")
    return inserted, bad


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
            kind = _kind_of(line)
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

