"""Spool lines into table rows: each record kind's columns, and the insert that reads them.

DuckDB parses the JSON lines itself (one parse per line, vectorised): ``insert_lines`` stages
a batch of lines of one record kind as an Arrow table, transforms them with the kind's column
structure (``TABLES``), and inserts the readable ones, skipping ids already present. Only the
``shadow_disagree`` column of images is computed in Python (``shadow_disagrees``), for the few
lines where a second version ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa


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


def kind_of(line: str) -> str | None:
    """The record kind of a spool line, or None when it names no known kind (or is not JSON)."""
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
