"""The promotion gate: per-criterion verdicts from intervals, consecutive days, promote."""

import dataclasses
from datetime import date, timedelta

import pytest

from faceguard.config import GateSettings
from faceguard.errors import GateFailedError, RolloutError
from faceguard.gate import (
    Criterion,
    DayFigures,
    Verdict,
    evaluate,
    judge,
    judge_at_least,
    judge_day,
    poisson_interval,
    promote,
)
from faceguard.rollout import start_canary

from .conftest import BETA, PREVIOUS, STABLE, T0, image, review, with_evaluation, write_records

GATE = GateSettings()
TODAY = T0.date()


@pytest.mark.parametrize("k,n,verdict", [
    (95, 95, Verdict.PASS),  # Wilson low 0.961 >= 0.95
    (10, 10, Verdict.INCONCLUSIVE),  # perfect, but 10 faces cannot show 95%
    (80, 100, Verdict.FAIL),  # Wilson high 0.87 < 0.95
    (0, 0, Verdict.INCONCLUSIVE),
    (190, 200, Verdict.INCONCLUSIVE),  # 95% on the nose: interval straddles the target
])
def test_proportion_criterion_is_judged_on_the_wilson_bounds(k, n, verdict):
    ci, v = judge_at_least(k, n, 0.95)
    assert v is verdict
    assert ci.low <= (k / n if n else 0.5) <= ci.high


def test_poisson_interval_known_values():
    assert poisson_interval(0, 1) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert poisson_interval(5, 1) == pytest.approx((1.6235, 11.6683), abs=1e-4)
    assert poisson_interval(5, 100).high == pytest.approx(0.116683, abs=1e-6)


def day(d: date, *, reviewed=400, confirmed=400, fp=0, missed=0, lat=(20.0, 22.0, 24.0) * 100, images=1000):
    return DayFigures.from_latencies(d, list(lat), images=images, reviewed_images=reviewed, confirmed=confirmed,
                                     false_positives=fp, missed=missed)


LOOSE = dataclasses.replace(GATE, max_fp_per_100=2.0)  # 0 FP in 400 images: Poisson high 0.92 per 100


def test_a_good_day_passes_every_criterion():
    r = judge_day(day(TODAY), LOOSE)
    assert r.verdict is Verdict.PASS
    assert {c.criterion: c.verdict for c in r.criteria} == {c: Verdict.PASS for c in Criterion}
    mean = next(c for c in r.criteria if c.criterion is Criterion.MEAN_MS)
    assert mean.figure == pytest.approx(22.0) and mean.interval.low < 22 < mean.interval.high


def test_fp_per_100_needs_many_reviewed_images_at_the_seed_target():
    crit = {c.criterion: c for c in judge_day(day(TODAY), GATE).criteria}[Criterion.FP_PER_100]
    assert crit.figure == 0.0 and crit.verdict is Verdict.INCONCLUSIVE  # 0/400: upper bound 0.92 > 0.5
    big = {c.criterion: c for c in judge_day(day(TODAY, reviewed=800, confirmed=800), GATE).criteria}
    assert big[Criterion.FP_PER_100].verdict is Verdict.PASS  # 0/800: upper bound 0.46


@pytest.mark.parametrize("changes,criterion,verdict", [
    (dict(reviewed=20, confirmed=20), Criterion.REVIEWED, Verdict.INCONCLUSIVE),
    (dict(missed=60), Criterion.RECALL, Verdict.FAIL),
    (dict(fp=80), Criterion.PRECISION, Verdict.FAIL),  # 400/480
    (dict(fp=40), Criterion.PRECISION, Verdict.INCONCLUSIVE),  # 400/440 = 90.9%: straddles 90%
    (dict(fp=40), Criterion.FP_PER_100, Verdict.FAIL),
    (dict(lat=(70.0, 75.0) * 100), Criterion.MEAN_MS, Verdict.FAIL),
    (dict(lat=(10.0, 110.0)), Criterion.MEAN_MS, Verdict.INCONCLUSIVE),  # mean 60 from two requests
])
def test_each_criterion_can_fail_or_stay_inconclusive(changes, criterion, verdict):
    r = judge_day(day(TODAY, **changes), LOOSE)
    got = {c.criterion: c.verdict for c in r.criteria}
    assert got[criterion] is verdict
    assert r.verdict is Verdict.FAIL if verdict is Verdict.FAIL else r.verdict is not Verdict.PASS


def test_manifest_latency_budget_replaces_the_60_ms_target():
    slow = day(TODAY, lat=(70.0, 75.0) * 100)
    crit = {c.criterion: c for c in judge_day(slow, LOOSE, max_mean_ms=120.0).criteria}[Criterion.MEAN_MS]
    assert crit.verdict is Verdict.PASS and crit.target == 120.0


def days_back(n):
    return [TODAY - timedelta(days=i) for i in range(n)]


def test_three_consecutive_passing_days_pass_the_gate():
    figures = [day(d) for d in days_back(3)]
    r = judge(BETA, figures, LOOSE, now=T0)
    assert r.verdict is Verdict.PASS and r.judged == tuple(sorted(days_back(3)))
    assert len(r.days) == 4  # the judged span and the day before it


def test_today_in_progress_does_not_count_against_the_gate():
    figures = [day(d) for d in days_back(4)[1:]] + [day(TODAY, reviewed=5, confirmed=5)]
    r = judge(BETA, figures, LOOSE, now=T0)
    assert r.verdict is Verdict.PASS and TODAY not in r.judged


def test_a_failing_day_fails_the_gate_and_a_gap_leaves_it_inconclusive():
    bad = [day(d) for d in days_back(3)[1:]] + [day(TODAY, missed=100)]
    assert judge(BETA, bad, LOOSE, now=T0).verdict is Verdict.FAIL
    gap = [day(TODAY), day(TODAY - timedelta(days=2))]
    report = judge(BETA, gap, LOOSE, now=T0)
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "inconclusive" in report.describe()


def gate_settings(settings):
    return settings.replace(gate=dataclasses.replace(settings.gate, max_fp_per_100=5.0, min_reviewed_per_day=50))


def good_days(n_days=3, per_day=80):
    records = []
    for d in range(n_days):
        ts = T0 - timedelta(days=d)
        imgs = [image(i, ts=ts + timedelta(seconds=i), ms=20.0 + i % 7) for i in range(per_day)]
        records += imgs + [review(img, "correct") for img in imgs]
    return records


def test_evaluate_reads_days_from_the_log(settings):
    s = gate_settings(settings)
    write_records(s, good_days())
    r = evaluate(s, BETA, s, now=T0 + timedelta(hours=1))
    assert r.verdict is Verdict.PASS, r.describe()
    today = r.days[-1]
    crit = {c.criterion: c for c in today.criteria}
    assert (today.images, today.reviewed_images) == (80, 80)
    assert crit[Criterion.RECALL].n == 80 and crit[Criterion.RECALL].figure == 1.0
    assert crit[Criterion.MEAN_MS].figure == pytest.approx(sum(20.0 + i % 7 for i in range(80)) / 80)
    assert evaluate(s, STABLE, s, now=T0).verdict is Verdict.INCONCLUSIVE  # no data at all


def test_promote_refuses_a_failing_gate_unless_forced_with_a_reason(settings, store, events):
    with_evaluation(store, BETA)
    start_canary(store, BETA, 5, settings=settings, actor="ann")
    with pytest.raises(GateFailedError, match="gate inconclusive"):
        promote(store, BETA, settings, actor="ann", now=T0)
    with pytest.raises(RolloutError, match="needs a reason"):
        promote(store, BETA, settings, actor="ann", force=True, now=T0)
    assert store.current() == STABLE
    p = promote(store, BETA, settings, actor="ann", reason="hotfix for a client", force=True, now=T0)
    assert p.forced and store.current() == BETA and store.state().canary is None
    ev = next(e for e in events.rows if e["kind"] == "promote")
    assert ev["evidence"]["forced"] is True and ev["reason"] == "hotfix for a client"
    assert ev["evidence"]["gate"]["verdict"] == "inconclusive"
    assert events.kinds()[-1] == "canary_stop"


def test_promote_passes_the_gate_and_stops_the_canary(settings, store, events):
    s = gate_settings(settings)
    write_records(s, good_days())
    with_evaluation(store, BETA)
    start_canary(store, BETA, 5, settings=s, actor="ann")
    p = promote(store, BETA, s, actor="ann", now=T0 + timedelta(hours=1))
    assert not p.forced and p.report.passed and store.current() == BETA
    assert store.state().canary is None and store.previous_stable() == STABLE
    assert [e["kind"] for e in events.rows][-2:] == ["promote", "canary_stop"]
    assert store.previous_stable() != PREVIOUS
