"""Interval statistics for comparing versions: proportions, their differences, percentiles,
sample sizes and sample ratios. Pure functions of plain numbers (the A/B analysis and the
promotion gate call them).

All two-sided, 95 % by default:

- Proportions (reviewed precision and recall, error rate) get the Wilson score interval,
  which stays inside [0, 1] and keeps its coverage on small samples where the normal
  interval does not; differences of two proportions get Newcombe's hybrid score interval
  built from the two Wilson intervals.
- Latency p50/p95 differences (b - a) get a percentile bootstrap interval: ``n_boot``
  resamples of each variant (seeded, vectorised in chunks so memory stays bounded; each
  variant first subsampled to at most ``max_latency_samples`` images).
- Sample-ratio mismatch: a chi-square goodness-of-fit test of the served images per variant
  against the configured split; a warning when p < 0.001 (the assignment or the logging is
  broken, so no other figure of the comparison can be trusted).
- Minimum sample size per variant, for a two-sided two-proportion z-test at level
  ``alpha`` with ``power``, detecting a drop of ``min_detectable_effect`` from the baseline
  rate p1 (p2 = p1 - mde)::

      n = (z_{1-alpha/2} * sqrt(2 * pbar * (1 - pbar)) + z_{power} * sqrt(p1(1-p1) + p2(1-p2)))^2 / mde^2

  with pbar = (p1 + p2) / 2. For recall 0.95 and mde 0.02: 2,213 reviewed faces per variant.

>>> [round(x, 4) for x in wilson(5, 10)]
[0.2366, 0.7634]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np


def scipy_stats():
    """scipy.stats, imported on first use: it costs ~1.5 s, and every CLI command imports this module."""
    from scipy import stats

    return stats


Z95 = 1.959963984540054


class Interval(NamedTuple):
    """A two-sided interval ``[low, high]``."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval and the sample size behind it (``value`` NaN when n = 0)."""

    value: float
    low: float
    high: float
    n: int = 0

    @classmethod
    def proportion(cls, successes: int, n: int) -> "Estimate":
        """``successes / n`` with its Wilson interval (NaN and (0, 1) when ``n`` is 0)."""
        lo, hi = wilson(successes, n)
        return cls(successes / n if n else math.nan, lo, hi, n)


def wilson(successes: int, n: int, *, z: float = Z95) -> Interval:
    """Wilson score interval of a proportion ``successes / n``; (0, 1) when ``n`` is 0.

    >>> round(wilson(0, 10).high, 4)
    0.2775
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Interval(0.0, 1.0)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp rounding noise at the edges (0/n has an exact lower bound of 0).
    return Interval(max(0.0, center - half) if successes else 0.0, min(1.0, center + half) if successes < n else 1.0)


def diff_interval(x_a: int, n_a: int, x_b: int, n_b: int, *, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval of ``x_b/n_b - x_a/n_a`` (from the two Wilson intervals)."""
    if n_a == 0 or n_b == 0:
        return Interval(-1.0, 1.0)
    p_a, p_b = x_a / n_a, x_b / n_b
    l_a, u_a = wilson(x_a, n_a, z=z)
    l_b, u_b = wilson(x_b, n_b, z=z)
    d = p_b - p_a
    return Interval(d - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2), d + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2))


def min_sample_size(p_baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Per-variant sample size to detect a drop of ``mde`` from ``p_baseline`` (see module docs).

    >>> min_sample_size(0.95, 0.02)
    2213
    """
    if not 0 < mde < 1:
        raise ValueError(f"min_detectable_effect must be in (0, 1), got {mde}")
    p1 = min(max(p_baseline, 1e-6), 1 - 1e-6)
    p2 = p1 - mde if p1 - mde > 0 else p1 + mde
    pbar = (p1 + p2) / 2
    z_a = scipy_stats().norm.ppf(1 - alpha / 2)
    z_b = scipy_stats().norm.ppf(power)
    num = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return int(math.ceil(num * num / (mde * mde)))


def bootstrap_diff(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, q: float = 50.0, n_boot: int = 2000,
    seed: int = 0, alpha: float = 0.05, max_samples: int = 10_000,
) -> "Estimate | None":
    """Percentile ``q`` of ``b`` minus that of ``a``, with a percentile-bootstrap interval.

    None when either sample is empty. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    xa = _cap(np.asarray(a, dtype=np.float64), max_samples, rng)
    xb = _cap(np.asarray(b, dtype=np.float64), max_samples, rng)
    if not len(xa) or not len(xb):
        return None
    point = float(np.percentile(xb, q) - np.percentile(xa, q))
    diffs = np.empty(n_boot)
    # Rows per chunk so one chunk holds at most ~4M resampled values per variant.
    rows = max(1, 4_000_000 // max(len(xa), len(xb)))
    for start in range(0, n_boot, rows):
        k = min(rows, n_boot - start)
        ra = xa[rng.integers(0, len(xa), size=(k, len(xa)))]
        rb = xb[rng.integers(0, len(xb), size=(k, len(xb)))]
        diffs[start:start + k] = np.percentile(rb, q, axis=1) - np.percentile(ra, q, axis=1)
    low, high = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Estimate(point, float(low), float(high), n=int(min(len(xa), len(xb))))


def _cap(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    x = x[np.isfinite(x)]
    return x if len(x) <= n else rng.choice(x, size=n, replace=False)


@dataclass(frozen=True)
class SampleRatio:
    """Chi-square test of served images per variant against the configured split."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    threshold: float = 0.001

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold


def sample_ratio_check(observed: Sequence[int], expected_shares: Sequence[float], *, threshold: float = 0.001) -> SampleRatio:
    """Sample-ratio-mismatch check (warn when ``p < threshold``).

    >>> sample_ratio_check([9500, 500], [0.95, 0.05]).mismatch
    False
    """
    obs = np.asarray(observed, dtype=np.float64)
    shares = np.asarray(expected_shares, dtype=np.float64)
    if obs.shape != shares.shape or len(obs) < 2:
        raise ValueError(f"need one expected share per variant (at least two), got {list(observed)} and {list(expected_shares)}")
    if np.any(shares < 0) or shares.sum() <= 0:
        raise ValueError(f"expected shares must be >= 0 and not all 0, got {list(expected_shares)}")
    total = obs.sum()
    expected = shares / shares.sum() * total
    if total == 0:
        return SampleRatio(tuple(int(o) for o in obs), tuple(expected), 0.0, 1.0, threshold)
    if np.any((expected == 0) & (obs > 0)):  # traffic where none was expected: certainly a mismatch
        return SampleRatio(tuple(int(o) for o in obs), tuple(expected), math.inf, 0.0, threshold)
    keep = expected > 0
    chi2, p = scipy_stats().chisquare(obs[keep], expected[keep]) if keep.sum() >= 2 else (0.0, 1.0)
    return SampleRatio(tuple(int(o) for o in obs), tuple(float(e) for e in expected), float(chi2), float(p), threshold)


__all__ = [
    "Z95", "Estimate", "Interval", "SampleRatio", "bootstrap_diff", "diff_interval", "min_sample_size",
    "sample_ratio_check", "scipy_stats", "wilson",
]
