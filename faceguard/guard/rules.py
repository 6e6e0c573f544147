"""The rollback rules: what they measure of a version, and the pure decision over it.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from faceguard.config import GuardSettings
from faceguard.gate import latency_budget
from faceguard.registry import ModelStore


class Rule(str, Enum):
    """The rollback rules (see the module docstring)."""

    CONSECUTIVE_FAILURES = "consecutive_failures"
    FALSE_POSITIVE_RATE = "false_positive_rate"
    MEAN_LATENCY = "mean_latency"


class FpSource(str, Enum):
    """What the false-positive figure was judged from: reviews, shadow disagreement, or nothing yet."""

    REVIEWS = "reviews"
    SHADOW = "shadow"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The limits the rules judge one version against (``GuardSettings`` plus its latency budget)."""

    max_consecutive_failures: int
    max_fp_rate: float
    fp_window_images: int
    fp_min_images: int
    max_mean_ms: float
    latency_window_minutes: float
    min_latency_samples: int

    @classmethod
    def from_settings(cls, guard: GuardSettings, latency_budget_ms: float | None = None) -> "Thresholds":
        """The guard settings' limits; ``latency_budget_ms`` (the manifest's) replaces ``max_mean_ms``."""
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
    """A rule a version broke: the figure against the threshold over its evidence window."""

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
    return Thresholds.from_settings(guard, latency_budget(store, version))


__all__ = ["Breach", "FpSource", "Rule", "RuleStats", "Thresholds", "evaluate_rules", "thresholds_for"]
