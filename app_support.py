"""App-only helpers shared by ``Home.py`` and ``pages/``: cached engine, cached log queries,
the empty-log state, the rollback banner, the Blur page's downloads and previews.

This module (with ``app_state``, ``app_auth`` and ``app_format`` beside it, which it
re-exports so pages only ``import app_support as app``) is the only one outside the pages
that touches ``st.cache_*`` and ``st.session_state``; ``faceguard`` knows nothing of
Streamlit. One ``Engine`` is cached per process and per data/model folder: it holds a
detector per version, so switching the version picker only passes another ``version=`` to
``Engine.process``, and nothing restarts.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import PurePath
from typing import Any, Callable

import streamlit as st

# The password gates, formatting and session state live beside this module; pages reach them
# through it (``app.unlock_form``, ``app.when``, ``app.REVIEWER``, ...), so they are re-exported.
from app_auth import admin_access, lock_button, reviewer_access, unlock_form  # noqa: F401
from app_format import RANGES, ago, count, ms, now_minute, pct, range_picker, version_label, when  # noqa: F401
from app_state import (  # noqa: F401
    ADMIN_UNLOCKED,
    BLUR_RESULTS,
    FLASH,
    MAX_KEPT_RESULTS,
    OPERATOR,
    REVIEW_MISSED,
    REVIEW_REVEALED,
    REVIEW_SKIPPED,
    REVIEW_UNLOCKED,
    REVIEWER,
    flash,
    operator_name,
    recall,
    remember,
    show_flash,
)
from faceguard.config import Settings
from faceguard.errors import FaceguardError
from faceguard.pipeline import Engine

DEMO_ROWS = 50_000  # rows the "Load demo data" button writes (the benchmark uses 1,000,000)
QUERY_TTL_S = 30


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


def has_images(s: Settings | None = None) -> bool:
    status = query("log_status", s)
    return bool(status.rows.get("images", 0))


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
