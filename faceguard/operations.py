"""Operator actions that span the registry and the alerts: a manual rollback.

A rollback an operator asks for must be as visible as one the guard does: it switches the
current pointer back (``ModelStore.rollback``, which records the ``rollback`` event), can
quarantine the version it leaves, and raises a ``manual_rollback`` alert, so the app shows
the "Restored to stable version ..." banner and the webhook fires, until someone
acknowledges it.

>>> result = manual_rollback(store, settings, actor="ann", reason="blurry faces", log=writer)  # doctest: +SKIP
>>> result.restored_version                                                                   # doctest: +SKIP
'v1.0.0-prod'
"""

from __future__ import annotations

from dataclasses import dataclass

from faceguard.alerts import MANUAL_ROLLBACK, raise_alert
from faceguard.config import Settings
from faceguard.errors import RolloutError
from faceguard.registry import ModelStore, SwitchEvent


@dataclass(frozen=True)
class ManualRollback:
    """What ``manual_rollback`` did: the switch event, the versions left and restored, and the alert."""

    event: SwitchEvent
    failed_version: str | None
    restored_version: str
    quarantined: bool
    alert_id: str


def manual_rollback(
    store: ModelStore, settings: Settings, *, actor: str, reason: str, to: str | None = None,
    quarantine: bool = False, log=None,
) -> ManualRollback:
    """Make ``to`` (default: the previous stable version) current again, stop any canary,
    optionally quarantine the version left, and raise the ``manual_rollback`` alert.

    Raises ``RolloutError`` without an actor or a reason (both are recorded), ``ModelError``
    when there is no stable version to go back to.
    """
    if not actor.strip():
        raise RolloutError("a rollback needs the name of who asks for it")
    if not reason.strip():
        raise RolloutError("a rollback needs a reason (it is recorded with the event and the alert)")
    failed = store.current()
    target = to or store.previous_stable()
    if target == failed:
        raise RolloutError(f"{target} is already the current version")
    state = store.state()
    if state.canary is not None:
        from faceguard.rollout import stop_canary

        stop_canary(store, actor=actor, reason=f"manual rollback: {reason}")
    event = store.rollback(target, actor=actor, reason=reason, quarantine=failed if quarantine else None,
                           evidence={"manual": True, "quarantined": quarantine})
    message = f"Restored to stable version {event.to_version} by {actor}: {reason}"
    alert = raise_alert(
        log, rule=MANUAL_ROLLBACK, version=failed, message=message,
        evidence={"action": "rolled_back", "failed_version": failed, "restored_version": event.to_version,
                  "actor": actor, "reason": reason, "quarantined": quarantine},
        webhook_url=settings.webhook_url, timeout_s=settings.guard.webhook_timeout_s,
    )
    return ManualRollback(event, failed, event.to_version, quarantine, alert.alert_id)


__all__ = ["ManualRollback", "manual_rollback"]
