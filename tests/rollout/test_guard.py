"""Rollback rules (pure), the in-process guard with an injected clock, roll_back and check."""

import multiprocessing as mp
from datetime import timedelta

import pytest

from faceguard.config import GuardSettings
from faceguard.log import queries
from faceguard.pipeline import Assignment, ProcessOutcome, Variant
from faceguard.guard import (
    FpSource,
    Guard,
    RollbackAction,
    Rule,
    RuleStats,
    Thresholds,
    check,
    evaluate_rules,
    roll_back,
    stats_from_log,
)
from faceguard.rollout import start_canary

from . import workers
from .conftest import BETA, PREVIOUS, STABLE, T0, image, review, with_evaluation, write_records

TH = Thresholds.from_settings(GuardSettings())


@pytest.mark.parametrize("stats,rules", [
    (RuleStats(version=BETA), []),
    (RuleStats(version=BETA, consecutive_failures=9), []),
    (RuleStats(version=BETA, consecutive_failures=10), [Rule.CONSECUTIVE_FAILURES]),
    (RuleStats(version=BETA, fp_source=FpSource.SHADOW, fp_count=1, fp_images=100), []),  # 1.0%
    (RuleStats(version=BETA, fp_source=FpSource.SHADOW, fp_count=2, fp_images=100), [Rule.FALSE_POSITIVE_RATE]),
    (RuleStats(version=BETA, fp_source=FpSource.SHADOW, fp_count=5, fp_images=99), []),  # window not full yet
    (RuleStats(version=BETA, latency_samples=20, mean_ms=100.0), []),  # "above" 100 ms
    (RuleStats(version=BETA, latency_samples=20, mean_ms=100.5), [Rule.MEAN_LATENCY]),
    (RuleStats(version=BETA, latency_samples=19, mean_ms=500.0), []),  # too few samples
    (RuleStats(version=BETA, consecutive_failures=12, latency_samples=30, mean_ms=150.0),
     [Rule.CONSECUTIVE_FAILURES, Rule.MEAN_LATENCY]),
])
def test_rules(stats, rules):
    assert [b.rule for b in evaluate_rules(stats, TH)] == rules


def test_manifest_budget_replaces_the_latency_threshold():
    th = Thresholds.from_settings(GuardSettings(), latency_budget_ms=250.0)
    assert evaluate_rules(RuleStats(version=BETA, latency_samples=20, mean_ms=200.0), th) == []
    b = evaluate_rules(RuleStats(version=BETA, latency_samples=20, mean_ms=260.0), th)[0]
    assert b.threshold == 250.0 and "budget 250 ms" in b.message


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


class Posts:
    def __init__(self, fail=False):
        self.sent, self.fail = [], fail

    def __call__(self, url, payload, timeout_s):
        self.sent.append((url, payload, timeout_s))
        if self.fail:
            raise OSError("connection refused")


def ok(version=BETA, ms=20.0, variant=Variant.CANARY, shadow=None, disagreements=0):
    return ProcessOutcome(version, variant, True, None, ms, disagreements, shadow_version=shadow)


def failed(version=BETA, variant=Variant.CANARY):
    return ProcessOutcome(version, variant, False, "detector_error", 3.0)


@pytest.fixture
def canary(store, settings):
    with_evaluation(store, BETA)
    start_canary(store, BETA, 5, settings=settings, actor="ann")
    return BETA


@pytest.fixture
def hooked(settings):
    return settings.replace(webhook_url="http://hooks.example/alerts")


def test_consecutive_failures_stop_the_canary(store, hooked, canary, events):
    posts = Posts()
    guard = Guard(store, hooked, clock=Clock(), post=posts)
    for _ in range(9):
        guard.observe(failed())
    guard.observe(ok())  # a success resets the run
    for _ in range(9):
        guard.observe(failed())
    assert store.state().canary is not None and guard.actions == []
    guard.observe(failed())
    [result] = guard.actions
    assert result.action is RollbackAction.CANARY_STOPPED and result.restored_version == STABLE
    assert store.state().canary is None and store.is_quarantined(BETA) and store.current() == STABLE
    rb = next(e for e in events.rows if e["kind"] == "rollback")
    assert (rb["from_version"], rb["to_version"]) == (BETA, STABLE)
    assert rb["evidence"]["rule"] == "consecutive_failures" and rb["evidence"]["figure"] == 10
    assert rb["evidence"]["window"]["requests"] == 10 and rb["evidence"]["window"]["from"] == T0.isoformat()
    [(url, payload, timeout)] = posts.sent
    assert url == "http://hooks.example/alerts" and timeout == hooked.guard.webhook_timeout_s
    assert payload["rule"] == "consecutive_failures" and payload["restored_version"] == STABLE
    assert payload["message"].startswith(f"Restored to stable version {STABLE}")


def test_latency_window_uses_the_injected_clock(store, settings, canary):
    clock = Clock()
    guard = Guard(store, settings, clock=clock, post=Posts())
    for _ in range(19):
        guard.observe(ok(ms=150.0))
        clock.advance(seconds=20)  # 19 samples over 6+ minutes: the oldest leave the 5-minute window
    assert guard.stats(BETA).latency_samples < 19 and guard.actions == []
    for _ in range(20):
        guard.observe(ok(ms=150.0))
    assert guard.actions[0].breach.rule is Rule.MEAN_LATENCY
    w = guard.actions[0].breach.window
    assert w["samples"] >= 20 and w["minutes"] == 5.0


def test_fp_rate_from_shadow_disagreements(store, settings, canary):
    guard = Guard(store, settings, clock=Clock(), post=Posts())
    for i in range(150):  # shadow on every image; no shadow on some: those do not count
        guard.observe(ok(shadow=STABLE if i % 3 else None, disagreements=1 if i == 5 else 0))
    s = guard.stats(BETA)
    assert s.fp_source is FpSource.SHADOW and s.fp_count == 0  # the early disagreement left the window
    assert guard.actions == []
    for i in range(100):
        guard.observe(ok(shadow=STABLE, disagreements=1 if i in (10, 50) else 0))
    assert guard.actions[0].breach.rule is Rule.FALSE_POSITIVE_RATE
    assert guard.actions[0].breach.figure == pytest.approx(0.02)


def test_current_version_rolls_back_to_the_previous_stable(store, settings, events):
    guard = Guard(store, settings, clock=Clock(), post=Posts())
    for _ in range(10):
        guard.observe(failed(STABLE, Variant.STABLE))
    assert guard.actions[0].action is RollbackAction.ROLLED_BACK
    assert store.current() == PREVIOUS and store.is_quarantined(STABLE)
    assert [e["kind"] for e in events.rows] == ["rollback", "quarantine"]  # the switch first
    # PREVIOUS has no stable version left to go back to: it is alerted on, once, but keeps serving
    guard.log = None
    for _ in range(10):
        guard.observe(failed(PREVIOUS, Variant.STABLE))
    assert guard.actions[-1].action is RollbackAction.NO_TARGET and store.current() == PREVIOUS


def test_watch_current_off_leaves_the_current_version_alone(store, settings):
    off = settings.replace(guard=GuardSettings(watch_current=False))
    guard = Guard(store, off, clock=Clock(), post=Posts())
    for _ in range(10):
        guard.observe(failed(STABLE, Variant.STABLE))
    assert guard.actions[0].action is RollbackAction.NOT_WATCHED and store.current() == STABLE


def test_pinned_requests_and_a_broken_webhook_never_fail_anything(store, hooked, canary, caplog):
    guard = Guard(store, hooked, clock=Clock(), post=Posts(fail=True))
    for _ in range(20):
        guard.observe(failed(BETA, Variant.PINNED))
    assert guard.actions == []
    for _ in range(10):
        guard.observe(failed())
    assert guard.actions[0].action is RollbackAction.CANARY_STOPPED  # done, although the webhook failed
    assert "webhook" in caplog.text and "connection refused" in caplog.text


def test_fallback_targets(store, settings, canary):
    guard = Guard(store, settings)
    err = RuntimeError("x")
    assert guard.fallback(Assignment(BETA, Variant.CANARY), err) == Assignment(STABLE, Variant.STABLE)
    assert guard.fallback(Assignment(STABLE, Variant.STABLE), err) == Assignment(PREVIOUS, Variant.STABLE)
    assert guard.fallback(Assignment(BETA, Variant.PINNED), err) is None


def test_roll_back_acts_once(store, settings, canary, events):
    breach = evaluate_rules(RuleStats(version=BETA, consecutive_failures=10), TH)[0]
    first = roll_back(store, breach, settings=settings, post=Posts())
    second = roll_back(store, breach, settings=settings, post=Posts())
    assert (first.action, second.action) == (RollbackAction.CANARY_STOPPED, RollbackAction.ALREADY_HANDLED)
    assert second.alert_id is None and events.kinds().count("rollback") == 1


def test_two_processes_seeing_the_same_breach_switch_once(settings, models_dir):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=workers.roll_back_current, args=(str(models_dir), str(settings.home), barrier, results))
             for _ in range(2)]
    [p.start() for p in procs]
    got = sorted(results.get(timeout=120) for _ in procs)
    [p.join(30) for p in procs]
    assert got == ["already_handled", "rolled_back"]
    ev = queries.events(settings, kinds=["rollback"])
    assert len(ev) == 1 and ev.iloc[0]["to_version"] == PREVIOUS


def test_stats_from_log_prefer_reviews_over_shadow(settings):
    imgs = [image(i, ts=T0 + timedelta(seconds=i), shadow_version=STABLE,
                  shadow_boxes=[] if i < 3 else [{"x": 10.0, "y": 10.0, "w": 20.0, "h": 20.0, "score": 0.9}])
            for i in range(100)]
    write_records(settings, imgs)
    th = Thresholds.from_settings(GuardSettings(fp_min_images=50))
    s = stats_from_log(settings, BETA, th, now=T0 + timedelta(minutes=2))
    assert (s.fp_source, s.fp_count, s.fp_images) == (FpSource.SHADOW, 3, 100)
    assert s.latency_samples == 100 and s.mean_ms == pytest.approx(20.0)
    write_records(settings, [review(img, "correct") for img in imgs[:60]])
    s = stats_from_log(settings, BETA, th, now=T0 + timedelta(minutes=2))
    assert (s.fp_source, s.fp_count, s.fp_images) == (FpSource.REVIEWS, 0, 60)


def test_check_acts_from_the_log_once(store, settings, canary, events):
    write_records(settings, [image(i, ts=T0 + timedelta(seconds=i)) for i in range(5)]
                  + [image(i, ts=T0 + timedelta(seconds=10 + i), status="model_error") for i in range(10)])
    report = check(store, settings, now=T0 + timedelta(minutes=1), post=Posts())
    assert report.acted and [b.rule for b in report.breaches] == [Rule.CONSECUTIVE_FAILURES]
    assert report.actions[0].action is RollbackAction.CANARY_STOPPED and store.is_quarantined(BETA)
    again = check(store, settings, now=T0 + timedelta(minutes=2), post=Posts())
    assert not again.acted and [s.version for s in again.checked] == [STABLE]
