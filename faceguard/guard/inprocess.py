"""The in-process guard: rule counters kept as requests finish, and the engine's fallback.

Fallback: while a request on a watched version fails with a model or detector error, the
guard (``Guard.fallback``, the engine's fallback hook) serves it with the stable version
(the current one for a canary; the previous stable one for the current) so the user still
gets an image; the failure is logged and counted against the version that failed.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

from faceguard.alerts import Poster, post_json
from faceguard.config import Settings
from faceguard.errors import FaceguardError
from faceguard.guard.action import RollbackResult, roll_back
from faceguard.guard.rules import Breach, FpSource, RuleStats, Thresholds, evaluate_rules, thresholds_for
from faceguard.pipeline import Assignment, ProcessOutcome, Variant
from faceguard.registry import ModelStore

logger = logging.getLogger("faceguard.guard")


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
        shadow_ran = o.shadow_version is not None
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


__all__ = ["Guard"]
