"""Functions run in child processes by the rollout tests (importable by 'spawn')."""

from __future__ import annotations

from pathlib import Path


def roll_back_current(models: str, home: str, barrier, results) -> None:
    """Import everything, wait for the sibling at the barrier, then act on the same breach."""
    from faceguard.config import Settings
    from faceguard.eventlog import LogEventRecorder
    from faceguard.guard import Breach, Rule, roll_back
    from faceguard.log import LogWriter
    from faceguard.registry import ModelStore

    settings = Settings(home=Path(home), models=Path(models))
    with LogWriter(settings, source="cli", autoingest=False) as log:
        store = ModelStore(settings.models, recorder=LogEventRecorder(log))
        breach = Breach(Rule.CONSECUTIVE_FAILURES, store.current(), 10.0, 10.0, {"requests": 10})
        barrier.wait(timeout=60)
        results.put(roll_back(store, breach, settings=settings, log=log, post=lambda *a: None).action.value)
