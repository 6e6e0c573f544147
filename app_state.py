"""The app's session state: every ``st.session_state`` key in one place (so pages never
collide), and the small helpers that read and write them: who is acting, a message that
survives a rerun, and the Blur page's processed uploads.

``app_support`` re-exports all of these, so pages reach them as ``app.<name>``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

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

MAX_KEPT_RESULTS = 60


def operator_name() -> str:
    """Who is named as actor: the unlocked operator, else the reviewer, else "app"."""
    return st.session_state.get(OPERATOR) or st.session_state.get(REVIEWER) or "app"


# -- messages that survive a rerun ---------------------------------------------------------------
def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """Show ``message`` as a toast on the next run (after ``st.rerun()``)."""
    st.session_state[FLASH] = (message, icon)


def show_flash() -> None:
    item = st.session_state.pop(FLASH, None)
    if item:
        st.toast(item[0], icon=item[1])


# -- the Blur page's processed uploads -----------------------------------------------------------
def remember(key: str, value: Any) -> None:
    """Keep a processed upload in the session (bounded), so reruns reuse it."""
    results: dict = st.session_state.setdefault(BLUR_RESULTS, {})
    results[key] = value
    while len(results) > MAX_KEPT_RESULTS:
        results.pop(next(iter(results)))


def recall(key: str) -> Any:
    return st.session_state.get(BLUR_RESULTS, {}).get(key)
