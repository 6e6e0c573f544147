"""Reads of the log's rows as recorded: images and their reviews, model events, alerts,
resource samples, evaluations, and the log's own status.

Each function runs one read-only query (see ``reading``) and returns a DataFrame, with the
JSON columns (boxes, stage times, evidence, metrics) decoded, or a small frozen dataclass.
Timestamps come back as UTC-aware ``datetime64``. The aggregated figures (metrics, rule
windows) are in ``queries``, which also re-exports these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

import pandas as pd

from faceguard.config import Settings
from faceguard.log.reading import READ_TIMEOUT_S, DbRef, as_utc, db_path, decode_json, read, utc_now_or
from faceguard.log.schema import LATEST_VERSION, RECORD_TABLES, open_for_read, schema_version
from faceguard.log.spool import pending_spool_bytes, spool_files

# -- images and reviews --------------------------------------------------------------------------
_IMAGE_JSON = ("boxes", "stage_ms", "shadow_boxes")


def recent_images(
    db: DbRef, *, limit: int = 50, version: str | None = None, variant: str | None = None,
    include_demo: bool = True,
) -> pd.DataFrame:
    """The newest images (all columns; boxes and stage times decoded from JSON)."""
    df = read(db, """
        SELECT * FROM images
        WHERE ($version IS NULL OR model_version = $version) AND ($variant IS NULL OR variant = $variant)
          AND ($include_demo OR NOT demo)
        ORDER BY ts DESC, image_id LIMIT $limit
    """, {"version": version, "variant": variant, "limit": int(limit), "include_demo": include_demo})
    return decode_json(df, _IMAGE_JSON)


def image_by_hash(db: DbRef, sha256_or_image_id: str) -> pd.DataFrame:
    """Every processing of an input (by sha256 of its bytes, or by image id), newest first.

    Answers "which version processed this image?": see the ``model_version`` and ``variant`` columns.
    """
    key = sha256_or_image_id.strip().lower()
    df = read(db, """
        SELECT * FROM images WHERE input_sha256 = $key OR image_id = $key ORDER BY ts DESC
    """, {"key": key})
    return decode_json(df, _IMAGE_JSON)


def review_queue(
    db: DbRef, *, limit: int = 50, reviewer: str | None = None, include_demo: bool = True
) -> pd.DataFrame:
    """Flagged images kept for review that nobody (or not ``reviewer``) has reviewed yet, newest first."""
    df = read(db, """
        SELECT * FROM images i
        WHERE flagged AND review_path IS NOT NULL AND ($include_demo OR NOT demo)
          AND NOT EXISTS (
              SELECT 1 FROM reviews r WHERE r.image_id = i.image_id AND ($reviewer IS NULL OR r.reviewer = $reviewer)
          )
        ORDER BY ts DESC, image_id LIMIT $limit
    """, {"reviewer": reviewer, "limit": int(limit), "include_demo": include_demo})
    return decode_json(df, _IMAGE_JSON)


def reviews_for(db: DbRef, image_id: str) -> pd.DataFrame:
    """Every review row of one image, oldest first (``box`` decoded)."""
    df = read(db, "SELECT * FROM reviews WHERE image_id = $id ORDER BY ts, review_id", {"id": image_id})
    return decode_json(df, ("box",))


# -- events, alerts, resources, evaluations ------------------------------------------------------
def events(
    db: DbRef, *, kinds: Sequence[str] | None = None, limit: int | None = None, since: datetime | None = None,
    version: str | None = None, include_demo: bool = True,
) -> pd.DataFrame:
    """Model events, newest first (``evidence`` decoded)."""
    df = read(db, """
        SELECT * FROM events
        WHERE ($kinds IS NULL OR list_contains($kinds, kind)) AND ($since IS NULL OR ts >= $since)
          AND ($version IS NULL OR from_version = $version OR to_version = $version)
          AND ($include_demo OR NOT demo)
        ORDER BY ts DESC, event_id LIMIT $limit
    """, {"kinds": list(kinds) if kinds is not None else None, "since": as_utc(since), "version": version,
          "limit": int(limit) if limit is not None else 2**62, "include_demo": include_demo})
    return decode_json(df, ("evidence",))


SERVING_EVENT_KINDS = ("switch", "promote", "rollback")


def current_version_at(db: DbRef, when: datetime | None = None, *, include_demo: bool = True) -> str | None:
    """The stable version at ``when``: the ``to_version`` of the last switch, promote or rollback before it."""
    df = read(db, """
        SELECT to_version FROM events
        WHERE list_contains($kinds, kind) AND to_version IS NOT NULL AND ts <= $when AND ($include_demo OR NOT demo)
        ORDER BY ts DESC LIMIT 1
    """, {"kinds": list(SERVING_EVENT_KINDS), "when": utc_now_or(when), "include_demo": include_demo})
    return None if df.empty else str(df.iloc[0, 0])


def alerts(
    db: DbRef, *, open_only: bool = False, limit: int | None = None, include_demo: bool = True
) -> pd.DataFrame:
    """Alerts, newest first, with ``acked_ts``/``acked_by`` of the first acknowledgement and ``open``."""
    df = read(db, """
        WITH first_ack AS (
            SELECT alert_id, min(ts) AS acked_ts, arg_min(actor, ts) AS acked_by FROM alert_acks GROUP BY alert_id
        )
        SELECT a.*, f.acked_ts, f.acked_by, f.acked_ts IS NULL AS open
        FROM alerts a LEFT JOIN first_ack f USING (alert_id)
        WHERE (NOT $open_only OR f.acked_ts IS NULL) AND ($include_demo OR NOT a.demo)
        ORDER BY a.ts DESC, a.alert_id LIMIT $limit
    """, {"open_only": open_only, "limit": int(limit) if limit is not None else 2**62,
          "include_demo": include_demo})
    return decode_json(df, ("evidence",))


def resource_samples(
    db: DbRef, *, minutes: float = 60.0, now: datetime | None = None, include_demo: bool = True
) -> pd.DataFrame:
    """CPU % and resident MB per process over the last ``minutes``, oldest first."""
    now_utc = utc_now_or(now)
    return read(db, """
        SELECT ts, pid, source, cpu_percent, rss_mb, demo FROM resource_samples
        WHERE ts >= $since AND ts <= $now AND ($include_demo OR NOT demo)
        ORDER BY ts, pid
    """, {"since": now_utc - timedelta(minutes=minutes), "now": now_utc, "include_demo": include_demo})


def evaluations(db: DbRef, *, version: str | None = None, include_demo: bool = True) -> pd.DataFrame:
    """Evaluation results, latest first (``metrics`` as dicts, ``pr_curve`` as lists)."""
    df = read(db, """
        SELECT * FROM evaluations
        WHERE ($version IS NULL OR model_version = $version) AND ($include_demo OR NOT demo)
        ORDER BY ts DESC, eval_id
    """, {"version": version, "include_demo": include_demo})
    return decode_json(df, ("metrics", "pr_curve"))


# -- status --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LogStatus:
    """What ``faceguard log status`` prints."""

    db_path: Path
    exists: bool
    schema_version: int = 0
    latest_schema_version: int = LATEST_VERSION
    size_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    demo_rows: int = 0
    spool_files: int = 0
    pending_spool_bytes: int = 0
    last_image_ts: datetime | None = None


def log_status(db: DbRef, *, spool_dir: Path | None = None) -> LogStatus:
    """Row counts, schema version and what still waits in the spool.

    The spool directory comes from ``Settings`` (or ``spool_dir``; default ``<db dir>/spool``).
    """
    path = db_path(db)
    if spool_dir is None:
        spool_dir = db.spool_dir if isinstance(db, Settings) else path.parent / "spool"
    counts = " UNION ALL ".join(
        f"SELECT '{t}' AS tbl, count(*) AS n, count(*) FILTER (WHERE demo) AS demo FROM {t}" for t in RECORD_TABLES
    )
    with open_for_read(path, timeout_s=READ_TIMEOUT_S) as con:
        if con is None:
            files = spool_files(spool_dir)
            return LogStatus(db_path=path, exists=False, spool_files=len(files),
                             pending_spool_bytes=pending_spool_bytes(spool_dir, {}))
        version = schema_version(con)
        df = con.execute(counts).df()
        offsets = dict(con.execute("SELECT spool, offset_bytes FROM spool_offsets").fetchall())
        last = con.execute("SELECT max(ts) FROM images").fetchone()
    return LogStatus(
        db_path=path, exists=True, schema_version=version, size_bytes=path.stat().st_size,
        rows={str(t): int(n) for t, n in zip(df["tbl"], df["n"])}, demo_rows=int(df["demo"].sum()),
        spool_files=len(spool_files(spool_dir)), pending_spool_bytes=pending_spool_bytes(spool_dir, offsets),
        last_image_ts=last[0] if last else None,
    )


__all__ = [
    "SERVING_EVENT_KINDS", "LogStatus", "alerts", "current_version_at", "evaluations", "events", "image_by_hash",
    "log_status", "recent_images", "resource_samples", "review_queue", "reviews_for",
]
