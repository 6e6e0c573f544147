"""A/B analysis of two versions over one period: the functions the A/B page calls.

``compare(db, version_a, version_b, since, until, expected_split=...)`` reads the log once per
figure (``queries.metrics_by_version`` and ``queries.latency_samples``) and hands plain values
to ``analyse``, a pure function tested from plain lists. ``a`` is the baseline (the stable
version), ``b`` the candidate (the canary).

The statistics (all two-sided, 95 %: Wilson and Newcombe intervals for proportions and their
differences, a percentile bootstrap for latency p50/p95 differences, the sample-ratio
chi-square check and the minimum sample size per variant) are in ``faceguard.stats``, and
re-exported here.

Verdict: ``WORSE`` as soon as recall, precision or the error rate of b is significantly worse
(a harm is acted on early); ``NOT_ENOUGH_DATA`` while either variant has fewer reviewed faces
(recall) or detections (precision) than the minimum sample size; then ``BETTER`` when recall
or precision is significantly better and neither is worse, else ``NO_DIFFERENCE`` (no
difference as large as the minimum detectable effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Sequence

import numpy as np

# Also re-exported (see __all__): abtest.wilson and friends are how callers and tests know them.
from faceguard.stats import (  # noqa: F401
    Z95,
    Estimate,
    Interval,
    SampleRatio,
    bootstrap_diff,
    diff_interval,
    min_sample_size,
    sample_ratio_check,
    scipy_stats,
    wilson,
)


class ABVerdict(str, Enum):
    """The A/B comparison's outcome for candidate b (the rule is in the module docstring)."""

    BETTER = "better"
    WORSE = "worse"
    NOT_ENOUGH_DATA = "not_enough_data"
    NO_DIFFERENCE = "no_difference"


@dataclass(frozen=True, kw_only=True)
class ABOptions:
    """Knobs of the comparison (defaults: 95 % intervals, 80 % power, 2-point effect)."""

    alpha: float = 0.05
    power: float = 0.8
    min_detectable_effect: float = 0.02
    baseline_recall: float = 0.95  # used for the sample size until the baseline has reviews
    baseline_precision: float = 0.90
    n_boot: int = 2000
    max_latency_samples: int = 10_000
    seed: int = 0
    srm_threshold: float = 0.001
    include_demo: bool = True


@dataclass(frozen=True, kw_only=True)
class VariantCounts:
    """One variant's raw counts over the period (what the log query returns)."""

    version: str
    images: int = 0
    errors: int = 0
    faces: int = 0
    flagged: int = 0
    reviewed_images: int = 0
    confirmed: int = 0
    false_positives: int = 0
    missed: int = 0
    mean_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class VariantStats:
    """One variant's figures with their intervals, built from its counts and latencies."""

    version: str
    images: int
    errors: int
    error_rate: Estimate
    detection_rate: float  # faces detected per served image
    flagged_rate: Estimate
    reviewed_images: int
    precision: Estimate
    recall: Estimate
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None

    @classmethod
    def from_counts(cls, c: VariantCounts, latencies: np.ndarray) -> "VariantStats":
        """The figures of ``c``, with latency mean and percentiles from ``latencies`` when there are any."""
        lat = np.asarray(latencies, dtype=np.float64)
        return cls(
            version=c.version, images=c.images, errors=c.errors,
            error_rate=Estimate.proportion(c.errors, c.images),
            detection_rate=c.faces / c.images if c.images else math.nan,
            flagged_rate=Estimate.proportion(c.flagged, c.images),
            reviewed_images=c.reviewed_images,
            precision=Estimate.proportion(c.confirmed, c.confirmed + c.false_positives),
            recall=Estimate.proportion(c.confirmed, c.confirmed + c.missed),
            mean_ms=float(lat.mean()) if len(lat) else c.mean_ms,
            p50_ms=float(np.percentile(lat, 50)) if len(lat) else None,
            p95_ms=float(np.percentile(lat, 95)) if len(lat) else None,
        )


@dataclass(frozen=True, kw_only=True)
class ABReport:
    """Both variants' figures, the differences b - a with their intervals, and the verdict with its reasons."""

    a: VariantStats
    b: VariantStats
    since: datetime | None
    until: datetime | None
    recall_diff: Interval  # b - a
    precision_diff: Interval
    error_rate_diff: Interval
    p50_diff_ms: Estimate | None  # b - a, bootstrap interval
    p95_diff_ms: Estimate | None
    srm: SampleRatio | None
    min_sample_size: dict[str, int]  # per variant: reviewed faces (recall), reviewed detections (precision)
    verdict: ABVerdict
    reasons: tuple[str, ...] = field(default_factory=tuple)


def analyse(
    a: VariantCounts, b: VariantCounts, latencies_a: Sequence[float], latencies_b: Sequence[float], *,
    expected_split: Sequence[float] | None = None, options: ABOptions = ABOptions(),
    since: datetime | None = None, until: datetime | None = None,
) -> ABReport:
    """The comparison from plain counts and latencies (pure; ``compare`` feeds it from the log)."""
    sa = VariantStats.from_counts(a, np.asarray(latencies_a, dtype=np.float64))
    sb = VariantStats.from_counts(b, np.asarray(latencies_b, dtype=np.float64))
    z = scipy_stats().norm.ppf(1 - options.alpha / 2)
    recall_diff = diff_interval(a.confirmed, a.confirmed + a.missed, b.confirmed, b.confirmed + b.missed, z=z)
    precision_diff = diff_interval(a.confirmed, a.confirmed + a.false_positives,
                                   b.confirmed, b.confirmed + b.false_positives, z=z)
    error_diff = diff_interval(a.errors, a.images, b.errors, b.images, z=z)
    boot = dict(n_boot=options.n_boot, seed=options.seed, alpha=options.alpha, max_samples=options.max_latency_samples)
    p50 = bootstrap_diff(latencies_a, latencies_b, q=50, **boot)
    p95 = bootstrap_diff(latencies_a, latencies_b, q=95, **boot)
    srm = None
    if expected_split is not None:
        srm = sample_ratio_check([a.images, b.images], list(expected_split), threshold=options.srm_threshold)

    base_recall = sa.recall.value if sa.recall.n and not math.isnan(sa.recall.value) else options.baseline_recall
    base_precision = sa.precision.value if sa.precision.n and not math.isnan(sa.precision.value) else options.baseline_precision
    need = {
        "recall": min_sample_size(base_recall, options.min_detectable_effect, alpha=options.alpha, power=options.power),
        "precision": min_sample_size(base_precision, options.min_detectable_effect, alpha=options.alpha,
                                     power=options.power),
    }
    verdict, reasons = decide(sa, sb, recall_diff=recall_diff, precision_diff=precision_diff,
                              error_rate_diff=error_diff, need=need)
    if srm is not None and srm.mismatch:
        reasons = (f"sample ratio mismatch: {a.images}/{b.images} images against an expected split of "
                   f"{list(expected_split)} (chi-square p = {srm.p_value:.2g}); the split or the logging is "
                   "broken and no figure here can be trusted",) + reasons
    for name, est in (("p50", p50), ("p95", p95)):
        if est is not None and (est.low > 0 or est.high < 0):
            reasons += (f"latency {name} of {b.version} is {'higher' if est.low > 0 else 'lower'} by "
                        f"{est.value:+.1f} ms [{est.low:+.1f}, {est.high:+.1f}]",)
    return ABReport(a=sa, b=sb, since=since, until=until, recall_diff=recall_diff, precision_diff=precision_diff,
                    error_rate_diff=error_diff, p50_diff_ms=p50, p95_diff_ms=p95, srm=srm, min_sample_size=need,
                    verdict=verdict, reasons=reasons)


def decide(a: VariantStats, b: VariantStats, *, recall_diff: Interval, precision_diff: Interval,
           error_rate_diff: Interval, need: dict[str, int]) -> tuple[ABVerdict, tuple[str, ...]]:
    """The verdict rule of the module docstring, with the reasons behind it."""
    worse = []
    if a.recall.n and b.recall.n and recall_diff.high < 0:
        worse.append(f"recall lower by {-(b.recall.value - a.recall.value):.1%} [{recall_diff.low:+.3f}, {recall_diff.high:+.3f}]")
    if a.precision.n and b.precision.n and precision_diff.high < 0:
        worse.append(f"precision lower by {-(b.precision.value - a.precision.value):.1%} "
                     f"[{precision_diff.low:+.3f}, {precision_diff.high:+.3f}]")
    if a.images and b.images and error_rate_diff.low > 0:
        worse.append(f"error rate higher by {b.error_rate.value - a.error_rate.value:.2%} "
                     f"[{error_rate_diff.low:+.4f}, {error_rate_diff.high:+.4f}]")
    if worse:
        return ABVerdict.WORSE, tuple(f"{b.version}: {w}" for w in worse)
    short = []
    for metric, est_a, est_b, unit in (("recall", a.recall, b.recall, "reviewed faces"),
                                       ("precision", a.precision, b.precision, "reviewed detections")):
        have = min(est_a.n, est_b.n)
        if have < need[metric]:
            short.append(f"{metric}: {have} {unit} in the smaller variant, {need[metric]} needed per variant")
    if short:
        return ABVerdict.NOT_ENOUGH_DATA, tuple(short)
    better = []
    if recall_diff.low > 0:
        better.append(f"recall higher [{recall_diff.low:+.3f}, {recall_diff.high:+.3f}]")
    if precision_diff.low > 0:
        better.append(f"precision higher [{precision_diff.low:+.3f}, {precision_diff.high:+.3f}]")
    if better:
        return ABVerdict.BETTER, tuple(f"{b.version}: {x}" for x in better)
    return ABVerdict.NO_DIFFERENCE, (
        f"recall [{recall_diff.low:+.3f}, {recall_diff.high:+.3f}] and precision "
        f"[{precision_diff.low:+.3f}, {precision_diff.high:+.3f}] differences include 0",)


def counts_from_metrics(df, version: str) -> VariantCounts:
    """One version's row of ``queries.metrics_by_version(bucket=None)`` as ``VariantCounts``."""
    rows = df[df["model_version"] == version]
    if rows.empty:
        return VariantCounts(version=version)
    r = rows.iloc[0]
    mean = r["mean_ms"]
    return VariantCounts(
        version=version, images=int(r["images"]), errors=int(r["errors"]), faces=int(r["faces"]),
        flagged=int(r["flagged"]), reviewed_images=int(r["reviewed_images"]), confirmed=int(r["confirmed"]),
        false_positives=int(r["false_positives"]), missed=int(r["missed"]),
        mean_ms=None if mean is None or (isinstance(mean, float) and math.isnan(mean)) else float(mean),
    )


def compare(
    db, version_a: str, version_b: str, since: datetime | None = None, until: datetime | None = None, *,
    expected_split: Sequence[float] | None = None, options: ABOptions = ABOptions(),
) -> ABReport:
    """Compare candidate ``version_b`` with baseline ``version_a`` over [since, until).

    ``expected_split`` is the configured share of each, e.g. ``(95, 5)`` for a 5 % canary
    (any scale; only the ratio matters); without it the sample-ratio check is skipped.
    """
    from faceguard.log import queries

    if version_a == version_b:
        raise ValueError(f"compare two different versions, got {version_a!r} twice")
    df = queries.metrics_by_version(db, bucket=None, since=since, until=until, versions=[version_a, version_b],
                                    include_demo=options.include_demo)
    lat_a = queries.latency_samples(db, version_a, since, until, include_demo=options.include_demo)
    lat_b = queries.latency_samples(db, version_b, since, until, include_demo=options.include_demo)
    return analyse(counts_from_metrics(df, version_a), counts_from_metrics(df, version_b), lat_a, lat_b,
                   expected_split=expected_split, options=options, since=since, until=until)


__all__ = [
    "ABOptions", "ABReport", "ABVerdict", "Estimate", "Interval", "SampleRatio", "VariantCounts", "VariantStats",
    "analyse", "bootstrap_diff", "compare", "counts_from_metrics", "decide", "diff_interval", "min_sample_size",
    "sample_ratio_check", "wilson",
]
