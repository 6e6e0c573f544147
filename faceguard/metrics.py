"""Coarser views of ``queries.metrics_by_version`` rows without reading the log again.

One hourly read of a week of a 1,000,000-image log takes most of a second; a page that also
needs daily quality figures and per-version totals rolls the hourly rows up instead of
reading twice more. Every count adds up exactly, so the rates built from counts are exact
too, with the definitions of ``faceguard.log.queries``:

    error_rate   = errors / images              flagged_rate = flagged / images
    precision    = confirmed / (confirmed + false_positives)      (n_precision)
    recall       = confirmed / (confirmed + missed)               (n_recall)
    fp_per_100   = 100 * false_positives / reviewed_images
    mean_ms      = mean over ok images (each bucket's mean weighted by its ok images)

Percentiles do not add up: ``p50_ms`` / ``p95_ms`` of a rolled-up row are NaN, and so is
``share`` (the served-traffic denominators are not in the rows). Read them at the finer bucket.

>>> import pandas as pd
>>> rows = pd.DataFrame({"bucket": pd.to_datetime(["2024-05-01 10:00", "2024-05-01 11:00"], utc=True),
...     "model_version": ["v1.1.0-prod"] * 2, "images": [10, 30], "faces": [12, 40], "errors": [0, 3],
...     "mean_ms": [40.0, 50.0], "flagged": [1, 2], "reviewed_images": [1, 2], "confirmed": [2, 3],
...     "false_positives": [0, 1], "missed": [1, 0]})
>>> day = rollup(rows, "day").iloc[0]
>>> int(day["images"]), float(round(day["recall"], 3)), float(round(day["mean_ms"], 1))
(40, 0.833, 47.3)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from faceguard.log.queries import METRIC_COLUMNS

COUNTS = ["images", "faces", "errors", "flagged", "reviewed_images", "confirmed", "false_positives", "missed"]
FREQ = {"hour": "h", "day": "D", "week": "W-MON"}


def rollup(df: pd.DataFrame, bucket: str | None) -> pd.DataFrame:
    """``df`` (rows of ``metrics_by_version``) per version and ``bucket`` ("hour", "day",
    "week" in UTC, or None for one row per version), with the same columns."""
    if bucket is not None and bucket not in FREQ:
        raise ValueError(f"bucket must be one of {', '.join(FREQ)} or None, got {bucket!r}")
    data = df.copy()
    for col in COUNTS:
        data[col] = data[col].fillna(0) if col in data else 0
    ok = data["images"] - data["errors"]
    data["_ms_sum"] = data["mean_ms"].fillna(0.0) * ok.where(data["mean_ms"].notna(), 0)
    data["_ms_n"] = ok.where(data["mean_ms"].notna(), 0)
    if bucket is None:
        data["bucket"] = pd.NaT
        keys = ["model_version"]
    else:
        ts = pd.to_datetime(data["bucket"], utc=True)
        if bucket == "week":
            data["bucket"] = ts.dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time.dt.tz_localize("UTC")
        else:
            data["bucket"] = ts.dt.floor(FREQ[bucket])
        keys = ["bucket", "model_version"]
    out = data.groupby(keys, dropna=False, sort=True)[[*COUNTS, "_ms_sum", "_ms_n"]].sum().reset_index()
    if bucket is None:
        out.insert(0, "bucket", pd.NaT)
    out["error_rate"] = _ratio(out["errors"], out["images"])
    out["mean_ms"] = _ratio(out["_ms_sum"], out["_ms_n"])
    out["p50_ms"] = np.nan
    out["p95_ms"] = np.nan
    out["share"] = np.nan
    out["flagged_rate"] = _ratio(out["flagged"], out["images"])
    out["n_precision"] = out["confirmed"] + out["false_positives"]
    out["n_recall"] = out["confirmed"] + out["missed"]
    out["precision"] = _ratio(out["confirmed"], out["n_precision"])
    out["recall"] = _ratio(out["confirmed"], out["n_recall"])
    out["fp_per_100"] = 100.0 * _ratio(out["false_positives"], out["reviewed_images"])
    for col in [*COUNTS, "n_precision", "n_recall"]:
        out[col] = out[col].astype("int64")
    return out[METRIC_COLUMNS].reset_index(drop=True)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64")
    return (num.astype("float64") / den.where(den > 0)).astype("float64")


__all__ = ["rollup"]
