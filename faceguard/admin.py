"""Passwords that unlock the app's protected parts: model operations (admin) and review images.

The admin password comes from ``Settings.admin_password`` (``FACEGUARD_ADMIN_PASSWORD`` or
``admin_password`` in ``faceguard.toml``) or, when that is unset, from the secrets mapping
the caller passes in (the app passes Streamlit's ``st.secrets``; this module knows nothing
of Streamlit). Review images are shown to reviewers only: the reviewer password comes from
``FACEGUARD_REVIEWER_PASSWORD`` or ``reviewer_password`` in the secrets, and the admin
password opens review too. With no password configured a gate stays locked: there is no
default password. Candidates are compared with ``hmac.compare_digest`` (time independent
of where they differ), against every accepted password.

>>> gate = admin_gate(Settings(admin_password="s3cret"))
>>> gate.configured, gate.check("s3cret"), gate.check("guess")
(True, True, False)
>>> admin_gate(Settings()).check("")
False
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from faceguard.config import Settings

ADMIN_SECRET_KEYS = ("FACEGUARD_ADMIN_PASSWORD", "admin_password")
REVIEWER_SECRET_KEYS = ("FACEGUARD_REVIEWER_PASSWORD", "reviewer_password")
REVIEWER_ENV = "FACEGUARD_REVIEWER_PASSWORD"

ADMIN_HOW_TO = (
    "Set the environment variable `FACEGUARD_ADMIN_PASSWORD` before starting the app, "
    "or add `admin_password = \"...\"` to `.streamlit/secrets.toml` (or to `faceguard.toml`)."
)
REVIEWER_HOW_TO = (
    "Set `FACEGUARD_REVIEWER_PASSWORD` (or `reviewer_password` in `.streamlit/secrets.toml`) "
    "before starting the app; the admin password opens review too."
)


@dataclass(frozen=True)
class AccessGate:
    """Which passwords open one part of the app, and a constant-time check against them."""

    role: str
    _passwords: tuple[str, ...] = field(default=(), repr=False)
    how_to: str = ""

    @property
    def configured(self) -> bool:
        return bool(self._passwords)

    def check(self, candidate: str | None) -> bool:
        """True only when a password is configured and ``candidate`` equals one of them."""
        if candidate is None:
            return False
        given = candidate.encode("utf-8")
        ok = False
        for password in self._passwords:  # every one compared, so timing says nothing about which
            ok |= hmac.compare_digest(given, password.encode("utf-8"))
        return ok


def admin_gate(settings: Settings, secrets: Mapping[str, Any] | None = None) -> AccessGate:
    """The settings' admin password if set (environment / faceguard.toml), else the secrets'."""
    password = settings.admin_password or secret_value(secrets, ADMIN_SECRET_KEYS)
    return AccessGate("admin", (password,) if password else (), ADMIN_HOW_TO)


def reviewer_gate(
    settings: Settings, secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> AccessGate:
    """The reviewer password (environment, then secrets) and the admin password."""
    env = os.environ if environ is None else environ
    reviewer = settings.reviewer_password or env.get(REVIEWER_ENV) or secret_value(secrets, REVIEWER_SECRET_KEYS)
    passwords = tuple(p for p in (reviewer, *admin_gate(settings, secrets)._passwords) if p)
    return AccessGate("reviewer", passwords, REVIEWER_HOW_TO)


def secret_value(secrets: Mapping[str, Any] | None, keys: tuple[str, ...]) -> str | None:
    """The first non-empty string under ``keys`` in ``secrets`` or its ``[faceguard]`` table."""
    if secrets is None:
        return None
    tables: list[Mapping[str, Any]] = [secrets]
    nested = _get(secrets, "faceguard")
    if isinstance(nested, Mapping):
        tables.append(nested)
    for table in tables:
        for key in keys:
            value = _get(table, key)
            if isinstance(value, str) and value:
                return value
    return None


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    # Streamlit's Secrets raises when no secrets file exists; any failure means "not set".
    try:
        return mapping.get(key)
    except Exception:  # noqa: BLE001
        return None


__all__ = ["ADMIN_HOW_TO", "REVIEWER_HOW_TO", "AccessGate", "admin_gate", "reviewer_gate", "secret_value"]
