"""A manual rollback: switch back, quarantine, stop the canary, raise the banner's alert."""

from __future__ import annotations

import pytest

from faceguard import alerts, operations
from faceguard.errors import RolloutError
from faceguard.log import LogWriter, queries
from faceguard.registry import Canary, ModelStore


@pytest.fixture
def store_and_log(fg_env):
    from faceguard.eventlog import LogEventRecorder

    log = LogWriter(fg_env, source="app", autoingest=False)
    store = ModelStore.from_settings(fg_env, recorder=LogEventRecorder(log, actor_default="app"))
    yield store, log
    log.close()


def test_manual_rollback_switches_quarantines_and_raises_the_banner(fg_env, store_and_log):
    store, log = store_and_log
    store.update_state(lambda s: type(s)(canary=Canary("v1.2.0-beta", 5.0, "2025-01-01T00:00:00+00:00", "ops"),
                                         quarantined=s.quarantined, stable_history=s.stable_history))
    before, target = store.current(), store.previous_stable()
    done = operations.manual_rollback(store, fg_env, actor="ops", reason="faces stay sharp", quarantine=True, log=log)
    assert (done.failed_version, done.restored_version) == (before, target)
    assert store.current() == target
    assert before in store.state().quarantined and store.state().canary is None

    banner = alerts.rollback_banner(fg_env)
    assert banner is not None and banner.alert_id == done.alert_id
    assert banner.title == f"Restored to stable version {target}"
    log.ingest_now()
    kinds = list(queries.events(fg_env)["kind"])
    assert {"rollback", "canary_stop", "quarantine"} <= set(kinds)
    alerts.acknowledge(fg_env, done.alert_id, "ops")
    assert alerts.rollback_banner(fg_env) is None


@pytest.mark.parametrize("actor, reason, message", [("ops", " ", "needs a reason"), ("", "x", "who asks")])
def test_rollback_needs_an_actor_and_a_reason(fg_env, store_and_log, actor, reason, message):
    store, log = store_and_log
    with pytest.raises(RolloutError, match=message):
        operations.manual_rollback(store, fg_env, actor=actor, reason=reason, log=log)
    assert store.current() == "v1.1.0-prod"  # unchanged


def test_rollback_to_the_current_version_is_refused(fg_env, store_and_log):
    store, log = store_and_log
    with pytest.raises(RolloutError, match="already the current"):
        operations.manual_rollback(store, fg_env, actor="ops", reason="x", to="v1.1.0-prod", log=log)
