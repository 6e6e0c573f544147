"""Traffic split between the stable version and a canary, and starting/stopping a canary.

The split is registry state (``ModelStore.state().canary``), read for every image, so
``faceguard rollout start`` in one process changes the traffic of every running process
without a restart. Assignment hashes the input bytes' sha256, so the same image always
meets the same version.

Starting a canary is the step after internal test: the version's latest evaluation (from
the log's evaluations, else the manifest's ``performance_benchmarks.evaluation``) must meet
the bar in ``RolloutSettings`` (recall, small-face recall, false positives per 100 negative
images) unless forced with a reason, which is recorded in the ``canary_start`` event.

>>> start_canary(store, "v1.2.0-beta", 5, settings=settings, actor="ann")   # doctest: +SKIP
>>> stop_canary(store, actor="ann", reason="done")                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from faceguard.config import RolloutSettings, Settings
from faceguard.errors import ModelError, RolloutError
from faceguard.pipeline import Assignment, Variant
from faceguard.registry import Canary, ModelStore, RegistryState, Version


def active_canary(state: RegistryState, current: str) -> Canary | None:
    """The canary that takes traffic: one is set, it is not ``current`` and not quarantined."""
    canary = state.canary
    if canary is None or canary.version == current or canary.version in state.quarantined:
        return None
    return canary


def bucket(key: str, salt: str = "") -> float:
    """A stable position in [0, 100) for a hex key (the input's sha256)."""
    digest = hashlib.sha256((salt + key).encode()).digest() if salt else bytes.fromhex(key[:16].ljust(16, "0"))
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


class CanaryRouter:
    """Sends ``canary.percent`` % of inputs to the canary; on a share of those the stable
    version runs as a shadow (its boxes are compared, and blurred too unless disabled)."""

    def __init__(self, store: ModelStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def assign(self, key: str) -> Assignment:
        """The version (and shadow, if any) that serves the input whose sha256 is ``key``."""
        current = self.store.current()
        canary = active_canary(self.store.state(), current)
        if canary is None:
            return Assignment(current, Variant.STABLE)
        if bucket(key) < canary.percent:
            shadow = current if bucket(key, "shadow") < self.settings.rollout.shadow_rate * 100 else None
            return Assignment(canary.version, Variant.CANARY, shadow_version=shadow)
        return Assignment(current, Variant.STABLE)


# -- internal test: the bar a version's evaluation must meet -------------------------------------
# Keys written by ``EvaluationReport.to_dict``, with the spellings other writers may use.
_EVAL_KEYS = {
    "recall": ("recall",),
    "small_recall": ("recall_small", "small_recall"),
    "fp_per_100": ("fp_per_100_negatives", "fp_per_100"),
}


@dataclass(frozen=True)
class BarCheck:
    """One figure of a version's evaluation against the canary bar."""

    name: str
    figure: float | None
    target: float
    at_least: bool  # True: figure >= target passes; False: figure <= target passes

    @property
    def ok(self) -> bool:
        if self.figure is None or math.isnan(self.figure):
            return False
        return self.figure >= self.target if self.at_least else self.figure <= self.target

    def describe(self) -> str:
        fig = "missing" if self.figure is None else f"{self.figure:.3g}"
        return f"{self.name} {fig} (needs {'>=' if self.at_least else '<='} {self.target:g})"


@dataclass(frozen=True)
class InternalTest:
    """A version's latest evaluation judged against the canary bar."""

    version: str
    source: str | None  # "log", "manifest" or None (never evaluated)
    dataset: str | None
    checks: tuple[BarCheck, ...]

    @property
    def passed(self) -> bool:
        return self.source is not None and all(c.ok for c in self.checks)

    def describe(self) -> str:
        if self.source is None:
            return f"{self.version} has no evaluation; run `faceguard eval DATASET --model {self.version}` on the reference set"
        failed = [c.describe() for c in self.checks if not c.ok]
        where = f"evaluation on {self.dataset or '?'} ({self.source})"
        return f"{where}: " + ("meets the bar" if not failed else "misses the bar: " + "; ".join(failed))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dataset": self.dataset, "passed": self.passed,
                "checks": {c.name: {"figure": c.figure, "target": c.target, "ok": c.ok} for c in self.checks}}


def judge_internal_test(version: str, evaluation: dict[str, Any] | None, bar: RolloutSettings, *,
                        source: str | None) -> InternalTest:
    """Pure: the evaluation figures against ``bar`` (a missing figure fails its check)."""
    ev = evaluation or {}

    def figure(name: str) -> float | None:
        for key in _EVAL_KEYS[name]:
            if ev.get(key) is not None:
                return float(ev[key])
        return None

    checks = (
        BarCheck("recall", figure("recall"), bar.min_eval_recall, True),
        BarCheck("small-face recall", figure("small_recall"), bar.min_eval_small_recall, True),
        BarCheck("false positives per 100 negatives", figure("fp_per_100"), bar.max_eval_fp_per_100, False),
    )
    return InternalTest(version, source if evaluation else None, ev.get("dataset"), checks)


def latest_evaluation(store: ModelStore, version: str, *, db=None,
                      dataset: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """The version's latest evaluation metrics and where they came from ("log" or "manifest").

    The log (``faceguard eval`` records every run) wins over the manifest copy; with
    ``dataset`` only runs on that data set count.
    """
    if db is not None:
        from faceguard.log import queries

        df = queries.evaluations(db, version=version)
        for row in df.itertuples():  # latest first
            if dataset is None or row.dataset == dataset:
                return {"dataset": row.dataset, **(row.metrics or {})}, "log"
    ev = store.manifest(version).performance_benchmarks.evaluation
    if ev and (dataset is None or ev.get("dataset") == dataset):
        return dict(ev), "manifest"
    return None, None


# -- starting and stopping ----------------------------------------------------------------------
@dataclass(frozen=True)
class CanaryStart:
    """What ``start_canary`` did: the canary now running, the split it replaced, and the internal test."""

    canary: Canary
    previous: Canary | None  # the same version's earlier split, when only the percent changed
    internal_test: InternalTest
    forced: bool


def start_canary(
    store: ModelStore, version: str, percent: float | None = None, *, settings: Settings, actor: str,
    reason: str = "", force: bool = False, db=None, now: datetime | None = None,
) -> CanaryStart:
    """Send ``percent`` % of traffic (default ``rollout.canary_percent``) to ``version``.

    Refuses (``RolloutError``) when the version is current, quarantined, another canary is
    running, or its latest evaluation misses the bar; ``force`` overrides the last two (and
    lifts the quarantine) but needs a ``reason``, recorded with the event. Starting again with
    the running canary's version changes its percent. ``db`` (Settings or path) is where the
    evaluations are read; default ``settings.db_path``.
    """
    Version.parse(version)
    percent = settings.rollout.canary_percent if percent is None else float(percent)
    if not 0 < percent <= 100:
        raise RolloutError(f"canary percent must be in (0, 100], got {percent:g}")
    if force and not reason.strip():
        raise RolloutError("forcing a canary needs a reason (it is recorded with the event)")
    store.verify(version)  # a version whose file fails its checksum never receives traffic
    current = store.current()
    if version == current:
        raise RolloutError(f"{version} is already the current version; a canary must be another version")

    ev, source = latest_evaluation(store, version, db=settings.db_path if db is None else db,
                                   dataset=settings.rollout.reference_dataset)
    test = judge_internal_test(version, ev, settings.rollout, source=source)
    if not test.passed and not force:
        raise RolloutError(f"{version}: internal test not passed: {test.describe()}; "
                           "use --force with a reason to start the canary anyway")

    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    seen: dict[str, Any] = {}

    def change(state):
        # Re-checked under the registry lock: two operators starting canaries at once cannot both win.
        if state.canary is not None and state.canary.version != version:
            raise RolloutError(f"canary {state.canary.version} is running ({state.canary.percent:g}%); "
                               "stop it first with `faceguard rollout stop`")
        if version in state.quarantined and not force:
            why = state.quarantined[version].get("reason", "")
            raise RolloutError(f"{version} is quarantined after a rollback ({why}); "
                               "use --force with a reason to test it again")
        seen["previous"] = state.canary
        quarantined = {k: v for k, v in state.quarantined.items() if k != version}
        started = state.canary.started_at if state.canary is not None else stamp
        canary = Canary(version=version, percent=percent, started_at=started, actor=actor, reason=reason)
        return dataclasses.replace(state, canary=canary, quarantined=quarantined)

    new_state = store.update_state(change)
    forced = force and not test.passed
    store.record_event("canary_start", actor, current, version, reason or "canary start", {
        "percent": percent,
        "previous_percent": seen["previous"].percent if seen["previous"] else None,
        "shadow_rate": settings.rollout.shadow_rate, "union_blur": settings.rollout.union_blur,
        "internal_test": test.to_dict(), "forced": forced,
    })
    assert new_state.canary is not None
    return CanaryStart(new_state.canary, seen["previous"], test, forced)


def stop_canary(store: ModelStore, *, actor: str, reason: str = "", evidence: dict[str, Any] | None = None) -> Canary | None:
    """Stop the running canary (all traffic to the current version); the stopped canary, or
    None when none was running."""
    stopped: dict[str, Canary | None] = {}

    def change(state):
        stopped["canary"] = state.canary
        return dataclasses.replace(state, canary=None)

    store.update_state(change)
    canary = stopped["canary"]
    if canary is not None:
        store.record_event("canary_stop", actor, canary.version, _current_or_none(store), reason or "canary stop",
                {"percent": canary.percent, "started_at": canary.started_at, **(evidence or {})})
    return canary


@dataclass(frozen=True)
class RolloutStatus:
    """Where traffic goes now: the current version, the canary (if it takes traffic) and the quarantine."""

    current: str
    previous_stable: str | None
    canary: Canary | None
    shadow_rate: float
    union_blur: bool
    quarantined: dict[str, dict[str, str]]

    @property
    def expected_split(self) -> tuple[float, float] | None:
        """(stable %, canary %) of served traffic, for the A/B sample-ratio check."""
        return (100.0 - self.canary.percent, self.canary.percent) if self.canary else None


def status(store: ModelStore, settings: Settings) -> RolloutStatus:
    """Where traffic goes now."""
    state = store.state()
    current = store.current()
    return RolloutStatus(current=current, previous_stable=store.previous_stable(), canary=active_canary(state, current),
                         shadow_rate=settings.rollout.shadow_rate, union_blur=settings.rollout.union_blur,
                         quarantined=dict(state.quarantined))


def _current_or_none(store: ModelStore) -> str | None:
    try:
        return store.current()
    except ModelError:
        return None



__all__ = [
    "BarCheck", "CanaryRouter", "CanaryStart", "InternalTest", "RolloutStatus", "active_canary", "bucket",
    "judge_internal_test",
    "latest_evaluation", "start_canary", "status", "stop_canary",
]
