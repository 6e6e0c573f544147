"""Traffic split and starting/stopping a canary."""

import hashlib

import pytest

from faceguard.errors import ChecksumMismatchError, RolloutError
from faceguard.log import EvaluationRecord
from faceguard.pipeline import Variant
from faceguard.rollout import CanaryRouter, bucket, judge_internal_test, start_canary, status, stop_canary

from .conftest import BETA, GOOD_EVAL, PREVIOUS, STABLE, with_evaluation, write_records

KEYS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000)]


def test_bucket_is_stable_and_uniform():
    assert bucket(KEYS[0]) == bucket(KEYS[0]) and 0 <= bucket(KEYS[0]) < 100
    below = sum(bucket(k) < 5 for k in KEYS) / len(KEYS)
    assert 0.045 < below < 0.055
    assert bucket(KEYS[0], "shadow") != bucket(KEYS[0])  # salted positions are independent


def test_router_splits_by_input_hash_and_sees_changes_without_restart(store, settings):
    router = CanaryRouter(store, settings)  # built before the canary exists, like a running app
    assert {router.assign(k).variant for k in KEYS[:200]} == {Variant.STABLE}
    with_evaluation(store, BETA)
    start_canary(store, BETA, 5, settings=settings, actor="ann")
    got = [router.assign(k) for k in KEYS]
    canary = [a for a in got if a.variant is Variant.CANARY]
    assert 0.045 < len(canary) / len(KEYS) < 0.055
    assert all(a.version == BETA for a in canary) and {a.version for a in got if a.variant is Variant.STABLE} == {STABLE}
    assert [router.assign(k) for k in KEYS[:500]] == got[:500]  # the same image always meets the same version
    shadowed = sum(a.shadow_version == STABLE for a in canary) / len(canary)
    assert 0.4 < shadowed < 0.6  # shadow_rate 0.5
    start_canary(store, BETA, 50, settings=settings, actor="ann")  # change the percent
    assert 0.48 < sum(router.assign(k).variant is Variant.CANARY for k in KEYS) / len(KEYS) < 0.52
    store.quarantine(BETA, reason="test", actor="ann")
    assert {router.assign(k).version for k in KEYS[:500]} == {STABLE}


@pytest.mark.parametrize("evaluation,passed,failing", [
    (GOOD_EVAL, True, []),
    ({**GOOD_EVAL, "recall": 0.7}, False, ["recall"]),
    ({**GOOD_EVAL, "recall_small": None}, False, ["small-face recall"]),
    ({**GOOD_EVAL, "fp_per_100_negatives": 30.0}, False, ["false positives per 100 negatives"]),
    ({"recall": 0.95, "small_recall": 0.9, "fp_per_100": 1.0}, True, []),  # other spellings
    (None, False, ["recall", "small-face recall", "false positives per 100 negatives"]),
])
def test_internal_test_bar(settings, evaluation, passed, failing):
    t = judge_internal_test(BETA, evaluation, settings.rollout, source="manifest")
    assert t.passed is passed
    assert [c.name for c in t.checks if not c.ok] == failing


def test_start_refuses_without_an_evaluation_unless_forced_with_a_reason(store, settings, events):
    with pytest.raises(RolloutError, match="has no evaluation"):
        start_canary(store, BETA, 5, settings=settings, actor="ann")
    with pytest.raises(RolloutError, match="needs a reason"):
        start_canary(store, BETA, 5, settings=settings, actor="ann", force=True)
    assert store.state().canary is None and events.rows == []
    started = start_canary(store, BETA, 5, settings=settings, actor="ann", force=True, reason="urgent fix")
    assert started.forced and store.state().canary.version == BETA
    ev = events.rows[-1]
    assert (ev["kind"], ev["from_version"], ev["to_version"], ev["reason"]) == ("canary_start", STABLE, BETA, "urgent fix")
    assert ev["evidence"]["forced"] is True and ev["evidence"]["percent"] == 5


def test_start_uses_the_manifest_evaluation_and_records_the_bar(store, settings, events):
    with_evaluation(store, BETA, {**GOOD_EVAL, "recall": 0.5})
    with pytest.raises(RolloutError, match=r"recall 0.5 \(needs >= 0.8\)"):
        start_canary(store, BETA, 5, settings=settings, actor="ann")
    with_evaluation(store, BETA)
    s = start_canary(store, BETA, None, settings=settings, actor="ann")
    assert s.canary.percent == settings.rollout.canary_percent and not s.forced
    assert events.rows[-1]["evidence"]["internal_test"]["passed"] is True


def test_the_logged_evaluation_wins_over_the_manifest(store, settings):
    with_evaluation(store, BETA)  # the manifest says good ...
    write_records(settings, [EvaluationRecord(model_version=BETA, dataset="reference", metrics={**GOOD_EVAL, "recall": 0.6})])
    with pytest.raises(RolloutError, match="recall 0.6"):  # ... the latest run in the log says otherwise
        start_canary(store, BETA, 5, settings=settings, actor="ann")
    only_ref = settings.replace(rollout=settings.rollout.__class__(reference_dataset="other-set"))
    with pytest.raises(RolloutError, match="has no evaluation"):
        start_canary(store, BETA, 5, settings=only_ref, actor="ann")


def test_start_refusals(store, settings):
    with_evaluation(store, BETA)
    with_evaluation(store, PREVIOUS)
    with pytest.raises(RolloutError, match="already the current version"):
        start_canary(store, STABLE, 5, settings=settings, actor="ann", force=True, reason="x")
    with pytest.raises(RolloutError, match="percent"):
        start_canary(store, BETA, 0, settings=settings, actor="ann")
    start_canary(store, BETA, 5, settings=settings, actor="ann")
    with pytest.raises(RolloutError, match="canary v1.2.0-beta is running"):
        start_canary(store, PREVIOUS, 5, settings=settings, actor="ann")
    stop_canary(store, actor="ann")
    store.quarantine(BETA, reason="rolled back: 10 failures", actor="guard")
    with pytest.raises(RolloutError, match="quarantined"):
        start_canary(store, BETA, 5, settings=settings, actor="ann")
    start_canary(store, BETA, 5, settings=settings, actor="ann", force=True, reason="file replaced")
    assert not store.is_quarantined(BETA)  # forcing lifts the quarantine, or the router would ignore it


def test_a_corrupt_model_file_never_becomes_a_canary(store, settings):
    with_evaluation(store, BETA)
    f = store.path(BETA) / "face_detection.tflite"
    f.write_bytes(f.read_bytes()[:-4] + b"oops")
    with pytest.raises(ChecksumMismatchError):
        start_canary(store, BETA, 5, settings=settings, actor="ann", force=True, reason="x")


def test_changing_the_percent_keeps_the_start_time(store, settings, events):
    with_evaluation(store, BETA)
    first = start_canary(store, BETA, 5, settings=settings, actor="ann")
    second = start_canary(store, BETA, 20, settings=settings, actor="bob")
    assert second.previous.percent == 5 and second.canary.percent == 20
    assert second.canary.started_at == first.canary.started_at
    assert events.rows[-1]["evidence"]["previous_percent"] == 5


def test_stop_and_status(store, settings, events):
    assert status(store, settings).canary is None and stop_canary(store, actor="ann") is None
    assert events.rows == []  # nothing stopped, nothing recorded
    with_evaluation(store, BETA)
    start_canary(store, BETA, 5, settings=settings, actor="ann")
    st = status(store, settings)
    assert (st.current, st.previous_stable, st.canary.version, st.expected_split) == (STABLE, PREVIOUS, BETA, (95.0, 5.0))
    stopped = stop_canary(store, actor="ann", reason="enough")
    assert stopped.version == BETA and store.state().canary is None
    assert events.rows[-1]["kind"] == "canary_stop" and events.rows[-1]["reason"] == "enough"
