"""App-only helpers shared by ``Home.py`` and ``pages/``: cached engine, session keys, the
password gates, the empty-log state, cached log queries and formatting.

This is the only module (with the pages) that touches ``st.cache_*`` and
``st.session_state``; ``faceguard`` knows nothing of Streamlit. One ``Engine`` is cached per
process and per data/model folder: it holds a detector per version, so switching the
version picker only passes another ``version=`` to ``Engine.process``, and nothing restarts.
"""

from __future__ import annotations

import io
import math
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any, Callable

import pandas as pd
import streamlit as st

from faceguard.admin import AccessGate, admin_gate, reviewer_gate
from faceguard.config import Settings
from faceguard.errors import FaceguardError
from faceguard.pipeline import Engine

# -- session keys (one place, so pages never collide) --------------------------------------------
REVIEWER = "fg_reviewer"  # the reviewer's name, remembered for the session
REVIEW_UNLOCKED = "fg_review_unlocked"
REVIEW_SKIPPED = "fg_review_skipped"  # image ids skipped in this session
REVIEW_MISSED = "fg_review_missed"  # {image_id: [box, ...]} missed faces being added
REVIEW_REVEALED = "fg_review_revealed"  # (image_id, label, crop) of the one face shown sharp
ADMIN_UNLOCKED = "fg_admin_unlocked"
OPERATOR = "fg_operator"  # who is named as actor of model operations
BLUR_RESULTS = "fg_blur_results"  # processed uploads, so a rerun (a download click) does not redo them
FLASH = "fg_flash"  # a message to show once after st.rerun()

DEMO_ROWS = 50_000  # rows the "Load demo data" button writes (the benchmark uses 1,000,000)
QUERY_TTL_S = 30
MAX_KEPT_RESULTS = 60


# -- routing -------------------------------------------------------------------------------------
def ensure_router() -> None:
    """Run this page inside ``Home.py`` (navigation, page config, rollback banner).

    Every page calls this first. A fresh server that finds a ``pages/`` folder beside the entry
    script uses Streamlit's older folder navigation until some session runs ``st.navigation``:
    a first visit to a deep link (``/blur``) would run the page alone, with a sidebar listing the
    files. Switching that mode off and rerunning sends the same URL through ``Home.py``.
    (``PagesManager.uses_pages_directory`` is Streamlit's own switch, set by ``st.navigation``.)
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without the switch
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


# -- settings, engine, store ------------------------------------------------------------------------
def settings() -> Settings:
    """Settings as configured now (faceguard.toml + FACEGUARD_* environment); cheap to read."""
    return Settings.load()


def _key(s: Settings) -> str:
    return f"{s.home.resolve()}|{s.db_path.resolve()}|{s.models.resolve()}"


def _release(engine: Engine) -> None:
    sampler = getattr(engine, "_resource_sampler", None)
    if sampler is not None:
        sampler.stop()
    engine.close()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_release)
def _engine(key: str, _settings: Settings) -> Engine:
    from faceguard.log import ResourceSampler

    engine = Engine.from_settings(_settings, source="app")
    if engine.log is not None:
        # CPU and memory of this app process, for the System status page.
        engine._resource_sampler = ResourceSampler(engine.log, interval_s=10.0, source="app").start()  # type: ignore[attr-defined]
    return engine


def engine(s: Settings | None = None) -> Engine:
    """The process-wide engine for these settings' folders (models load once per version)."""
    s = s or settings()
    return _engine(_key(s), s)


def store(s: Settings | None = None):
    """The model store, recording its events in the log through the engine's writer."""
    return engine(s).store


def log_writer(s: Settings | None = None):
    return engine(s).log


# -- cached reads of the log ---------------------------------------------------------------------
def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    return value


READERS = {"queries": "faceguard.log.queries", "alerts": "faceguard.alerts", "abtest": "faceguard.abtest"}


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=256)
def _query(module: str, name: str, db: str, args: tuple, kwargs: tuple[tuple[str, Any], ...]) -> Any:
    import importlib

    fn = getattr(importlib.import_module(READERS[module]), name)
    return fn(db, *args, **{k: list(v) if isinstance(v, tuple) else v for k, v in kwargs})


def query(name: str, s: Settings | None = None, *args: Any, module: str = "queries", **kwargs: Any) -> Any:
    """``<module>.<name>(db, *args, **kwargs)`` (a read of the log: ``faceguard.log.queries`` by
    default), cached for ``QUERY_TTL_S`` seconds. Whatever writes to the log calls
    :func:`refresh`, so the next read is fresh."""
    s = s or settings()
    return _query(module, name, str(s.db_path), tuple(_freeze(a) for a in args),
                  tuple(sorted((k, _freeze(v)) for k, v in kwargs.items())))


def live_query(name: str, s: Settings | None = None, **kwargs: Any) -> Any:
    """The same query uncached (live parts that refresh every few seconds)."""
    from faceguard.log import queries

    s = s or settings()
    return getattr(queries, name)(s.db_path, **kwargs)


def refresh() -> None:
    """Forget cached reads and judgements after a write (verdict, rollback, demo data...)."""
    _query.clear()
    _gate.clear()


def operator_name() -> str:
    """Who is named as actor: the unlocked operator, else the reviewer, else "app"."""
    return st.session_state.get(OPERATOR) or st.session_state.get(REVIEWER) or "app"


def has_images(s: Settings | None = None) -> bool:
    status = query("log_status", s)
    return bool(status.rows.get("images", 0))


# -- messages that survive a rerun ---------------------------------------------------------------
def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """Show ``message`` as a toast on the next run (after ``st.rerun()``)."""
    st.session_state[FLASH] = (message, icon)


def show_flash() -> None:
    item = st.session_state.pop(FLASH, None)
    if item:
        st.toast(item[0], icon=item[1])


# -- empty log -----------------------------------------------------------------------------------
def empty_state(s: Settings, what: str) -> None:
    """Say the log is empty, what to do, and offer demo data."""
    with st.container(border=True):
        st.markdown(f"#### :material/inbox: Nothing to show yet\n{what}")
        st.caption(
            "Blur a few photos on the **Blur** page to fill the log with real traffic, or load "
            f"{DEMO_ROWS:,} demo rows (seven days of traffic across the shipped versions, with reviews, "
            "events and alerts; removable at any time)."
        )
        demo_button(s, key=f"demo_{what[:24]}")


def demo_button(s: Settings, *, key: str = "demo") -> None:
    if st.button("Load demo data", icon=":material/dataset:", key=key, type="primary"):
        load_demo(s)


def load_demo(s: Settings, rows: int | None = None) -> None:
    from faceguard.log import write_demo_data

    rows = DEMO_ROWS if rows is None else rows
    with st.spinner(f"Writing {rows:,} demo rows…"):
        try:
            write_demo_data(s, rows=rows)
        except FaceguardError as err:
            st.error(f"Demo data could not be written: {err}")
            return
    refresh()
    flash(f"Loaded {rows:,} demo rows")
    st.rerun()


def remove_demo(s: Settings) -> None:
    from faceguard.log import remove_demo_data

    with st.spinner("Removing demo rows…"):
        remove_demo_data(s)
    refresh()
    flash("Demo data removed", ":material/delete:")
    st.rerun()


# -- password gates ------------------------------------------------------------------------------
def _secrets() -> Any:
    try:
        return st.secrets
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return None


def admin_access(s: Settings) -> AccessGate:
    return admin_gate(s, _secrets())


def reviewer_access(s: Settings) -> AccessGate:
    return reviewer_gate(s, _secrets())


def unlock_form(gate: AccessGate, *, state_key: str, title: str, name_key: str | None = None,
                name_label: str = "Your name") -> bool:
    """Locked message, password form, or True when this session is unlocked."""
    if not gate.configured:
        st.warning(f"**{title} are locked**: no {gate.role} password is set. {gate.how_to}",
                   icon=":material/lock:")
        return False
    if st.session_state.get(state_key):
        return True
    with st.form(f"unlock_{state_key}", border=True):
        st.markdown(f"**:material/lock: {title} need the {gate.role} password**")
        name = None
        if name_key:
            name = st.text_input(name_label, value=st.session_state.get(name_key, ""), key=f"{state_key}_name",
                                 placeholder="recorded with every action")
        password = st.text_input("Password", type="password", key=f"{state_key}_password")
        if st.form_submit_button("Unlock", icon=":material/lock_open:", type="primary"):
            if name_key and not (name or "").strip():
                st.error("Enter your name: it is recorded with every action.")
            elif gate.check(password):
                st.session_state[state_key] = True
                if name_key:
                    st.session_state[name_key] = name.strip()
                st.rerun()
            else:
                st.error("Wrong password.")
    return False


def lock_button(state_key: str, *, label: str = "Lock") -> None:
    if st.button(label, icon=":material/lock:", key=f"lock_{state_key}", type="tertiary"):
        st.session_state.pop(state_key, None)
        st.rerun()


# -- rollback banner -----------------------------------------------------------------------------
def rollback_banner(s: Settings) -> None:
    """The banner shown on every page after a rollback (automatic or manual)."""
    from faceguard import alerts

    try:
        banner = query("rollback_banner", s, module="alerts")
    except FaceguardError:
        return  # the log is busy or broken: the page still renders; System status says why
    if banner is None:
        return
    with st.container(border=True, horizontal=True, vertical_alignment="center"):
        st.markdown(f":red[:material/history: **{banner.title}**]  \n{banner.message}  \n"
                    f":gray[{when(banner.ts)} ({ago(banner.ts)}) · rule `{banner.rule}`"
                    + (f" · failed version {banner.failed_version}" if banner.failed_version else "") + "]")
        if st.button("Acknowledge", icon=":material/done_all:", key="banner_ack",
                     help="Hides this banner for everyone; recorded with your name."):
            alerts.acknowledge(s, banner.alert_id, operator_name())
            refresh()
            st.rerun()


# -- formatting ----------------------------------------------------------------------------------
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


# -- the Blur page's downloads -----------------------------------------------------------------------
def output_name(name: str, fmt: str) -> str:
    ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}.get(fmt.upper(), fmt.lower())
    return f"{PurePath(name).stem}_blurred.{ext}"


def mime(fmt: str) -> str:
    return {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(fmt.upper(), "application/octet-stream")


def zip_outputs(items: list[tuple[str, bytes]]) -> bytes:
    """A zip of (file name, bytes); names made unique. Images are already compressed: stored."""
    buf = io.BytesIO()
    seen: dict[str, int] = {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in items:
            n = seen.get(name, 0)
            seen[name] = n + 1
            if n:
                p = PurePath(name)
                name = f"{p.stem}_{n}{p.suffix}"
            zf.writestr(name, data)
    return buf.getvalue()


def remember(key: str, value: Any) -> None:
    """Keep a processed upload in the session (bounded), so reruns reuse it."""
    results: dict = st.session_state.setdefault(BLUR_RESULTS, {})
    results[key] = value
    while len(results) > MAX_KEPT_RESULTS:
        results.pop(next(iter(results)))


def recall(key: str) -> Any:
    return st.session_state.get(BLUR_RESULTS, {}).get(key)


def safe(fn: Callable[[], Any], what: str) -> Any:
    """Run a faceguard call for a page; a FaceguardError becomes a message, not a traceback."""
    try:
        return fn()
    except FaceguardError as err:
        st.error(f"{what}: {err}", icon=":material/error:")
        return None


# -- previews ------------------------------------------------------------------------------------
PREVIEW_MAX_SIDE = 1400


def shrink(rgb, max_side: int = PREVIEW_MAX_SIDE):
    """A display copy no larger than ``max_side`` (browsers need not receive 12 MP previews)."""
    from PIL import Image
    import numpy as np

    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    return np.asarray(Image.fromarray(rgb).resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS))


def annotated_original(data: bytes, result, *, max_pixels: int):
    """The upright input with the detector's boxes and scores drawn (the 'before' picture)."""
    from faceguard import media
    from faceguard.anonymize import draw_boxes

    rgb = media.decode(data, source=result.name, max_pixels=max_pixels).rgb.copy()
    return shrink(draw_boxes(rgb, result.detections))


# -- cached judgements (read-only, so safe to cache briefly) ------------------------------------------
@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def _gate(key: str, version: str, minute: datetime, include_demo: bool, _settings: Settings, _store):
    from faceguard import gate

    return gate.evaluate(_settings.db_path, version, _settings, now=minute, store=_store, include_demo=include_demo)


def gate_report(s: Settings, version: str, *, include_demo: bool = False):
    """The promotion gate for ``version`` as ``gate.promote`` would judge it now."""
    return _gate(_key(s), version, now_minute(), include_demo, s, store(s))

