"""The rollback action, taken once whichever process sees a breach first.

``roll_back`` for a canary stops it (traffic goes back to the stable version); for the current
version it switches to the previous stable one and stops any canary. Either way the failed
version is quarantined (nothing re-promotes it automatically), a ``rollback`` event carries
the rule, figure, threshold and evidence window, and an alert is raised
(``alerts.raise_alert``). ``roll_back`` holds ``.rollout.lock`` in the model store and re-reads
the registry inside it, so two processes that see the same breach act once: the second finds
the version no longer canary or current and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from filelock import FileLock

from faceguard.alerts import Poster, post_json, raise_alert
from faceguard.config import Settings
from faceguard.errors import FaceguardError
from faceguard.guard.rules import Breach
from faceguard.registry import ModelStore
from faceguard.rollout import active_canary, stop_canary

ROLLOUT_LOCK = ".rollout.lock"


class RollbackAction(str, Enum):
    """What ``roll_back`` did about a breach."""

    ROLLED_BACK = "rolled_back"  # current switched back to the previous stable version
    CANARY_STOPPED = "canary_stopped"  # the canary stopped: all traffic on the stable version again
    NO_TARGET = "no_target"  # the current version breached with no stable version to return to: alert only
    ALREADY_HANDLED = "already_handled"  # not canary or current any more (another process acted)
    NOT_WATCHED = "not_watched"  # the current version, with watch_current off

    @property
    def acted(self) -> bool:
        return self in (RollbackAction.ROLLED_BACK, RollbackAction.CANARY_STOPPED, RollbackAction.NO_TARGET)


@dataclass(frozen=True)
class RollbackResult:
    """A breach, what was done about it, the version now serving, and the alert raised (if any)."""

    action: RollbackAction
    breach: Breach
    restored_version: str | None = None
    alert_id: str | None = None


def roll_back(
    store: ModelStore, breach: Breach, *, settings: Settings, log=None, actor: str = "guard",
    post: Poster = post_json,
) -> RollbackResult:
    """Act on a breach once, whichever process sees it first (see the module docstring).

    ``log`` (a ``LogWriter``) receives the alert; events go to the store's recorder.
    """
    version = breach.version
    reason = f"automatic rollback: {breach.message}"
    with FileLock(str(store.root / ROLLOUT_LOCK), timeout=30):
        state = store.state()
        current = store.current()
        canary = state.canary
        if (active := active_canary(state, current)) is not None and active.version == version:
            # The canary misbehaved: quarantining it also clears the canary split.
            store.quarantine(version, reason=reason, actor=actor)
            action, restored = RollbackAction.CANARY_STOPPED, current
            store.record_event("rollback", actor, version, current, reason, {**breach.evidence(), "action": action.value,
                                                              "canary_percent": active.percent})
        elif version == current:
            if not settings.guard.watch_current:
                return RollbackResult(RollbackAction.NOT_WATCHED, breach)
            target = store.previous_stable()
            if target is None:
                action, restored = RollbackAction.NO_TARGET, None
            else:
                # The atomic switch first, so traffic is back on the stable version within
                # milliseconds; the bookkeeping (each event is ingested at once) follows. A crash
                # in between leaves the failed version unquarantined, but no longer serving.
                store.use(target, actor=actor, reason=reason, kind="rollback",
                          evidence={**breach.evidence(), "action": "rolled_back"})
                store.quarantine(version, reason=reason, actor=actor)
                if canary is not None:
                    stop_canary(store, actor=actor, reason=f"rollback of {version}")
                action, restored = RollbackAction.ROLLED_BACK, target
        else:
            return RollbackResult(RollbackAction.ALREADY_HANDLED, breach)

    if action is RollbackAction.NO_TARGET and _open_alert_exists(settings, breach):
        return RollbackResult(action, breach)
    evidence = {**breach.evidence(), "action": action.value, "failed_version": version, "restored_version": restored}
    message = (f"Restored to stable version {restored}: {breach.message}" if restored
               else f"{breach.message}; no other stable version to roll back to, {version} keeps serving")
    alert = raise_alert(log, rule=breach.rule.value, version=version, message=message, evidence=evidence,
                        webhook_url=settings.webhook_url, timeout_s=settings.guard.webhook_timeout_s, post=post)
    return RollbackResult(action, breach, restored, alert.alert_id)


def _open_alert_exists(settings: Settings, breach: Breach) -> bool:
    """An unacknowledged alert for the same version and rule (no repeat while nothing can be done)."""
    from faceguard.log import queries

    try:
        df = queries.alerts(settings, open_only=True, include_demo=False)
    except FaceguardError:
        return False
    return bool(((df["rule"] == breach.rule.value) & (df["version"] == breach.version)).any())



__all__ = ["RollbackAction", "RollbackResult", "roll_back"]
