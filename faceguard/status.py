"""System-status figures: each rollback rule's current figure against its threshold.

``rule_figures`` reads the same windows ``faceguard check`` judges (``guard.stats_from_log``)
for every watched version, and only reports: it never acts (``guard.check`` does).

>>> rows = rule_figures(store, settings)          # doctest: +SKIP
>>> [(r.version, r.rule.value, r.breached) for r in rows]  # doctest: +SKIP
[('v1.1.0-prod', 'consecutive_failures', False), ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from faceguard.config import Settings
from faceguard.guard import Rule, RuleStats, Thresholds, evaluate_rules, stats_from_log, thresholds_for, watched_versions
from faceguard.registry import ModelStore


@dataclass(frozen=True)
class RuleFigure:
    """One rule of one watched version: where it stands now."""

    version: str
    role: str  # "canary" or "current"
    rule: Rule
    figure: float | None  # None: no data in the window
    threshold: float
    unit: str  # "requests", "rate" or "ms"
    samples: int  # requests / judged images in the window
    min_samples: int  # needed before the rule can trip
    window: str  # what the figure is over, for people
    breached: bool

    @property
    def ready(self) -> bool:
        """Enough samples in the window for the rule to trip."""
        return self.samples >= self.min_samples

    @property
    def share_of_threshold(self) -> float | None:
        """figure / threshold (1.0 = at the limit), for a gauge."""
        if self.figure is None or not self.threshold:
            return None
        return self.figure / self.threshold


def rule_figures(store: ModelStore, settings: Settings, *, now: datetime | None = None) -> list[RuleFigure]:
    """Every rule of every watched version (canary first), from the log."""
    now = now or datetime.now(timezone.utc)
    current = store.current()
    out: list[RuleFigure] = []
    for version in watched_versions(store, settings):
        th = thresholds_for(store, version, settings.guard)
        stats = stats_from_log(settings, version, th, now=now)
        out.extend(_figures(version, "current" if version == current else "canary", stats, th))
    return out


def _figures(version: str, role: str, s: RuleStats, th: Thresholds) -> list[RuleFigure]:
    breached = {b.rule for b in evaluate_rules(s, th)}
    return [
        RuleFigure(version, role, Rule.CONSECUTIVE_FAILURES, float(s.consecutive_failures),
                   float(th.max_consecutive_failures), "requests", s.consecutive_failures, 0,
                   f"trailing failed requests (limit {th.max_consecutive_failures})",
                   Rule.CONSECUTIVE_FAILURES in breached),
        RuleFigure(version, role, Rule.FALSE_POSITIVE_RATE, s.fp_rate, th.max_fp_rate, "rate",
                   s.fp_images, th.fp_min_images,
                   f"last {th.fp_window_images} images, judged by {s.fp_source.value}", Rule.FALSE_POSITIVE_RATE in breached),
        RuleFigure(version, role, Rule.MEAN_LATENCY, s.mean_ms, th.max_mean_ms, "ms",
                   s.latency_samples, th.min_latency_samples, f"last {th.latency_window_minutes:g} min",
                   Rule.MEAN_LATENCY in breached),
    ]


__all__ = ["RuleFigure", "rule_figures"]
