"""Automatic rollback: the rules, the in-process guard, ``faceguard check``, and the action.

One decision, two ways of feeding it. ``evaluate_rules(stats, thresholds)`` is a pure
function of a version's ``RuleStats``; the in-process ``Guard`` builds those from counters it
keeps per version as requests finish (O(1) per request, no database), and ``check`` builds
them from the log (``queries.window_stats``) for cron or a systemd timer. Both act through
``roll_back``.

Rules (``GuardSettings``; a version's manifest ``latency_budget_ms`` replaces ``max_mean_ms``):

- ``consecutive_failures``: the version's last ``max_consecutive_failures`` requests all
  failed (a model or detector error; bad input is the caller's fault and does not count).
- ``false_positive_rate``: over the version's last ``fp_window_images`` reviewed images,
  false-positive verdicts per reviewed image; where fewer than ``fp_min_images`` of them are
  reviewed, the share of its shadow-compared images (among its last ``fp_window_images``
  images) on which the stable version disagreed (a box of either without a partner at IoU
  0.5). Trips above ``max_fp_rate`` once ``fp_min_images`` judged images are in the window.
  The in-process guard only has the shadow signal (verdicts arrive later, through ``check``).
- ``mean_latency``: mean processing time of the version's ok requests over the last
  ``latency_window_minutes`` above the budget, with at least ``min_latency_samples``.

Watched versions: the canary, and (``watch_current``) the current version when there is a
previous stable version to return to. ``roll_back`` for a canary stops it (traffic goes back
to the stable version); for the current version it switches to the previous stable one and
stops any canary. Either way the failed version is quarantined (nothing re-promotes it
automatically), a ``rollback`` event carries the rule, figure, threshold and evidence window,
and an alert is raised (``alerts.raise_alert``). ``roll_back`` holds ``.rollout.lock`` in the
model store and re-reads the registry inside it, so two processes that see the same breach
act once: the second finds the version no longer canary or current and does nothing.

Fallback: while a request on a watched version fails with a model or detector error, the
guard (``Guard.fallback``, the engine's fallback hook) serves it with the stable version
(the current one for a canary; the previous stable one for the current) so the user still
gets an image; the failure is logged and counted against the version that failed.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Callable

from filelock import FileLock

from faceguard.alerts import Poster, post_json, raise_alert
from faceguard.config import GuardSettings, Settings
from faceguard.errors import FaceguardError, ModelError
from faceguard.pipeline import Assignment, ProcessOutcome, Variant
from faceguard.registry import ModelStore

logger = logging.getLogger("faceguard.guard")

ROLLOUT_LOCK = ".rollout.lock"


class Rule(str, Enum):
    CONSECUTIVE_FAILURES = "consecutive_failures"
    FALSE_POSITIVE_RATE = "false_positive_rate"
    MEAN_LATENCY = "mean_latency"


class FpSource(str, Enum):
    REVIEWS = "reviews"
    SHADOW = "shadow"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    max_consecutive_failures: int
    max_fp_rate: float
    fp_window_images: int
    fp_min_images: int
    max_mean_ms: float
    latency_window_minutes: float
    min_latency_samples: int

    @classmethod
    def from_settings(cls, guard: GuardSettings, latency_budget_ms: float | None = None) -> "Thresholds":
        return cls(
            max_consecutive_failures=guard.max_consecutive_failures, max_fp_rate=guard.max_fp_rate,
            fp_window_images=guard.fp_window_images, fp_min_images=min(guard.fp_min_images, guard.fp_window_images),
            max_mean_ms=latency_budget_ms if latency_budget_ms is not None else guard.max_mean_ms,
            latency_window_minutes=guard.latency_window_minutes, min_latency_samples=guard.min_latency_samples,
        )


@dataclass(frozen=True, kw_only=True)
class RuleStats:
    """What the rules see of one version (built from counters or from the log)."""

    version: str
    consecutive_failures: int = 0
    failures_from: datetime | None = None
    failures_to: datetime | None = None
    fp_source: FpSource = FpSource.NONE
    fp_count: int = 0  # FP verdicts (reviews) or disagreeing images (shadow)
    fp_images: int = 0  # reviewed or shadow-compared images in the window
    fp_from: datetime | None = None
    fp_to: datetime | None = None
    latency_samples: int = 0
    mean_ms: float | None = None
    latency_from: datetime | None = None
    latency_to: datetime | None = None

    @property
    def fp_rate(self) -> float | None:
        return self.fp_count / self.fp_images if self.fp_images else None


@dataclass(frozen=True)
class Breach:
    rule: Rule
    version: str
    figure: float
    threshold: float
    window: dict[str, Any]

    @property
    def message(self) -> str:
        if self.rule is Rule.CONSECUTIVE_FAILURES:
            return f"{self.version}: {int(self.figure)} consecutive failed requests (limit {int(self.threshold)})"
        if self.rule is Rule.FALSE_POSITIVE_RATE:
            return (f"{self.version}: false-positive rate {self.figure:.1%} over {self.window.get('images')} "
                    f"{self.window.get('source')}-judged images (limit {self.threshold:.1%})")
        return (f"{self.version}: mean processing time {self.figure:.0f} ms over {self.window.get('minutes'):g} min "
                f"({self.window.get('samples')} requests; budget {self.threshold:.0f} ms)")

    def evidence(self) -> dict[str, Any]:
        return {"rule": self.rule.value, "version": self.version, "figure": self.figure,
                "threshold": self.threshold, "window": self.window}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def evaluate_rules(stats: RuleStats, th: Thresholds) -> list[Breach]:
    """Every rule the version breaks, in rule order (pure).

    >>> th = Thresholds.from_settings(GuardSettings())
    >>> [b.rule.value for b in evaluate_rules(RuleStats(version="v1.2.0-beta", consecutive_failures=10), th)]
    ['consecutive_failures']
    """
    out: list[Breach] = []
    if stats.consecutive_failures >= th.max_consecutive_failures:
        out.append(Breach(Rule.CONSECUTIVE_FAILURES, stats.version, float(stats.consecutive_failures),
                          float(th.max_consecutive_failures),
                          {"requests": stats.consecutive_failures, "from": _iso(stats.failures_from),
                           "to": _iso(stats.failures_to)}))
    rate = stats.fp_rate
    if rate is not None and stats.fp_images >= th.fp_min_images and rate > th.max_fp_rate:
        out.append(Breach(Rule.FALSE_POSITIVE_RATE, stats.version, rate, th.max_fp_rate,
                          {"source": stats.fp_source.value, "images": stats.fp_images, "false_positives": stats.fp_count,
                           "window_images": th.fp_window_images, "from": _iso(stats.fp_from), "to": _iso(stats.fp_to)}))
    if (stats.mean_ms is not None and stats.latency_samples >= th.min_latency_samples
            and stats.mean_ms > th.max_mean_ms):
        out.append(Breach(Rule.MEAN_LATENCY, stats.version, stats.mean_ms, th.max_mean_ms,
                          {"minutes": th.latency_window_minutes, "samples": stats.latency_samples,
                           "from": _iso(stats.latency_from), "to": _iso(stats.latency_to)}))
    return out


def thresholds_for(store: ModelStore, version: str, guard: GuardSettings) -> Thresholds:
    """The thresholds for one version (its manifest's latency budget, if any)."""
    try:
        budget = store.manifest(version).latency_budget_ms
    except ModelError:
        budget = None
    return Thresholds.from_settings(guard, budget)


def stats_from_log(db, version: str, th: Thresholds, *, now: datetime) -> RuleStats:
    """The rules' windows for ``version`` read from the log (``db``: Settings or path)."""
    from faceguard.log import queries

    fails = queries.window_stats(db, version=version, last_n=th.max_consecutive_failures, now=now)
    reviewed = queries.window_stats(db, version=version, last_n=th.fp_window_images, reviewed_only=True, now=now)
    if reviewed.reviewed_total >= th.fp_min_images:
        fp = dict(fp_source=FpSource.REVIEWS, fp_count=reviewed.reviewed_fp, fp_images=reviewed.reviewed_total,
                  fp_from=reviewed.first_ts, fp_to=reviewed.last_ts)
    else:
        recent = queries.window_stats(db, version=version, last_n=th.fp_window_images, now=now)
        fp = dict(fp_source=FpSource.SHADOW if recent.shadow_total else FpSource.NONE,
                  fp_count=recent.shadow_disagreements, fp_images=recent.shadow_total,
                  fp_from=recent.first_ts, fp_to=recent.last_ts)
    lat = queries.window_stats(db, version=version, last_minutes=th.latency_window_minutes, now=now)
    all_failed = fails.consecutive_failures
    return RuleStats(
        version=version, consecutive_failures=all_failed,
        failures_from=fails.first_ts if all_failed else None, failures_to=fails.last_ts if all_failed else None,
        latency_samples=lat.n - lat.errors, mean_ms=lat.mean_ms, latency_from=lat.first_ts, latency_to=lat.last_ts,
        **fp,
    )


# -- the action ----------------------------------------------------------------------------------
class RollbackAction(str, Enum):
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
        if canary is not None and canary.version == version and version != current \
                and version not in state.quarantined:
            # The canary misbehaved: quarantining it also clears the canary split.
            store.quarantine(version, reason=reason, actor=actor)
            action, restored = RollbackAction.CANARY_STOPPED, current
            _record(store, actor, version, current, reason, {**breach.evidence(), "action": action.value,
                                                              "canary_percent": canary.percent})
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
                    from faceguard.rollout import stop_canary

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


def _record(store: ModelStore, actor: str, from_v: str, to_v: str | None, reason: str, evidence: dict) -> None:
    if store.recorder is not None:
        store.recorder.record_event(kind="rollback", actor=actor, from_version=from_v, to_version=to_v,
                                    reason=reason, evidence=evidence)


# -- the in-process guard ------------------------------------------------------------------------
class _Counters:
    """One version's recent requests, updated in O(1) (amortised) per request."""

    def __init__(self, th: Thresholds) -> None:
        self.th = th
        self.consecutive = 0
        self.failures_from: datetime | None = None
        self.failures_to: datetime | None = None
        self.shadow: collections.deque[tuple[datetime, bool | None]] = collections.deque()
        self.shadow_n = 0
        self.shadow_k = 0
        self.latency: collections.deque[tuple[datetime, float]] = collections.deque()
        self.latency_sum = 0.0

    def add(self, o: ProcessOutcome, now: datetime) -> None:
        if not o.ok:
            self.consecutive += 1
            self.failures_from = self.failures_from or now
            self.failures_to = now
            return
        self.consecutive, self.failures_from, self.failures_to = 0, None, None
        shadow_ran = getattr(o, "shadow_version", None) is not None
        judged = (o.shadow_disagreements > 0) if shadow_ran else None
        self.shadow.append((now, judged))
        if judged is not None:
            self.shadow_n += 1
            self.shadow_k += judged
        if len(self.shadow) > self.th.fp_window_images:
            _, old = self.shadow.popleft()
            if old is not None:
                self.shadow_n -= 1
                self.shadow_k -= old
        self.latency.append((now, o.processing_ms))
        self.latency_sum += o.processing_ms

    def snapshot(self, version: str, now: datetime) -> RuleStats:
        horizon = now - timedelta(minutes=self.th.latency_window_minutes)
        while self.latency and self.latency[0][0] < horizon:
            self.latency_sum -= self.latency.popleft()[1]
        n = len(self.latency)
        return RuleStats(
            version=version, consecutive_failures=self.consecutive, failures_from=self.failures_from,
            failures_to=self.failures_to,
            fp_source=FpSource.SHADOW if self.shadow_n else FpSource.NONE, fp_count=self.shadow_k,
            fp_images=self.shadow_n, fp_from=self.shadow[0][0] if self.shadow else None,
            fp_to=self.shadow[-1][0] if self.shadow else None,
            latency_samples=n, mean_ms=self.latency_sum / n if n else None,
            latency_from=self.latency[0][0] if n else None, latency_to=self.latency[-1][0] if n else None,
        )


class Guard:
    """The in-process guard: an engine observer plus the engine's fallback hook.

    >>> guard = Guard(engine.store, settings, log=engine.log).attach(engine)   # doctest: +SKIP

    ``clock`` returns aware UTC datetimes (tests inject one); ``post`` sends webhooks.
    ``actions`` lists what this guard did, newest last.
    """

    def __init__(self, store: ModelStore, settings: Settings, *, log=None,
                 clock: Callable[[], datetime] | None = None, post: Poster = post_json, actor: str = "guard") -> None:
        self.store = store
        self.settings = settings
        self.log = log
        self.post = post
        self.actor = actor
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._counters: dict[str, _Counters] = {}
        self._thresholds: dict[str, Thresholds] = {}
        self._acting: set[str] = set()
        self.actions: list[RollbackResult] = []

    def attach(self, engine) -> "Guard":
        """Observe ``engine``'s requests and serve its failed watched requests with the stable version."""
        engine.observers.append(self.observe)
        engine.fallback = self.fallback
        return self

    # -- observer ------------------------------------------------------------------------------
    def observe(self, outcome: ProcessOutcome) -> None:
        """Count one finished request; act when a rule breaks. Never raises into the request."""
        version = outcome.model_version
        if version is None or outcome.variant is Variant.PINNED:
            return  # a version asked for by name is someone's test, not traffic
        try:
            th = self._thresholds_for(version)
            now = self._clock()
            with self._lock:
                counters = self._counters.get(version)
                if counters is None:
                    counters = self._counters[version] = _Counters(th)
                counters.add(outcome, now)
                stats = counters.snapshot(version, now)
            breaches = evaluate_rules(stats, th)
            if breaches:
                self._act(breaches[0])
        except Exception:  # noqa: BLE001 - the user's image is done; a guard problem must not fail it
            logger.exception("rollback guard failed while observing a request on %s", version)

    def _thresholds_for(self, version: str) -> Thresholds:
        th = self._thresholds.get(version)
        if th is None:
            th = self._thresholds[version] = thresholds_for(self.store, version, self.settings.guard)
        return th

    def _act(self, breach: Breach) -> None:
        with self._lock:
            if breach.version in self._acting:
                return  # another request thread is already acting on this version
            self._acting.add(breach.version)
        try:
            result = roll_back(self.store, breach, settings=self.settings, log=self.log, actor=self.actor,
                               post=self.post)
            with self._lock:
                self.actions.append(result)
        finally:
            with self._lock:
                self._counters.pop(breach.version, None)  # fresh evidence is needed to act again
                self._acting.discard(breach.version)

    def stats(self, version: str) -> RuleStats:
        """The rules' current view of ``version`` (for status pages and tests)."""
        with self._lock:
            counters = self._counters.get(version)
            return counters.snapshot(version, self._clock()) if counters else RuleStats(version=version)

    # -- fallback hook -------------------------------------------------------------------------
    def fallback(self, assignment: Assignment, error: FaceguardError) -> Assignment | None:
        """The stable version to serve a request whose version failed, or None (let it fail)."""
        if assignment.variant is Variant.PINNED:
            return None
        try:
            current = self.store.current()
            target = current if current != assignment.version else self.store.previous_stable()
        except FaceguardError:
            return None
        if target is None or target == assignment.version:
            return None
        return Assignment(target, Variant.STABLE)


# -- faceguard check -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    now: datetime
    checked: tuple[RuleStats, ...]
    breaches: tuple[Breach, ...]
    actions: tuple[RollbackResult, ...] = field(default_factory=tuple)

    @property
    def acted(self) -> bool:
        return any(a.action.acted and a.alert_id is not None for a in self.actions)


def watched_versions(store: ModelStore, settings: Settings) -> list[str]:
    """The canary, and the current version when it can be rolled back."""
    state = store.state()
    current = store.current()
    out = []
    if state.canary and state.canary.version != current and state.canary.version not in state.quarantined:
        out.append(state.canary.version)
    if settings.guard.watch_current and store.previous_stable() is not None:
        out.append(current)
    return out


def check(store: ModelStore, settings: Settings, *, log=None, now: datetime | None = None,
          post: Poster = post_json, actor: str = "check") -> CheckReport:
    """Judge every watched version from the log and act on the first breach of each."""
    now = now or datetime.now(timezone.utc)
    checked, breaches, actions = [], [], []
    for version in watched_versions(store, settings):
        th = thresholds_for(store, version, settings.guard)
        stats = stats_from_log(settings, version, th, now=now)
        checked.append(stats)
        found = evaluate_rules(stats, th)
        breaches.extend(found)
        if found:
            actions.append(roll_back(store, found[0], settings=settings, log=log, actor=actor, post=post))
    return CheckReport(now, tuple(checked), tuple(breaches), tuple(actions))


__all__ = [
    "Breach", "CheckReport", "FpSource", "Guard", "RollbackAction", "RollbackResult", "Rule", "RuleStats",
    "Thresholds", "check", "evaluate_rules", "roll_back", "stats_from_log", "thresholds_for", "watched_versions",
]
