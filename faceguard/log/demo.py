"""Synthetic history so every page has something to show on a fresh install.

``write_demo_data(settings, rows=N)`` writes, straight into DuckDB and in bulk (numpy draws,
one DataFrame per table, string columns built by DuckDB), ``days`` of traffic ending now:

- ``v1.0.0-prod`` stable at first; ``v1.1.0-prod`` canaried at 5% from 25% of the period and
  promoted at 35%: the current stable version;
- ``v1.2.0-beta`` canaried at 5% from 55% of the period to now, half its traffic shadowed by
  the stable version; on one day (from 70% of the period) it regresses: latency roughly
  triples and false positives quadruple, two guard alerts fire and one is acknowledged;
- flagged images (2% of stable and all canary traffic), about half of them reviewed, with
  per-detection verdicts (precision ~0.93-0.97) and missed faces (recall ~0.95);
- switch / canary / promote events, one evaluation per version with a PR curve, and a CPU /
  memory sample per minute for an app and a batch process.

Every demo row has ``demo = true`` (and images ``source = 'demo'``); ``remove_demo_data``
deletes exactly those rows. Writing demo data first removes any earlier demo data, so the
database holds one coherent demo history.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd

from faceguard.config import Settings
from faceguard.log.rows import insert_lines
from faceguard.log.records import AlertAck, AlertRecord, EvaluationRecord, EventRecord
from faceguard.log.schema import RECORD_TABLES, open_for_write

OLD, STABLE, BETA = "v1.0.0-prod", "v1.1.0-prod", "v1.2.0-beta"
VERSIONS = (OLD, STABLE, BETA)
DEMO_ACTOR = "demo"
# per version: median latency ms, false positives per detection, missed faces per true face
_PROFILE = {OLD: (46.0, 0.05, 0.07), STABLE: (38.0, 0.035, 0.05), BETA: (34.0, 0.03, 0.04)}
_REGRESSION = (105.0, 0.14, 0.06)
_CANARY_A, _PROMOTE, _CANARY_B, _REGRESS = 0.25, 0.35, 0.55, 0.70
_SIZES = np.array([[1920, 1080], [1280, 720], [4032, 3024], [640, 480], [1080, 1350]])
_ERRORS = np.array(["not_an_image", "truncated", "detector_error", "too_many_pixels"])
_ERROR_MESSAGES = {
    "not_an_image": "bytes are not an image",
    "truncated": "image data ends early",
    "detector_error": "detector runtime failed",
    "too_many_pixels": "image has more pixels than max_pixels",
}

_IMAGES_SQL = """
INSERT INTO images
SELECT md5('demo-' || $seed || '-image-' || i) AS image_id,
       ts,
       sha256('demo-' || $seed || '-input-' || (i % $distinct_inputs)) AS input_sha256,
       'demo' AS source, model_version, variant, num_faces,
       to_json(list_transform(range(num_faces), lambda k: {
           'x': round((hash(i, k, 1) % 1000) / 1000.0 * width * 0.8, 1)::DOUBLE,
           'y': round((hash(i, k, 2) % 1000) / 1000.0 * height * 0.8, 1)::DOUBLE,
           'w': round(24 + (hash(i, k, 3) % 1000) / 1000.0 * width * 0.15, 1)::DOUBLE,
           'h': round(30 + (hash(i, k, 4) % 1000) / 1000.0 * height * 0.18, 1)::DOUBLE,
           'score': round(0.52 + (hash(i, k, 5) % 470) / 1000.0, 4)::DOUBLE
       }))::VARCHAR AS boxes,
       processing_ms,
       json_object('decode', round(processing_ms * 0.14, 2)::DOUBLE, 'detect', round(processing_ms * 0.58, 2)::DOUBLE,
                   'anonymize', round(processing_ms * 0.16, 2)::DOUBLE,
                   'encode', round(processing_ms * 0.12, 2)::DOUBLE)::VARCHAR AS stage_ms,
       width, height, status, error, flagged, flag_reason, shadow_version,
       CASE WHEN shadow_version IS NOT NULL THEN '[]' END AS shadow_boxes,
       shadow_disagree, shadow_version IS NOT NULL AS union_blur, NULL AS review_path, true AS demo
FROM frame
ORDER BY ts
"""

_REVIEWS_SQL = """
INSERT INTO reviews
SELECT md5('demo-' || $seed || '-review-' || j) AS review_id, ts,
       md5('demo-' || $seed || '-image-' || image_index) AS image_id, reviewer, model_version, verdict,
       detection_index,
       CASE WHEN verdict = 'missed' THEN json_object('x', (hash(j, 1) % 800)::DOUBLE, 'y', (hash(j, 2) % 600)::DOUBLE,
            'w', (20 + hash(j, 3) % 40)::DOUBLE, 'h', (24 + hash(j, 4) % 48)::DOUBLE)::VARCHAR END AS box,
       true AS demo
FROM frame
"""

_RESOURCES_SQL = """
INSERT INTO resource_samples
SELECT md5('demo-' || $seed || '-resource-' || j), ts, pid, source, cpu_percent, rss_mb, true FROM frame
"""


def _timestamps(rng: np.random.Generator, n: int, start: datetime, period_s: float) -> np.ndarray:
    """n sorted offsets (seconds from start) with a daytime peak (UTC) and a quiet night."""
    hours = np.arange(24)
    weight = 0.25 + np.exp(-(((hours - 14) / 4.0) ** 2))
    start_hour = start.hour + start.minute / 60
    out = np.empty(0)
    while len(out) < n:
        cand = rng.random(int(n * 1.6) + 16) * period_s
        hour = ((start_hour + cand / 3600) % 24).astype(int)
        keep = rng.random(len(cand)) < weight[hour] / weight.max()
        out = np.concatenate([out, cand[keep]])
    return np.sort(out[:n])


def _image_frame(rng: np.random.Generator, n: int, start: datetime, period_s: float, days: int) -> pd.DataFrame:
    offs = _timestamps(rng, n, start, period_s)
    frac = offs / period_s
    reg_end = _REGRESS + max(1.0 / days, 0.05)
    stable = np.where(frac < _PROMOTE, OLD, STABLE).astype(object)
    to_canary = rng.random(n) < 0.05
    in_a = (frac >= _CANARY_A) & (frac < _PROMOTE) & to_canary
    in_b = (frac >= _CANARY_B) & to_canary
    version = stable.copy()
    version[in_a] = STABLE
    version[in_b] = BETA
    canary = in_a | in_b
    regress = in_b & (frac >= _REGRESS) & (frac < reg_end)

    median = np.array([_PROFILE[v][0] for v in VERSIONS])[np.searchsorted(VERSIONS, version)]
    median = np.where(regress, _REGRESSION[0], median)
    faces = np.minimum(rng.poisson(1.4, n), 12)
    ms = median * np.exp(rng.normal(0, 0.28, n)) + 1.5 * faces
    sizes = _SIZES[rng.integers(0, len(_SIZES), n)]
    failed = rng.random(n) < np.where(regress, 0.012, 0.004)
    codes = _ERRORS[rng.integers(0, len(_ERRORS), n)]
    status = np.where(failed, codes, "ok")
    faces = np.where(failed, 0, faces)
    ms = np.where(failed, ms * 0.2, ms)
    low_margin = rng.random(n) < 0.006
    flagged = ~failed & (canary | (rng.random(n) < 0.02) | low_margin)
    reason = np.where(canary, "canary", np.where(low_margin, "low_margin", "sampled"))
    shadowed = canary & (rng.random(n) < 0.5)
    disagree = shadowed & (rng.random(n) < np.where(regress, 0.3, 0.07))
    shadow_version = np.where(frac < _PROMOTE, OLD, STABLE).astype(object)
    return pd.DataFrame({
        "i": np.arange(n, dtype=np.int64),
        "ts": pd.to_datetime(start) + pd.to_timedelta(offs, unit="s"),
        "model_version": version.astype(str),
        "variant": np.where(canary, "canary", "stable"),
        "num_faces": faces.astype(np.int32),
        "processing_ms": np.round(ms, 2),
        "width": sizes[:, 0].astype(np.int32),
        "height": sizes[:, 1].astype(np.int32),
        "status": status,
        "error": pd.Series([_ERROR_MESSAGES.get(c) for c in codes], dtype=object).where(failed, None),
        "flagged": flagged,
        "flag_reason": pd.Series(reason, dtype=object).where(flagged, None),
        "shadow_version": pd.Series(shadow_version, dtype=object).where(shadowed, None),
        "shadow_disagree": pd.Series(disagree, dtype=object).where(shadowed, None),
        "regress": regress,
    })


def _review_frame(rng: np.random.Generator, images: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per-detection verdicts and missed faces for about half the flagged images older than 3 hours."""
    age_ok = images["ts"] < pd.Timestamp(now) - pd.Timedelta(hours=3)
    pick = images[images["flagged"] & age_ok & (rng.random(len(images)) < 0.55)]
    ids = pick.index.to_numpy()
    fp_rate = np.array([_PROFILE[v][1] for v in pick["model_version"]])
    miss_rate = np.array([_PROFILE[v][2] for v in pick["model_version"]])
    fp_rate = np.where(pick["regress"], _REGRESSION[1], fp_rate)
    miss_rate = np.where(pick["regress"], _REGRESSION[2], miss_rate)
    faces = pick["num_faces"].to_numpy()
    # detections: one verdict each
    det_img = np.repeat(ids, faces)
    det_index = np.concatenate([np.arange(k) for k in faces]) if len(faces) else np.empty(0, int)
    det_fp = rng.random(len(det_img)) < np.repeat(fp_rate, faces)
    # missed faces: Poisson around miss_rate per true face
    missed = rng.poisson(miss_rate * np.maximum(faces, 1))
    miss_img = np.repeat(ids, missed)
    img_of = np.concatenate([det_img, miss_img]).astype(np.int64)
    verdict = np.concatenate([np.where(det_fp, "false_positive", "correct"), np.full(len(miss_img), "missed")])
    index = np.concatenate([det_index, np.full(len(miss_img), -1)])
    reviewers = np.array(["ana", "ben", "chen"])
    reviewer_of_image = reviewers[rng.integers(0, 3, len(images))]
    delay = pd.to_timedelta(rng.uniform(0.5, 3.0, len(img_of)), unit="h")
    ts = images["ts"].iloc[img_of].reset_index(drop=True) + pd.Series(delay)
    return pd.DataFrame({
        "j": np.arange(len(img_of), dtype=np.int64),
        "ts": ts,
        "image_index": img_of,
        "reviewer": reviewer_of_image[img_of],
        "model_version": images["model_version"].to_numpy()[img_of],
        "verdict": verdict,
        "detection_index": pd.Series(index, dtype="Int32").mask(index < 0),
    })


def _resource_frame(rng: np.random.Generator, start: datetime, period_s: float, reg: tuple[float, float]) -> pd.DataFrame:
    minutes = int(period_s // 60)
    offs = np.arange(minutes) * 60.0
    frames = []
    for pid, source, base_cpu, base_mb in ((4242, "app", 32.0, 380.0), (5151, "batch", 55.0, 300.0)):
        frac = offs / period_s
        hot = (frac >= reg[0]) & (frac < reg[1])
        frames.append(pd.DataFrame({
            "ts": pd.to_datetime(start) + pd.to_timedelta(offs, unit="s"),
            "pid": pid,
            "source": source,
            "cpu_percent": np.clip(base_cpu + rng.normal(0, 8, minutes) + np.where(hot, 25, 0), 0, 100).round(1),
            "rss_mb": (base_mb + 15 * np.sin(offs / 5400) + rng.normal(0, 3, minutes) + np.where(hot, 60, 0)).round(1),
        }))
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "j", np.arange(len(out), dtype=np.int64))
    return out


def _pr_curve(recall_at_best: float, precision_at_best: float) -> list[list[float]]:
    thresholds = np.round(np.linspace(0.05, 0.95, 19), 2)
    recall = np.clip(recall_at_best + 0.04 - 0.35 * (thresholds - 0.05) ** 2, 0, 1)
    precision = np.clip(precision_at_best - 0.25 * (0.95 - thresholds) ** 3, 0, 1)
    return [[round(float(r), 4), round(float(p), 4), float(t)] for r, p, t in zip(recall, precision, thresholds)]


def _small_records(start: datetime, period_s: float, reg: tuple[float, float]) -> list:
    def at(frac: float) -> datetime:
        return start + timedelta(seconds=period_s * frac)

    gate = {"days": 3, "recall": 0.957, "precision": 0.961, "fp_per_100": 0.4, "mean_ms": 41.2}
    records: list = [
        EventRecord(ts=at(0.0), kind="switch", actor="admin", to_version=OLD, reason="initial install", demo=True),
        EventRecord(ts=at(_CANARY_A), kind="canary_start", actor="admin", from_version=OLD, to_version=STABLE,
                    reason="new release", evidence={"canary_percent": 5}, demo=True),
        EventRecord(ts=at(_PROMOTE), kind="promote", actor="admin", from_version=OLD, to_version=STABLE,
                    reason="promotion gate met", evidence=gate, demo=True),
        EventRecord(ts=at(_CANARY_B), kind="canary_start", actor="admin", from_version=STABLE, to_version=BETA,
                    reason="smaller, faster detector", evidence={"canary_percent": 5}, demo=True),
    ]
    latency = AlertRecord(ts=at(reg[0] + 0.01), rule="latency_mean", version=BETA,
                          message=f"{BETA}: mean latency 112 ms over 5 min (limit 100 ms)",
                          evidence={"mean_ms": 112.4, "n": 57, "window_minutes": 5}, demo=True)
    fp = AlertRecord(ts=at(reg[0] + 0.02), rule="fp_rate", version=BETA,
                     message=f"{BETA}: 2.4 false positives per 100 reviewed images (limit 1.5)",
                     evidence={"reviewed_fp": 3, "reviewed_total": 100}, demo=True)
    records += [
        latency, fp,
        AlertAck(alert_id=latency.alert_id, ts=at(reg[0] + 0.03), actor="admin", demo=True),
        EventRecord(ts=at(reg[0] + 0.03), kind="ack", actor="admin", to_version=BETA, reason="investigating",
                    evidence={"alert_id": latency.alert_id}, demo=True),
    ]
    for frac, version, (recall, precision) in ((0.0, OLD, (0.93, 0.95)), (_CANARY_A - 0.01, STABLE, (0.955, 0.965)),
                                               (_CANARY_B - 0.01, BETA, (0.962, 0.958))):
        metrics = {"recall": recall, "precision": precision, "ap": round(recall * precision, 4),
                   "recall_small": round(recall - 0.12, 4), "recall_medium": round(recall - 0.01, 4),
                   "recall_large": round(min(recall + 0.03, 1.0), 4), "fp_per_100_negatives": 3.1,
                   "p50_ms": _PROFILE[version][0], "p95_ms": round(_PROFILE[version][0] * 1.6, 1),
                   "n_images": 500, "n_faces": 1340}
        records.append(EvaluationRecord(ts=at(frac), model_version=version, dataset="demo-faces-val",
                                        metrics=metrics, pr_curve=_pr_curve(recall, precision), demo=True))
    return records


def _delete_demo(con: duckdb.DuckDBPyConnection) -> int:
    removed = 0
    for table in RECORD_TABLES:
        row = con.execute(f"DELETE FROM {table} WHERE demo").fetchone()
        removed += int(row[0]) if row else 0
    return removed


def write_demo_data(
    settings: Settings, *, rows: int, days: int = 7, seed: int = 0, now: datetime | None = None
) -> int:
    """Replace any demo data with ``rows`` synthetic images (and their reviews, events...) over ``days``.

    Returns the number of image rows written.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    period_s = days * 86400.0
    start = end - timedelta(seconds=period_s)
    reg = (_REGRESS, _REGRESS + max(1.0 / days, 0.05))
    rng = np.random.default_rng(seed)
    images = _image_frame(rng, rows, start, period_s, days)
    reviews = _review_frame(rng, images, end)
    resources = _resource_frame(rng, start, period_s, reg)
    small = _small_records(start, period_s, reg)
    params = {"seed": seed}
    with open_for_write(settings.db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            _delete_demo(con)
            frame = images.drop(columns=["regress"])  # noqa: F841 (scanned by DuckDB)
            con.execute(_IMAGES_SQL, {**params, "distinct_inputs": max(int(rows * 0.97), 1)})
            frame = reviews  # noqa: F841
            con.execute(_REVIEWS_SQL, params)
            frame = resources  # noqa: F841
            con.execute(_RESOURCES_SQL, params)
            by_kind: dict[str, list[str]] = {}
            for record in small:
                by_kind.setdefault(record.KIND, []).append(record.to_json())
            for kind, lines in by_kind.items():
                insert_lines(con, kind, lines)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return rows


def remove_demo_data(settings: Settings) -> int:
    """Delete every demo row (``demo = true``) from every table; returns how many went."""
    if not settings.db_path.exists():
        return 0
    with open_for_write(settings.db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            removed = _delete_demo(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return removed
