"""The promotion gate: the seed's targets, judged per day with honest intervals.

Criteria (``GateSettings``; a version's manifest ``latency_budget_ms`` replaces ``max_mean_ms``):

=================  ==========================================  =====================  =======================
criterion          figure (one UTC day, reviewed images)        interval (95 %)        PASS / FAIL when
=================  ==========================================  =====================  =======================
recall             confirmed / (confirmed + missed)             Wilson                 low >= target / high < target
precision          confirmed / (confirmed + false positives)    Wilson                 low >= target / high < target
fp_per_100         100 * false positives / reviewed images      exact Poisson          high <= target / low > target
mean_ms            mean processing time of ok images            Student t              high <= target / low > target
reviewed_images    reviewed images that day                     -                      >= minimum / (never FAIL)
=================  ==========================================  =====================  =======================

A criterion whose interval straddles its target is INCONCLUSIVE (Argo Rollouts'
pass/fail/inconclusive): a small review sample neither passes nor fails a version. False
positives per image are a count, not a proportion (an image can hold several), so their
interval is the exact (Garwood) Poisson interval rather than Wilson's.

A day PASSes when every criterion passes (so it also has the minimum of reviewed images),
FAILs when any criterion fails, and is otherwise INCONCLUSIVE. The gate judges the ``days``
most recent UTC days ending today, except that today, still in progress, is left out while
it is INCONCLUSIVE (the span then ends yesterday). The gate PASSes when every judged day
passes, FAILs when one fails, and is otherwise INCONCLUSIVE; only PASS lets ``promote``
through without ``force``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from typing import Any, Iterable, Sequence

import numpy as np

from faceguard.config import GateSettings, Settings
from faceguard.errors import GateFailedError, ModelError, RolloutError
from faceguard.registry import ModelStore, SwitchEvent
from faceguard.stats import Interval, scipy_stats, wilson


class Verdict(str, Enum):
    """A criterion's, a day's or the whole gate's outcome."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Criterion(str, Enum):
    """What the gate judges each day (see the module table)."""

    RECALL = "recall"
    PRECISION = "precision"
    FP_PER_100 = "fp_per_100"
    MEAN_MS = "mean_ms"
    REVIEWED = "reviewed_images"


@dataclass(frozen=True, kw_only=True)
class DayFigures:
    """One version's figures for one UTC day (what the log returns)."""

    day: date
    images: int = 0
    reviewed_images: int = 0
    confirmed: int = 0
    false_positives: int = 0
    missed: int = 0
    latency_n: int = 0  # ok images
    latency_mean: float | None = None
    latency_sd: float | None = None

    @classmethod
    def from_latencies(cls, day: date, latencies: Sequence[float], **counts: int) -> "DayFigures":
        """Figures of ``day`` with latency n, mean and sample sd taken from ``latencies``."""
        x = np.asarray(latencies, dtype=np.float64)
        return cls(day=day, latency_n=len(x), latency_mean=float(x.mean()) if len(x) else None,
                   latency_sd=float(x.std(ddof=1)) if len(x) > 1 else None, **counts)


@dataclass(frozen=True)
class CriterionResult:
    """One criterion on one day: figure, interval, target and verdict."""

    criterion: Criterion
    figure: float | None
    interval: Interval | None
    target: float
    at_least: bool  # True: the figure must reach the target; False: stay at or under it
    n: int
    verdict: Verdict

    def describe(self) -> str:
        """One line for people, e.g. ``recall 96.0% [93.1%, 97.7%] (target >= 95.0%, n=300): inconclusive``."""
        if self.figure is None or (isinstance(self.figure, float) and math.isnan(self.figure)):
            fig = "no data"
        elif self.criterion is Criterion.REVIEWED:
            fig = f"{int(self.figure)}"
        else:
            fig = format_figure(self.criterion, self.figure)
        ci = f" [{format_figure(self.criterion, self.interval.low)}, {format_figure(self.criterion, self.interval.high)}]" \
            if self.interval is not None else ""
        op = ">=" if self.at_least else "<="
        return f"{self.criterion.value} {fig}{ci} (target {op} {format_figure(self.criterion, self.target)}, n={self.n}): {self.verdict.value}"


def format_figure(c: Criterion, v: float) -> str:
    """A figure of criterion ``c`` as printed (percentages for rates, 2 decimals otherwise)."""
    if c in (Criterion.RECALL, Criterion.PRECISION):
        return f"{v:.1%}"
    if c is Criterion.REVIEWED:
        return f"{v:g}"
    return f"{v:.2f}"


@dataclass(frozen=True)
class DayResult:
    """Every criterion of one UTC day and the day's verdict."""

    day: date
    images: int
    reviewed_images: int
    criteria: tuple[CriterionResult, ...]
    verdict: Verdict


@dataclass(frozen=True)
class GateReport:
    """The gate for one version: every day looked at, the days judged, and the verdict."""

    version: str
    now: datetime
    days: tuple[DayResult, ...]  # oldest first; today last
    judged: tuple[date, ...]  # the span the verdict is over
    required_days: int
    verdict: Verdict

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def describe(self) -> str:
        """One line for people: the verdict and what kept each judged day from passing."""
        judged = {d.day: d for d in self.days if d.day in self.judged}
        bad = [f"{day}: {d.verdict.value} ({'; '.join(c.describe() for c in d.criteria if c.verdict is not Verdict.PASS)})"
               for day, d in judged.items() if d.verdict is not Verdict.PASS]
        return f"gate {self.verdict.value} for {self.version} over {len(self.judged)} day(s)" + (
            ": " + " | ".join(bad) if bad else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (recorded in the promote event's evidence)."""
        return {
            "version": self.version, "verdict": self.verdict.value, "now": self.now.isoformat(),
            "required_days": self.required_days, "judged": [d.isoformat() for d in self.judged],
            "days": [{
                "day": d.day.isoformat(), "images": d.images, "reviewed_images": d.reviewed_images,
                "verdict": d.verdict.value,
                "criteria": {c.criterion.value: {
                    "figure": None if c.figure is None or math.isnan(c.figure) else round(c.figure, 6),
                    "interval": None if c.interval is None else [round(c.interval.low, 6), round(c.interval.high, 6)],
                    "target": c.target, "n": c.n, "verdict": c.verdict.value} for c in d.criteria},
            } for d in self.days],
        }


# -- pure judgement ------------------------------------------------------------------------------
def judge_at_least(successes: int, n: int, target: float) -> tuple[Interval, Verdict]:
    """A proportion that must reach ``target``: PASS when Wilson's lower bound does, FAIL when
    even the upper bound falls short."""
    ci = wilson(successes, n)
    if n and ci.low >= target:
        return ci, Verdict.PASS
    if n and ci.high < target:
        return ci, Verdict.FAIL
    return ci, Verdict.INCONCLUSIVE


def poisson_interval(count: int, exposure: float, *, alpha: float = 0.05) -> Interval:
    """Exact (Garwood) interval of a Poisson rate ``count / exposure``."""
    if exposure <= 0:
        return Interval(0.0, math.inf)
    low = scipy_stats().chi2.ppf(alpha / 2, 2 * count) / 2 if count > 0 else 0.0
    high = scipy_stats().chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return Interval(float(low) / exposure, float(high) / exposure)


def judge_at_most(ci: Interval | None, target: float) -> Verdict:
    """A figure that must stay at or under ``target``: PASS when the interval's upper bound does,
    FAIL when even its lower bound is above, INCONCLUSIVE otherwise (or without an interval)."""
    if ci is None:
        return Verdict.INCONCLUSIVE
    if ci.high <= target:
        return Verdict.PASS
    if ci.low > target:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE


def mean_interval(n: int, mean: float | None, sd: float | None, *, alpha: float = 0.05) -> Interval | None:
    """Student-t interval of a mean; None with fewer than two values."""
    if n < 2 or mean is None or sd is None:
        return None
    half = scipy_stats().t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean - half, mean + half)


def judge_day(f: DayFigures, gate: GateSettings, *, max_mean_ms: float | None = None) -> DayResult:
    """Every criterion of one day (see the module table)."""
    target_ms = gate.max_mean_ms if max_mean_ms is None else max_mean_ms
    results = []
    n_rec = f.confirmed + f.missed
    ci, v = judge_at_least(f.confirmed, n_rec, gate.min_recall)
    results.append(CriterionResult(Criterion.RECALL, f.confirmed / n_rec if n_rec else math.nan, ci,
                                   gate.min_recall, True, n_rec, v))
    n_prec = f.confirmed + f.false_positives
    ci, v = judge_at_least(f.confirmed, n_prec, gate.min_precision)
    results.append(CriterionResult(Criterion.PRECISION, f.confirmed / n_prec if n_prec else math.nan, ci,
                                   gate.min_precision, True, n_prec, v))
    if f.reviewed_images:
        per_image = poisson_interval(f.false_positives, f.reviewed_images)
        ci = Interval(100 * per_image.low, 100 * per_image.high)
        fig = 100.0 * f.false_positives / f.reviewed_images
    else:
        ci, fig = None, math.nan
    results.append(CriterionResult(Criterion.FP_PER_100, fig, ci, gate.max_fp_per_100, False, f.reviewed_images,
                                   judge_at_most(ci, gate.max_fp_per_100)))
    ci = mean_interval(f.latency_n, f.latency_mean, f.latency_sd)
    results.append(CriterionResult(Criterion.MEAN_MS, math.nan if f.latency_mean is None else f.latency_mean, ci,
                                   target_ms, False, f.latency_n, judge_at_most(ci, target_ms)))
    enough = f.reviewed_images >= gate.min_reviewed_per_day
    results.append(CriterionResult(Criterion.REVIEWED, float(f.reviewed_images), None,
                                   float(gate.min_reviewed_per_day), True, f.reviewed_images,
                                   Verdict.PASS if enough else Verdict.INCONCLUSIVE))
    return DayResult(f.day, f.images, f.reviewed_images, tuple(results), _combined(r.verdict for r in results))


def judge(version: str, figures: Sequence[DayFigures], gate: GateSettings, *, now: datetime,
          max_mean_ms: float | None = None) -> GateReport:
    """The gate over the ``gate.days`` most recent days (see the module docstring); days
    without figures count as days without data (INCONCLUSIVE)."""
    today = now.astimezone(timezone.utc).date()
    by_day = {f.day: f for f in figures}
    span = [today - timedelta(days=i) for i in range(gate.days, -1, -1)]  # days+1 days, today last
    days = tuple(judge_day(by_day.get(d, DayFigures(day=d)), gate, max_mean_ms=max_mean_ms) for d in span)
    judged_days = days[-gate.days:] if days[-1].verdict is not Verdict.INCONCLUSIVE else days[-gate.days - 1:-1]
    return GateReport(version, now, days, tuple(d.day for d in judged_days), gate.days,
                      _combined(d.verdict for d in judged_days))


def _combined(verdicts: Iterable[Verdict]) -> Verdict:
    """FAIL when any part fails, PASS when every part passes, else INCONCLUSIVE."""
    seen = set(verdicts)
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    return Verdict.PASS if seen == {Verdict.PASS} else Verdict.INCONCLUSIVE


# -- reading the log -----------------------------------------------------------------------------
def latency_budget(store: ModelStore | None, version: str) -> float | None:
    """The version's own latency budget from its manifest, if it has one."""
    if store is None:
        return None
    try:
        return store.manifest(version).latency_budget_ms
    except ModelError:
        return None


def day_figures(db, version: str, *, since: date, until: date, include_demo: bool = False) -> list[DayFigures]:
    """Per-day figures of ``version`` for the UTC days [since, until) from the log."""
    from faceguard.log import queries

    start = datetime.combine(since, time(0), tzinfo=timezone.utc)
    end = datetime.combine(until, time(0), tzinfo=timezone.utc)
    df = queries.metrics_by_version(db, bucket="day", since=start, until=end, versions=[version],
                                    include_demo=include_demo)
    latencies = queries.daily_latency_samples(db, version, start, end, include_demo=include_demo)
    out = []
    for row in df.itertuples():
        day = row.bucket.to_pydatetime().astimezone(timezone.utc).date()
        lat = latencies.get(day, np.empty(0))
        out.append(DayFigures.from_latencies(day, lat, images=int(row.images), reviewed_images=int(row.reviewed_images),
                                             confirmed=int(row.confirmed), false_positives=int(row.false_positives),
                                             missed=int(row.missed)))
    return out


def evaluate(db, version: str, settings: Settings, *, now: datetime | None = None,
             store: ModelStore | None = None, include_demo: bool = False) -> GateReport:
    """Judge ``version`` against the gate from the log (``db``: Settings or path)."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(timezone.utc).date()
    figures = day_figures(db, version, since=today - timedelta(days=settings.gate.days),
                          until=today + timedelta(days=1), include_demo=include_demo)
    return judge(version, figures, settings.gate, now=now, max_mean_ms=latency_budget(store, version))


# -- promotion -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did: the switch event, the gate report, and whether the gate was overridden."""

    event: SwitchEvent
    report: GateReport
    forced: bool


def promote(store: ModelStore, version: str, settings: Settings, *, actor: str, reason: str = "",
            force: bool = False, now: datetime | None = None, db=None) -> Promotion:
    """Make ``version`` current if it passes the gate; stop the canary.

    Raises ``GateFailedError`` when the gate does not pass, unless ``force`` (which needs a
    reason; both are recorded in the ``promote`` event's evidence with the gate report).
    """
    report = evaluate(settings.db_path if db is None else db, version, settings, now=now, store=store)
    forced = force and not report.passed
    if not report.passed:
        if not force:
            raise GateFailedError(f"{report.describe()}; use --force with a reason to promote anyway")
        if not reason.strip():
            raise RolloutError("promoting past the gate needs a reason (it is recorded with the event)")
    evidence = {"gate": report.to_dict(), "forced": forced}
    event = store.use(version, actor=actor, reason=reason or "promotion gate passed", kind="promote",
                      evidence=evidence)
    from faceguard.rollout import stop_canary

    stop_canary(store, actor=actor, reason=f"{version} promoted")
    return Promotion(event, report, forced)


__all__ = [
    "Criterion", "CriterionResult", "DayFigures", "DayResult", "GateReport", "Promotion", "Verdict", "day_figures",
    "format_figure",
    "evaluate", "judge", "judge_at_least", "judge_at_most", "judge_day", "latency_budget", "mean_interval",
    "poisson_interval", "promote",
]
