"""Password gates: where passwords come from, constant-time checks, locked when unset."""

from __future__ import annotations

import pytest

from faceguard.admin import admin_gate, reviewer_gate, secret_value
from faceguard.config import Settings


class RaisingSecrets(dict):
    """Like Streamlit's Secrets without a secrets file: every read raises."""

    def get(self, key, default=None):
        raise FileNotFoundError("no secrets.toml")


@pytest.mark.parametrize(
    "settings_pw, secrets, candidate, expected",
    [
        ("s3cret", None, "s3cret", True),
        ("s3cret", None, "s3cret ", False),
        ("s3cret", None, "", False),
        ("s3cret", None, None, False),
        (None, {"admin_password": "from-secrets"}, "from-secrets", True),
        (None, {"FACEGUARD_ADMIN_PASSWORD": "flat"}, "flat", True),
        (None, {"faceguard": {"admin_password": "nested"}}, "nested", True),
        ("env-wins", {"admin_password": "from-secrets"}, "from-secrets", False),
        (None, None, "", False),
        (None, {}, "anything", False),
        (None, RaisingSecrets(), "anything", False),
        ("pässwörd", None, "pässwörd", True),
    ],
)
def test_admin_gate(settings_pw, secrets, candidate, expected):
    gate = admin_gate(Settings(admin_password=settings_pw), secrets)
    assert gate.check(candidate) is expected


def test_locked_gate_says_how_to_set_the_password():
    gate = admin_gate(Settings(), None)
    assert not gate.configured
    assert "FACEGUARD_ADMIN_PASSWORD" in gate.how_to and "secrets.toml" in gate.how_to


def test_password_comes_from_the_environment_through_settings(monkeypatch):
    monkeypatch.setenv("FACEGUARD_ADMIN_PASSWORD", "from-env")
    assert admin_gate(Settings.load(environ={"FACEGUARD_ADMIN_PASSWORD": "from-env"})).check("from-env")


def test_reviewer_gate_accepts_the_reviewer_or_the_admin_password():
    gate = reviewer_gate(Settings(admin_password="admin"), None, environ={"FACEGUARD_REVIEWER_PASSWORD": "rev"})
    assert gate.check("rev") and gate.check("admin") and not gate.check("nope")
    assert reviewer_gate(Settings(), {"reviewer_password": "r2"}, environ={}).check("r2")
    locked = reviewer_gate(Settings(), None, environ={})
    assert not locked.configured and not locked.check("")
    assert "FACEGUARD_REVIEWER_PASSWORD" in locked.how_to


def test_password_never_appears_in_repr():
    gate = admin_gate(Settings(admin_password="hunter2"))
    assert "hunter2" not in repr(gate)


def test_secret_value_ignores_non_strings():
    assert secret_value({"admin_password": 1234}, ("admin_password",)) is None
