"""Fault injection with the real engine and BlazeFace on real photos, 4 threads sending images.

A version whose model file is corrupt, one that raises on every image and one made slow by an
injected delay: each trips exactly its rule, the rollback happens within the rule's window,
and no request fails while it happens (failed attempts are served by the stable version).
Also: a canary that misses a face cannot leak it while the stable version runs as shadow.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from faceguard import pipeline
from faceguard.detectors import cache as detector_cache
from faceguard.detections import Detections
from faceguard.detectors import FakeDetector
from faceguard.guard import Guard, RollbackAction, Rule
from faceguard.log import queries
from faceguard.pipeline import Engine, Variant
from faceguard.rollout import start_canary
from tests.conftest import ASTRONAUT_FACE

from .conftest import BETA, STABLE, with_evaluation

THREADS = 4


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """48 distinct JPEGs (shifted crops of three photos), so the hash split sends some to each version."""
    import skimage.data

    out = []
    for f in (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee):
        rgb = f()
        for i in range(16):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(rgb[i:, i:])).save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    return out


class Posts:
    def __init__(self):
        self.sent = []

    def __call__(self, url, payload, timeout_s):
        self.sent.append(payload)


def send(engine: Engine, photos: list[bytes], rounds: int = 1):
    """Every photo ``rounds`` times, spread over 4 threads; returns (results, errors)."""
    results, errors = [], []
    lock = threading.Lock()

    def work(k: int) -> None:
        for data in (photos * rounds)[k::THREADS]:
            try:
                r = engine.process(data)
                with lock:
                    results.append(r)
            except Exception as exc:  # noqa: BLE001 - any failure is what the test counts
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    return results, errors


def guarded(settings, **guard_changes):
    """Settings for a fault run; the latency rule is kept off the stable version (see each test)."""
    return settings.replace(webhook_url="http://hooks.invalid/x",
                            guard=dataclasses.replace(settings.guard, **guard_changes))


def engine_with_guard(settings, posts):
    engine = Engine.from_settings(settings, guard=False)
    guard = Guard(engine.store, settings, log=engine.log, post=posts).attach(engine)
    return engine, guard


def log_rows(settings, version):
    return queries.recent_images(settings, limit=10_000, version=version)


def assert_served_by_stable_after(settings, failed_version, rollback_ts):
    rows = log_rows(settings, failed_version)
    late = rows[rows["ts"] > rollback_ts]
    assert len(late) <= THREADS - 1, "only requests already in flight may still meet the failed version"


def test_default_engine_has_the_guard(fg_env):
    with Engine.from_settings(fg_env) as engine:
        assert isinstance(engine.fallback.__self__, Guard) and engine.observers


def test_corrupt_canary_file_trips_consecutive_failures_without_failing_a_request(fg_env, photos):
    # A loaded 2-core machine can push the stable version past 100 ms; this test is about failures.
    settings = guarded(fg_env, max_mean_ms=60_000)
    posts = Posts()
    engine, guard = engine_with_guard(settings, posts)
    with engine:
        with_evaluation(engine.store, BETA)
        start_canary(engine.store, BETA, 50, settings=settings, actor="ann")
        f = engine.store.path(BETA) / "face_detection.tflite"
        f.write_bytes(f.read_bytes()[:-16] + b"corrupted bytes!")  # after the canary started
        results, errors = send(engine, photos)
        assert errors == [] and len(results) == len(photos)
    assert all(r.model_version == STABLE and r.variant is Variant.STABLE for r in results)
    [action] = guard.actions
    assert action.action is RollbackAction.CANARY_STOPPED and action.breach.rule is Rule.CONSECUTIVE_FAILURES
    st = engine.store.state()
    assert st.canary is None and BETA in st.quarantined and engine.store.current() == STABLE

    failures = log_rows(settings, BETA)
    assert set(failures["status"]) == {"model_error"}
    assert 10 <= len(failures) <= 10 + THREADS - 1  # the rule's window, plus requests in flight
    assert failures["error"].str.contains("sha256").all()
    served = log_rows(settings, STABLE)
    fallback = served[served["stage_ms"].map(lambda s: "failed_attempt" in s)]
    assert set(fallback["input_sha256"]) == set(failures["input_sha256"])  # each failed attempt was served
    rb = queries.events(settings, kinds=["rollback"]).iloc[0]
    assert rb["evidence"]["rule"] == "consecutive_failures" and rb["evidence"]["window"]["requests"] == 10
    assert_served_by_stable_after(settings, BETA, rb["ts"])
    alert = queries.alerts(settings).iloc[0]
    assert alert["rule"] == "consecutive_failures" and alert["evidence"]["restored_version"] == STABLE
    assert [p["rule"] for p in posts.sent] == ["consecutive_failures"]


def test_current_version_raising_on_every_image_rolls_back_to_the_previous_stable(fg_env, photos, monkeypatch):
    real_build = detector_cache.build_detector

    def raising(image):
        raise RuntimeError("injected: tensor shape mismatch")

    monkeypatch.setattr(detector_cache, "build_detector",
                        lambda m, b: FakeDetector(raising) if m.model_version == BETA else real_build(m, b))
    settings = guarded(fg_env, max_mean_ms=60_000)
    engine, guard = engine_with_guard(settings, Posts())
    with engine:
        engine.store.use(BETA, actor="ann", reason="new release")  # switched straight to current
        results, errors = send(engine, photos)
    assert errors == [] and all(r.model_version == STABLE for r in results)
    [action] = guard.actions
    assert (action.action, action.breach.rule, action.restored_version) == (
        RollbackAction.ROLLED_BACK, Rule.CONSECUTIVE_FAILURES, STABLE)
    assert engine.store.current() == STABLE and engine.store.is_quarantined(BETA)
    failures = log_rows(settings, BETA)
    assert set(failures["status"]) == {"detector_error"} and 10 <= len(failures) <= 10 + THREADS - 1
    assert failures["error"].str.contains("injected").all()
    rb = queries.events(settings, kinds=["rollback"]).iloc[0]
    assert (rb["from_version"], rb["to_version"]) == (BETA, STABLE)
    assert_served_by_stable_after(settings, BETA, rb["ts"])
    assert queries.current_version_at(settings) == STABLE


def test_slow_canary_trips_the_latency_rule_with_its_manifest_budget(fg_env, photos, monkeypatch):
    real_build = detector_cache.build_detector

    class Slow:
        def __init__(self, inner):
            self.inner = inner

        def detect(self, image):
            time.sleep(0.4)  # the injected fault: 400 ms per image
            return self.inner.detect(image)

        def close(self):
            self.inner.close()

    monkeypatch.setattr(detector_cache, "build_detector",
                        lambda m, b: Slow(real_build(m, b)) if m.model_version == BETA else real_build(m, b))
    # BETA's own budget (200 ms) judges it; the global 100 ms is lifted so only BETA is at stake.
    settings = guarded(fg_env, max_mean_ms=60_000, min_latency_samples=5)
    posts = Posts()
    engine, guard = engine_with_guard(settings, posts)
    with engine:
        store = engine.store
        store.write_manifest(dataclasses.replace(store.manifest(BETA), latency_budget_ms=200.0))
        with_evaluation(store, BETA)
        start_canary(store, BETA, 50, settings=settings, actor="ann")
        results, errors = send(engine, photos)
    assert errors == []
    [action] = guard.actions
    assert action.action is RollbackAction.CANARY_STOPPED and action.breach.rule is Rule.MEAN_LATENCY
    assert action.breach.threshold == 200.0 and action.breach.figure > 400.0
    assert 5 <= action.breach.window["samples"] <= 5 + THREADS - 1
    slow = [r for r in results if r.model_version == BETA]
    assert 5 <= len(slow) <= 5 + THREADS - 1 and all(r.total_ms > 400 for r in slow)
    assert store.state().canary is None and store.is_quarantined(BETA)
    rows = log_rows(settings, BETA)
    assert set(rows["status"]) == {"ok"}  # slow, never failed: only the latency rule could trip
    rb = queries.events(settings, kinds=["rollback"]).iloc[0]
    assert rb["evidence"]["rule"] == "mean_latency"
    assert_served_by_stable_after(settings, BETA, rb["ts"])


def sharpness(rgb: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


@pytest.mark.parametrize("union_blur", [True, False])
def test_a_canary_that_misses_a_face_cannot_leak_it(fg_env, astronaut, astronaut_jpeg, monkeypatch, union_blur):
    real_build = detector_cache.build_detector
    monkeypatch.setattr(detector_cache, "build_detector",
                        lambda m, b: FakeDetector(Detections.empty()) if m.model_version == BETA else real_build(m, b))
    settings = fg_env.replace(rollout=dataclasses.replace(fg_env.rollout, shadow_rate=1.0, union_blur=union_blur))
    engine, guard = engine_with_guard(settings, Posts())
    with engine:
        with_evaluation(engine.store, BETA)
        start_canary(engine.store, BETA, 100, settings=settings, actor="ann")
        r = engine.process(astronaut_jpeg, keep_array=True)
        stats = guard.stats(BETA)
    assert (r.model_version, r.variant, r.shadow_version) == (BETA, Variant.CANARY, STABLE)
    assert len(r.detections) == 0 and len(r.shadow_detections) == 1
    face_sharpness = sharpness(r.anonymized, ASTRONAUT_FACE) / sharpness(astronaut, ASTRONAUT_FACE)
    if union_blur:
        assert len(r.blurred) == 1 and face_sharpness < 0.05  # the stable version's box was blurred
    else:
        assert len(r.blurred) == 0 and face_sharpness > 0.5  # off: the user gets exactly the canary's result
    assert r.flagged and "shadow_disagreement" in r.flag_reason
    row = log_rows(settings, BETA).iloc[0]
    assert row["union_blur"] is np.bool_(union_blur) or bool(row["union_blur"]) is union_blur
    assert row["shadow_version"] == STABLE and bool(row["shadow_disagree"]) and len(row["shadow_boxes"]) == 1
    assert (stats.fp_source.value, stats.fp_count, stats.fp_images) == ("shadow", 1, 1)
