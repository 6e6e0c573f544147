"""The log's figures: the metrics the pages draw and the windows the rollback rules judge.

Each function opens the database read-only for one query (waiting briefly while an ingest
holds it) and returns a DataFrame or a small frozen dataclass. ``db`` is a ``Settings`` or
the database path. A database that does not exist yet gives empty, correctly-typed results,
so every page works on a fresh install. Timestamps come back as UTC-aware ``datetime64``.

The reads of rows as recorded (images, reviews, events, alerts, evaluations, log status)
live in ``lookups`` and are re-exported here, so ``queries.<name>`` reaches every read.

Definitions (per model version, per time bucket of the image's timestamp):

- images: every logged image of the version; share: its part of the bucket's served traffic
  (rows of variant ``shadow`` ran beside another version and are not traffic).
- error_rate = non-ok images / images. Latency (mean, p50, p95) is over ok images, p50/p95
  linearly interpolated (``numpy.percentile``'s default).
- flagged_rate = images flagged for review / images.
- From reviews, where the latest review of an image (by one reviewer) supersedes earlier
  ones: confirmed = detections judged correct, false_positives = detections judged wrong,
  missed = faces the reviewer added.
  precision = confirmed / (confirmed + false_positives)   sample size n_precision
  recall    = confirmed / (confirmed + missed)             sample size n_recall
  fp_per_100 = 100 * false_positives / reviewed_images     sample size reviewed_images
  A rate whose sample size is 0 is NaN, not 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Sequence

import numpy as np
import pandas as pd

from faceguard.log.reading import LATEST_REVIEWS, DbRef, as_utc, read, utc_now_or

# Callers reach every read as ``queries.<name>``: the row lookups and the shared read helpers
# that lived here before are re-exported under their old names.
from faceguard.log.lookups import (  # noqa: F401
    SERVING_EVENT_KINDS,
    LogStatus,
    alerts,
    current_version_at,
    evaluations,
    events,
    image_by_hash,
    log_status,
    recent_images,
    resource_samples,
    review_queue,
    reviews_for,
)
from faceguard.log.reading import READ_TIMEOUT_S, db_path  # noqa: F401

BUCKETS = {"minute": "minute", "hour": "hour", "day": "day", "week": "week"}

# -- metrics ------------------------------------------------------------------------------------
METRIC_COLUMNS = [
    "bucket", "model_version", "images", "faces", "errors", "error_rate", "mean_ms", "p50_ms", "p95_ms",
    "share", "flagged", "flagged_rate", "reviewed_images", "confirmed", "false_positives", "missed",
    "precision", "recall", "fp_per_100", "n_precision", "n_recall",
]


def metrics_by_version(
    db: DbRef,
    *,
    bucket: str | None = "hour",
    since: datetime | None = None,
    until: datetime | None = None,
    versions: Sequence[str] | None = None,
    include_demo: bool = True,
) -> pd.DataFrame:
    """Traffic, errors, latency and review quality per version and time bucket (see module docs).

    ``bucket`` is ``"minute"``, ``"hour"``, ``"day"``, ``"week"`` (UTC) or None for one row per
    version over the whole range. ``since`` is inclusive, ``until`` exclusive.
    """
    if bucket is not None and bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)} or None, got {bucket!r}")
    # bucket=None: one constant bucket, not NULL: the FULL OUTER JOIN ... USING (bucket, ...) below
    # never matches NULL to NULL, which split traffic and review rows apart (set back to NaT after).
    bucket_sql = f"date_trunc('{BUCKETS[bucket]}', ts)" if bucket else "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
    # only the filters asked for, so DuckDB can prune row groups by their ts min/max
    where = ["TRUE"]
    if not include_demo:
        where.append("NOT demo")
    if since is not None:
        where.append("ts >= $since")
    if until is not None:
        where.append("ts < $until")
    if versions is not None:
        where.append("list_contains($versions, model_version)")
    sql = f"""
    WITH traffic AS (
        SELECT {bucket_sql} AS bucket, model_version,
               count(*) AS images,
               count(*) FILTER (WHERE variant <> 'shadow') AS served,
               sum(num_faces) AS faces,
               count(*) FILTER (WHERE status <> 'ok') AS errors,
               avg(processing_ms) FILTER (WHERE status = 'ok') AS mean_ms,
               quantile_cont(processing_ms, [0.5, 0.95]) FILTER (WHERE status = 'ok') AS q,
               count(*) FILTER (WHERE flagged) AS flagged
        FROM images WHERE {' AND '.join(where)}
        GROUP BY ALL
    ),
    {LATEST_REVIEWS},
    quality AS (
        SELECT {bucket_sql.replace('ts', 'i.ts')} AS bucket, r.model_version,
               count(DISTINCT r.image_id) AS reviewed_images,
               count(*) FILTER (WHERE r.verdict = 'correct') AS confirmed,
               count(*) FILTER (WHERE r.verdict = 'false_positive') AS false_positives,
               count(*) FILTER (WHERE r.verdict = 'missed') AS missed
        FROM latest_reviews r JOIN (SELECT image_id, ts FROM images WHERE {' AND '.join(where)}) AS i USING (image_id)
        WHERE $versions IS NULL OR list_contains($versions, r.model_version)
        GROUP BY ALL
    )
    SELECT {"bucket" if bucket else "NULL::TIMESTAMPTZ AS bucket"}, model_version,
           coalesce(images, 0) AS images, coalesce(faces, 0) AS faces, coalesce(errors, 0) AS errors,
           errors / nullif(images, 0) AS error_rate,
           mean_ms, q[1] AS p50_ms, q[2] AS p95_ms,
           served / nullif(sum(served) OVER (PARTITION BY traffic.bucket), 0) AS share,
           coalesce(flagged, 0) AS flagged, flagged / nullif(images, 0) AS flagged_rate,
           coalesce(reviewed_images, 0) AS reviewed_images, coalesce(confirmed, 0) AS confirmed,
           coalesce(false_positives, 0) AS false_positives, coalesce(missed, 0) AS missed,
           confirmed / nullif(confirmed + false_positives, 0) AS precision,
           confirmed / nullif(confirmed + missed, 0) AS recall,
           100.0 * false_positives / nullif(reviewed_images, 0) AS fp_per_100,
           coalesce(confirmed + false_positives, 0) AS n_precision,
           coalesce(confirmed + missed, 0) AS n_recall
    FROM traffic FULL OUTER JOIN quality USING (bucket, model_version)
    ORDER BY bucket NULLS FIRST, model_version
    """
    df = read(db, sql, {
        "include_demo": include_demo, "since": as_utc(since), "until": as_utc(until),
        "versions": list(versions) if versions is not None else None,
    })
    if bucket is None:
        df["bucket"] = pd.NaT
    for col in ("images", "faces", "errors", "flagged", "reviewed_images", "confirmed", "false_positives",
                "missed", "n_precision", "n_recall"):
        df[col] = df[col].astype("int64")
    for col in ("error_rate", "mean_ms", "p50_ms", "p95_ms", "share", "flagged_rate", "precision", "recall",
                "fp_per_100"):
        df[col] = df[col].astype("float64")
    return df[METRIC_COLUMNS]


@dataclass(frozen=True, kw_only=True)
class WindowStats:
    """One version's most recent images, as the rollback rules see them.

    ``reviewed_total`` counts reviewed images in the window and ``reviewed_fp`` the false
    positives found in them, so ``fp_rate`` is false positives per reviewed image (the unit
    of ``GuardSettings.max_fp_rate`` and, times 100, of ``fp_per_100``).
    """

    version: str
    n: int = 0
    errors: int = 0
    consecutive_failures: int = 0  # trailing run of non-ok images, newest first
    mean_ms: float | None = None  # over ok images
    p95_ms: float | None = None
    reviewed_fp: int = 0
    reviewed_total: int = 0
    reviewed_confirmed: int = 0
    reviewed_missed: int = 0
    shadow_disagreements: int = 0
    shadow_total: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.n if self.n else None

    @property
    def fp_rate(self) -> float | None:
        return self.reviewed_fp / self.reviewed_total if self.reviewed_total else None

    @property
    def shadow_disagreement_rate(self) -> float | None:
        return self.shadow_disagreements / self.shadow_total if self.shadow_total else None


def window_stats(
    db: DbRef,
    *,
    version: str,
    last_n: int | None = None,
    last_minutes: float | None = None,
    now: datetime | None = None,
    reviewed_only: bool = False,
    include_demo: bool = False,
) -> WindowStats:
    """Stats over the version's last ``last_n`` images and/or those of the last ``last_minutes``.

    With both, the window is the intersection; with neither, all of the version's images up
    to ``now``. ``reviewed_only`` restricts the window to reviewed images (for a rule like
    "false positives in the last 100 reviewed images"). Demo rows are left out by default so
    demo data can never trigger a rollback.
    """
    if last_n is not None and last_n <= 0:
        raise ValueError(f"last_n must be positive, got {last_n}")
    now_utc = utc_now_or(now)
    since = now_utc - timedelta(minutes=last_minutes) if last_minutes is not None else None
    sql = f"""
    WITH {LATEST_REVIEWS.strip()},
    w AS (
        SELECT image_id, ts, status, processing_ms, shadow_version, shadow_disagree
        FROM images
        WHERE model_version = $version AND ts <= $now {"AND ts >= $since" if since is not None else ""}
          AND ($include_demo OR NOT demo)
          AND (NOT $reviewed_only OR image_id IN (SELECT image_id FROM latest_reviews WHERE model_version = $version))
        ORDER BY ts DESC, image_id DESC
        LIMIT $limit
    ),
    last_ok AS (SELECT max(ts) FILTER (WHERE status = 'ok') AS t FROM w),
    rv AS (
        SELECT count(DISTINCT r.image_id) AS total,
               count(*) FILTER (WHERE verdict = 'false_positive') AS fp,
               count(*) FILTER (WHERE verdict = 'correct') AS confirmed,
               count(*) FILTER (WHERE verdict = 'missed') AS missed
        FROM latest_reviews r JOIN w USING (image_id) WHERE r.model_version = $version
    )
    SELECT count(*) AS n,
           count(*) FILTER (WHERE status <> 'ok') AS errors,
           count(*) FILTER (WHERE status <> 'ok' AND ((SELECT t FROM last_ok) IS NULL OR ts > (SELECT t FROM last_ok)))
               AS consecutive_failures,
           avg(processing_ms) FILTER (WHERE status = 'ok') AS mean_ms,
           quantile_cont(processing_ms, 0.95) FILTER (WHERE status = 'ok') AS p95_ms,
           (SELECT fp FROM rv) AS reviewed_fp, (SELECT total FROM rv) AS reviewed_total,
           (SELECT confirmed FROM rv) AS reviewed_confirmed, (SELECT missed FROM rv) AS reviewed_missed,
           count(*) FILTER (WHERE shadow_disagree) AS shadow_disagreements,
           count(*) FILTER (WHERE shadow_version IS NOT NULL) AS shadow_total,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM w
    """
    df = read(db, sql, {
        "version": version, "now": now_utc, "since": since, "include_demo": include_demo,
        "reviewed_only": reviewed_only, "limit": last_n if last_n is not None else 2**62,
    })
    row = df.iloc[0]

    def num(v: Any) -> float | None:
        return None if pd.isna(v) else float(v)

    def when(v: Any) -> datetime | None:
        return None if pd.isna(v) else pd.Timestamp(v).to_pydatetime()

    return WindowStats(
        version=version, n=int(row["n"]), errors=int(row["errors"]),
        consecutive_failures=int(row["consecutive_failures"]), mean_ms=num(row["mean_ms"]),
        p95_ms=num(row["p95_ms"]), reviewed_fp=int(row["reviewed_fp"]), reviewed_total=int(row["reviewed_total"]),
        reviewed_confirmed=int(row["reviewed_confirmed"]), reviewed_missed=int(row["reviewed_missed"]),
        shadow_disagreements=int(row["shadow_disagreements"]), shadow_total=int(row["shadow_total"]),
        first_ts=when(row["first_ts"]), last_ts=when(row["last_ts"]),
    )


def latency_samples(
    db: DbRef, version: str, since: datetime | None = None, until: datetime | None = None, *,
    include_demo: bool = True,
) -> np.ndarray:
    """Per-image processing_ms of the version's ok images in [since, until), for bootstrapping."""
    df = read(db, f"""
        SELECT processing_ms FROM images
        WHERE model_version = $version AND status = 'ok' AND ($include_demo OR NOT demo)
          {"AND ts >= $since" if since is not None else ""} {"AND ts < $until" if until is not None else ""}
        ORDER BY ts
    """, {"version": version, "since": as_utc(since), "until": as_utc(until), "include_demo": include_demo})
    return df["processing_ms"].to_numpy(dtype=np.float64)


def daily_latency_samples(
    db: DbRef, version: str, since: datetime, until: datetime, *, include_demo: bool = True
) -> dict[date, np.ndarray]:
    """``latency_samples`` of [since, until) split by UTC day, in one read (the gate's per-day intervals)."""
    df = read(db, """
        SELECT date_trunc('day', ts) AS day, processing_ms FROM images
        WHERE model_version = $version AND status = 'ok' AND ($include_demo OR NOT demo)
          AND ts >= $since AND ts < $until
        ORDER BY ts
    """, {"version": version, "since": as_utc(since), "until": as_utc(until), "include_demo": include_demo})
    return {pd.Timestamp(day).tz_convert("UTC").date(): group["processing_ms"].to_numpy(dtype=np.float64)
            for day, group in df.groupby("day", sort=True)}


def variant_counts(
    db: DbRef, since: datetime | None = None, until: datetime | None = None, *, include_demo: bool = True
) -> pd.DataFrame:
    """Images per (model_version, variant) in [since, until): columns model_version, variant, images, share."""
    return read(db, f"""
        SELECT model_version, variant, count(*) AS images,
               count(*) / sum(count(*)) OVER () AS share
        FROM images
        WHERE ($include_demo OR NOT demo)
          {"AND ts >= $since" if since is not None else ""} {"AND ts < $until" if until is not None else ""}
        GROUP BY model_version, variant ORDER BY images DESC, model_version, variant
    """, {"since": as_utc(since), "until": as_utc(until), "include_demo": include_demo})


@dataclass(frozen=True, kw_only=True)
class Volume:
    """Traffic of one UTC day."""

    day: datetime
    images: int = 0
    faces: int = 0
    errors: int = 0
    flagged: int = 0


def today_volume(db: DbRef, now: datetime | None = None, *, include_demo: bool = True) -> Volume:
    """Images, faces, errors and flags since midnight UTC of ``now``."""
    day = utc_now_or(now).replace(hour=0, minute=0, second=0, microsecond=0)
    df = read(db, """
        SELECT count(*) AS images, coalesce(sum(num_faces), 0) AS faces,
               count(*) FILTER (WHERE status <> 'ok') AS errors, count(*) FILTER (WHERE flagged) AS flagged
        FROM images WHERE ts >= $day AND ts < $day + INTERVAL 1 DAY AND ($include_demo OR NOT demo)
    """, {"day": day, "include_demo": include_demo})
    row = df.iloc[0]
    return Volume(day=day, images=int(row["images"]), faces=int(row["faces"]), errors=int(row["errors"]),
                  flagged=int(row["flagged"]))


__all__ = [
    "LogStatus", "METRIC_COLUMNS", "Volume", "WindowStats", "alerts", "current_version_at", "daily_latency_samples",
    "db_path", "evaluations",
    "events", "image_by_hash", "latency_samples", "log_status", "metrics_by_version", "recent_images",
    "resource_samples", "review_queue", "reviews_for", "today_volume", "variant_counts", "window_stats",
]
