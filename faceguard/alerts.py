"""Alerts: what a rollback leaves behind for people, and the banner the app shows until someone
acknowledges it.

An alert goes three ways at once: an ``AlertRecord`` in the log (the alerts table), a WARNING
line on the ``faceguard.alerts`` logger, and, when ``Settings.webhook_url`` is set, an HTTP
POST of the alert as JSON (``post_json``: short timeout, one attempt; a failure is logged,
never raised, so an unreachable webhook cannot stop a rollback). Acknowledging appends an
``AlertAck`` (the log stays append-only).

Webhook body::

    {"alert_id": "...", "ts": "2025-06-01T12:00:00+00:00", "rule": "consecutive_failures",
     "version": "v1.2.0-beta", "restored_version": "v1.1.0-prod", "message": "...",
     "evidence": {...}}
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from faceguard.config import Settings

logger = logging.getLogger("faceguard.alerts")

Poster = Callable[[str, dict[str, Any], float], None]


def post_json(url: str, payload: dict[str, Any], timeout_s: float) -> None:
    """POST ``payload`` as JSON; raises ``OSError`` (incl. ``URLError``) on failure."""
    body = json.dumps(payload, default=str).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "faceguard"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - the operator's own URL
        resp.read(1024)


def raise_alert(
    log, *, rule: str, version: str | None, message: str, evidence: dict[str, Any],
    webhook_url: str | None = None, timeout_s: float = 2.0, post: Poster = post_json,
):
    """Record, log and (optionally) POST one alert; returns the ``AlertRecord``.

    ``log`` is a ``LogWriter`` or None (then the alert only goes to the logger and webhook).
    """
    from faceguard.log import AlertRecord

    record = AlertRecord(rule=rule, version=version, message=message, evidence=evidence)
    logger.warning("ALERT %s [%s] %s", rule, version or "-", message)
    if log is not None:
        try:
            log.write(record)
            log.ingest_now()  # the banner should not wait for the periodic ingest
        except Exception as exc:  # noqa: BLE001 - the alert must still reach the logger and the webhook
            logger.error("alert %s could not be written to the log: %s", record.alert_id, exc)
    if webhook_url:
        payload = {"alert_id": record.alert_id, "ts": record.ts.isoformat(), "rule": rule, "version": version,
                   "restored_version": evidence.get("restored_version"), "message": message, "evidence": evidence}
        try:
            post(webhook_url, payload, timeout_s)
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            logger.warning("alert %s: webhook %s failed: %s", record.alert_id, webhook_url, exc)
    return record


# Rule name of the alert a manual rollback raises (faceguard.operations; added by the app's
# engineer so the banner shows after a rollback from the Models page too).
MANUAL_ROLLBACK = "manual_rollback"


@dataclass(frozen=True)
class Banner:
    """The app's 'Restored to stable version ...' banner: the latest unacknowledged rollback alert."""

    alert_id: str
    ts: datetime
    rule: str
    failed_version: str | None
    restored_version: str | None
    message: str

    @property
    def title(self) -> str:
        return f"Restored to stable version {self.restored_version}" if self.restored_version else "Rollback needed"


def rollback_banner(db) -> Banner | None:
    """The newest open (unacknowledged) alert of a rollback rule, or None.

    ``db`` is a ``Settings`` or the database path.
    """
    from faceguard.guard import Rule
    from faceguard.log import queries

    df = queries.alerts(db, open_only=True, include_demo=False)
    rules = {r.value for r in Rule} | {MANUAL_ROLLBACK}
    for row in df.itertuples():
        if row.rule in rules:
            ev = row.evidence or {}
            return Banner(alert_id=row.alert_id, ts=row.ts, rule=row.rule, failed_version=row.version,
                          restored_version=ev.get("restored_version"), message=row.message)
    return None


def acknowledge(settings: Settings, alert_id: str, actor: str) -> None:
    """Record that ``actor`` acknowledged the alert (the banner then disappears)."""
    from faceguard.log import AlertAck, LogWriter

    if not alert_id or not actor:
        raise ValueError(f"acknowledging needs an alert id and an actor, got {alert_id!r} and {actor!r}")
    with LogWriter(settings, source="app", autoingest=False) as log:
        log.write(AlertAck(alert_id=alert_id, actor=actor))


__all__ = ["MANUAL_ROLLBACK", "Banner", "acknowledge", "post_json", "raise_alert", "rollback_banner"]
