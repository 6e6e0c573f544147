"""A/B statistics from plain numbers: Wilson, Newcombe, sample size, bootstrap, SRM, verdict."""

import math
from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest
from scipy.stats import binomtest

from faceguard.abtest import (
    ABVerdict,
    VariantCounts,
    analyse,
    bootstrap_diff,
    compare,
    diff_interval,
    min_sample_size,
    sample_ratio_check,
    wilson,
)

from .conftest import BETA, STABLE, T0, image, review, write_records


@pytest.mark.parametrize("k,n", [(0, 10), (1, 3), (5, 10), (10, 10), (81, 263), (999, 1000), (0, 1), (1, 1)])
def test_wilson_matches_the_reference_implementation(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)


def test_wilson_known_values_and_edges():
    assert wilson(0, 10).high == pytest.approx(0.2775328, abs=1e-6)  # z^2 / (n + z^2)
    assert [round(x, 4) for x in wilson(5, 10)] == [0.2366, 0.7634]
    assert wilson(0, 0) == (0.0, 1.0)  # no data: anything is possible


@pytest.mark.parametrize("k,n,expectation", [
    (3, 10, does_not_raise()),
    (11, 10, pytest.raises(ValueError, match="successes <= n")),
    (-1, 10, pytest.raises(ValueError)),
])
def test_wilson_validates(k, n, expectation):
    with expectation:
        wilson(k, n)


def test_newcombe_difference_interval_matches_the_paper():
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    low, high = diff_interval(48, 80, 56, 70)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_min_sample_size_two_proportion_power_calculation():
    assert min_sample_size(0.5, 0.1) == 388  # 50% vs 40%, alpha .05 two-sided, power .8 (Fleiss, no correction)
    assert min_sample_size(0.95, 0.02) == 2213
    assert min_sample_size(0.95, 0.01) > min_sample_size(0.95, 0.02)  # a smaller effect needs more data
    assert min_sample_size(0.95, 0.02, power=0.9) > min_sample_size(0.95, 0.02)


def test_bootstrap_interval_is_seeded_and_covers_the_shift():
    rng = np.random.default_rng(3)
    a, b = rng.normal(40, 4, 3000), rng.normal(46, 4, 3000)
    est = bootstrap_diff(a, b, q=50, n_boot=500, seed=7)
    assert est == bootstrap_diff(a, b, q=50, n_boot=500, seed=7)
    assert est.low < 6 < est.high and est.high - est.low < 1.0 and est.low < est.value < est.high
    same = bootstrap_diff(a, a, q=95, n_boot=300)
    assert same.low <= 0 <= same.high
    assert bootstrap_diff([], b) is None


def test_bootstrap_chunks_large_samples_without_changing_the_answer_shape():
    a = np.arange(5000, dtype=float)
    est = bootstrap_diff(a, a + 10, n_boot=1001, max_samples=5000)  # 1001 resamples over several chunks
    assert est.value == pytest.approx(10) and est.low < 10 < est.high + 1e-9


def test_sample_ratio_mismatch():
    fine = sample_ratio_check([9500, 500], [95, 5])
    assert fine.p_value == pytest.approx(1.0) and not fine.mismatch
    bad = sample_ratio_check([9300, 700], [0.95, 0.05])
    expected = np.array([9500, 500])
    assert bad.chi2 == pytest.approx(((np.array([9300, 700]) - expected) ** 2 / expected).sum())
    assert bad.mismatch and bad.p_value < 0.001
    assert not sample_ratio_check([9470, 530], [95, 5]).mismatch  # within chance
    assert sample_ratio_check([100, 3], [1.0, 0.0]).mismatch  # traffic where none was expected
    assert not sample_ratio_check([0, 0], [95, 5]).mismatch
    with pytest.raises(ValueError, match="one expected share per variant"):
        sample_ratio_check([1, 2, 3], [0.5, 0.5])


def counts(version, *, confirmed, missed, fp, images=10_000, errors=0):
    return VariantCounts(version=version, images=images, errors=errors, faces=confirmed + fp, flagged=images // 50,
                         reviewed_images=confirmed + missed, confirmed=confirmed, false_positives=fp, missed=missed)


LAT = list(np.linspace(15, 25, 200))


def test_verdict_not_enough_data_states_the_sample_size():
    r = analyse(counts(STABLE, confirmed=95, missed=5, fp=5), counts(BETA, confirmed=97, missed=3, fp=5), LAT, LAT)
    assert r.verdict is ABVerdict.NOT_ENOUGH_DATA
    assert r.min_sample_size["recall"] == min_sample_size(0.95, 0.02)
    assert any(str(r.min_sample_size["recall"]) in reason for reason in r.reasons)


def test_verdict_worse_is_called_early_on_a_clear_harm():
    r = analyse(counts(STABLE, confirmed=285, missed=15, fp=10), counts(BETA, confirmed=240, missed=60, fp=10), LAT, LAT)
    assert r.verdict is ABVerdict.WORSE and r.recall_diff.high < 0
    assert "recall lower" in r.reasons[0]


def test_verdict_worse_on_errors():
    a = counts(STABLE, confirmed=95, missed=5, fp=5, images=2000, errors=2)
    b = counts(BETA, confirmed=95, missed=5, fp=5, images=2000, errors=60)
    assert analyse(a, b, LAT, LAT).verdict is ABVerdict.WORSE


def test_verdict_better_and_no_difference_with_enough_reviews():
    a = counts(STABLE, confirmed=3600, missed=400, fp=200)  # recall 0.90: 3,841 faces needed per variant
    early = analyse(a.__class__(**{**a.__dict__, "confirmed": 2700, "missed": 300}),
                    counts(BETA, confirmed=2850, missed=150, fp=150), LAT, LAT)
    assert early.verdict is ABVerdict.NOT_ENOUGH_DATA and "3841 needed" in early.reasons[0]  # no early "better"
    better = analyse(a, counts(BETA, confirmed=3800, missed=200, fp=200), LAT, LAT)
    assert better.verdict is ABVerdict.BETTER and better.recall_diff.low > 0
    same = analyse(a, counts(BETA, confirmed=3610, missed=390, fp=200), LAT, LAT)
    assert same.verdict is ABVerdict.NO_DIFFERENCE


def test_report_carries_latency_intervals_and_srm_warning():
    slow = [x + 10 for x in LAT]
    r = analyse(counts(STABLE, confirmed=9, missed=1, fp=0, images=9000), counts(BETA, confirmed=9, missed=1, fp=0, images=1000),
                LAT, slow, expected_split=(95, 5), )
    assert r.p50_diff_ms.low > 0 and r.p50_diff_ms.value == pytest.approx(10)
    assert r.srm.mismatch and r.reasons[0].startswith("sample ratio mismatch")
    assert r.a.p95_ms == pytest.approx(np.percentile(LAT, 95))
    assert r.b.precision.value == 1.0 and r.b.precision.low < 1.0


def test_compare_reads_the_log(settings):
    a_imgs = [image(i, version=STABLE, variant="stable", ms=20.0 + i % 5) for i in range(60)]
    b_imgs = [image(i, version=BETA, ms=30.0 + i % 5) for i in range(40)] + [image(99, version=BETA, status="detector_error")]
    reviews = [review(img, "correct") for img in a_imgs[:20]] + [review(img, "false_positive") for img in b_imgs[:4]]
    write_records(settings, a_imgs + b_imgs + reviews)
    r = compare(settings, STABLE, BETA, T0 - (T0 - T0.replace(hour=0)), None, expected_split=(60, 40))
    assert (r.a.images, r.b.images, r.b.errors) == (60, 41, 1)
    assert r.a.precision.n == 20 and r.b.precision.value == 0.0
    assert r.p50_diff_ms.value == pytest.approx(10.0)
    assert not r.srm.mismatch
    assert r.verdict is ABVerdict.WORSE  # 0/4 precision against 20/20
    assert math.isclose(r.b.detection_rate, 40 / 41)
