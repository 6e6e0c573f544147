"""The app's password gates: the admin and reviewer gates with the app's secrets, the
unlock form and the lock button. Whether a session is unlocked is kept in
``st.session_state`` under the key the page passes (``app_state.ADMIN_UNLOCKED``, ...).

``app_support`` re-exports these, so pages reach them as ``app.<name>``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from faceguard.admin import AccessGate, admin_gate, reviewer_gate
from faceguard.config import Settings


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
