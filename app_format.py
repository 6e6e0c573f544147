"""How the pages show figures and times: percentages, milliseconds, counts, timestamps,
version labels, and the preset time ranges of the range picker.

``app_support`` re-exports these, so pages reach them as ``app.<name>``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import streamlit as st


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms"


def count(n: int | float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "–"
    n = int(n)
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} M"
    if n >= 10_000:
        return f"{n / 1000:.0f} k"
    return f"{n:,}"


def ago(ts: Any, now: datetime | None = None) -> str:
    """'3 min ago' for a timestamp (naive timestamps are taken as UTC)."""
    if ts is None or (not isinstance(ts, datetime) and pd.isna(ts)):
        return "never"
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    seconds = ((now or datetime.now(timezone.utc)) - ts.to_pydatetime()).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def when(ts: Any) -> str:
    """'2024-05-01 12:03 UTC'."""
    if ts is None or (not isinstance(ts, datetime) and pd.isna(ts)):
        return "–"
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def version_label(v: str, *, current: str | None, canary: str | None = None, quarantined=()) -> str:
    tags = []
    if v == current:
        tags.append("current")
    if v == canary:
        tags.append("canary")
    if v in quarantined:
        tags.append("quarantined")
    return f"{v} ({', '.join(tags)})" if tags else v


# -- time ranges ---------------------------------------------------------------------------------
RANGES: dict[str, timedelta | None] = {
    "24 h": timedelta(hours=24), "7 days": timedelta(days=7), "30 days": timedelta(days=30), "All": None,
}


def range_picker(label: str = "Time range", *, key: str, default: str = "7 days") -> tuple[datetime | None, str]:
    """A segmented control of preset ranges; returns (since, bucket) with an hourly or daily bucket."""
    choice = st.segmented_control(label, list(RANGES), default=default, key=key, required=True) or default
    span = RANGES[choice]
    # Whole minutes, so cached reads are reused across reruns within the minute.
    since = now_minute() - span if span is not None else None
    bucket = "hour" if span is not None and span <= timedelta(days=7) else "day"
    return since, bucket


def now_minute() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)
