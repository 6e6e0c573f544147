"""Metric math on small hand-built logs, checked against numbers computed here from plain lists."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from faceguard.log import AlertAck, AlertRecord, EvaluationRecord, EventRecord, LogWriter, queries

from .conftest import T0, image, review

V1, V2 = "v1.1.0-prod", "v1.2.0-beta"


def _log(settings, records) -> None:
    with LogWriter(settings, source="cli", autoingest=False) as writer:
        for r in records:
            writer.write(r)


# version, minutes after T0, status, ms, faces, flagged, variant
IMAGES = [
    (V1, 1, "ok", 10.0, 2, False, "stable"),
    (V1, 2, "ok", 20.0, 1, True, "stable"),
    (V1, 3, "ok", 30.0, 0, False, "stable"),
    (V1, 4, "detector_error", 2.0, 0, False, "stable"),
    (V1, 65, "ok", 50.0, 3, True, "stable"),
    (V2, 5, "ok", 15.0, 1, True, "canary"),
    (V2, 6, "ok", 45.0, 2, True, "canary"),
    (V2, 66, "not_an_image", 1.0, 0, False, "canary"),
]
# image index -> [(verdict, detection index)]
REVIEWS = {
    0: [("correct", 0), ("false_positive", 1), ("missed", None)],
    4: [("correct", 0), ("correct", 1), ("correct", 2), ("missed", None), ("missed", None)],
    5: [("false_positive", 0)],
    6: [("correct", 0), ("correct", 1)],
}


@pytest.fixture
def logged(settings):
    records = []
    for i, (version, minutes, status, ms, faces, flagged, variant) in enumerate(IMAGES):
        records.append(image(i, minutes=minutes, version=version, status=status, processing_ms=ms, num_faces=faces,
                             flagged=flagged, variant=variant, error=None if status == "ok" else "boom"))
    for i, verdicts in REVIEWS.items():
        img = records[i]
        for verdict, index in verdicts:
            records.append(review(img.image_id, verdict, index=index, version=img.model_version))
    _log(settings, records)
    return settings


def _expected(version: str, rows: list[tuple], review_items: list[tuple]) -> dict:
    ok_ms = [r[3] for r in rows if r[2] == "ok"]
    confirmed = sum(1 for v, _ in review_items if v == "correct")
    fps = sum(1 for v, _ in review_items if v == "false_positive")
    missed = sum(1 for v, _ in review_items if v == "missed")
    return {
        "images": len(rows), "faces": sum(r[4] for r in rows), "errors": sum(r[2] != "ok" for r in rows),
        "mean_ms": float(np.mean(ok_ms)), "p50_ms": float(np.percentile(ok_ms, 50)),
        "p95_ms": float(np.percentile(ok_ms, 95)), "flagged": sum(r[5] for r in rows),
        "confirmed": confirmed, "false_positives": fps, "missed": missed,
        "precision": confirmed / (confirmed + fps) if confirmed + fps else float("nan"),
        "recall": confirmed / (confirmed + missed) if confirmed + missed else float("nan"),
    }


def test_whole_range_metrics_per_version_match_plain_arithmetic(logged) -> None:
    df = queries.metrics_by_version(logged, bucket=None).set_index("model_version")
    assert list(df.index) == [V1, V2]
    reviewed = {V1: [0, 4], V2: [5, 6]}
    for version in (V1, V2):
        rows = [r for r in IMAGES if r[0] == version]
        items = [it for i in reviewed[version] for it in REVIEWS[i]]
        exp = _expected(version, rows, items)
        got = df.loc[version]
        for key, value in exp.items():
            assert got[key] == pytest.approx(value, nan_ok=True), (version, key)
        assert got["error_rate"] == pytest.approx(exp["errors"] / exp["images"])
        assert got["flagged_rate"] == pytest.approx(exp["flagged"] / exp["images"])
        assert got["reviewed_images"] == 2
        assert got["fp_per_100"] == pytest.approx(100 * exp["false_positives"] / 2)
        assert got["n_precision"] == exp["confirmed"] + exp["false_positives"]
        assert got["n_recall"] == exp["confirmed"] + exp["missed"]
    assert df["share"].sum() == pytest.approx(1.0)
    assert df.loc[V1, "share"] == pytest.approx(5 / 8)


def test_hourly_buckets_split_traffic_and_share_per_hour(logged) -> None:
    df = queries.metrics_by_version(logged, bucket="hour")
    assert [(b.hour, v, n) for b, v, n in zip(df["bucket"], df["model_version"], df["images"])] == [
        (12, V1, 4), (12, V2, 2), (13, V1, 1), (13, V2, 1)]
    assert str(df["bucket"].dt.tz) == "UTC"
    first = df[(df["bucket"].dt.hour == 12) & (df["model_version"] == V1)].iloc[0]
    assert first["p95_ms"] == pytest.approx(np.percentile([10, 20, 30], 95))
    assert first["share"] == pytest.approx(4 / 6)
    v2_late = df[(df["bucket"].dt.hour == 13) & (df["model_version"] == V2)].iloc[0]
    assert v2_late["error_rate"] == 1.0 and np.isnan(v2_late["mean_ms"]) and np.isnan(v2_late["precision"])


def test_since_until_and_versions_filter(logged) -> None:
    df = queries.metrics_by_version(logged, bucket=None, since=T0 + timedelta(minutes=5),
                                    until=T0 + timedelta(minutes=66), versions=[V2])
    assert list(df["model_version"]) == [V2] and int(df["images"].iloc[0]) == 2


def test_a_later_review_of_an_image_replaces_the_earlier_one(settings) -> None:
    img = image(1)
    _log(settings, [img, review(img.image_id, "false_positive", reviewer="ann", minutes=1),
                    review(img.image_id, "correct", reviewer="bob", minutes=5)])
    row = queries.metrics_by_version(settings, bucket=None).iloc[0]
    assert (row["confirmed"], row["false_positives"], row["precision"]) == (1, 0, 1.0)


def test_bad_bucket_names_the_allowed_ones(settings) -> None:
    with pytest.raises(ValueError, match="bucket must be one of minute, hour, day, week or None, got 'month'"):
        queries.metrics_by_version(settings, bucket="month")


# -- windows ------------------------------------------------------------------------------------
@pytest.fixture
def windowed(settings):
    """V1: 10 images a minute apart; 7 and 9 failed; 6 reviewed FP, 2 reviewed correct; 5, 6 shadowed."""
    statuses = ["ok"] * 7 + ["detector_error", "ok", "detector_error"]
    ms = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 5.0, 100.0]
    recs = [image(i, minutes=i, status=statuses[i], processing_ms=ms[i]) for i in range(10)]
    recs[5] = image(5, minutes=5, processing_ms=60.0, shadow_version="v1.0.0-prod",
                    shadow_boxes=[{"x": 10.0, "y": 10.0, "w": 20.0, "h": 20.0, "score": 0.8}])  # agrees
    recs[6] = image(6, minutes=6, processing_ms=70.0, shadow_version="v1.0.0-prod", shadow_boxes=[])  # disagrees
    recs.append(review(recs[6].image_id, "false_positive"))
    recs.append(review(recs[2].image_id, "correct"))
    _log(settings, recs)
    return settings, recs


def test_window_of_last_n_images(windowed) -> None:
    settings, recs = windowed
    now = T0 + timedelta(minutes=30)
    w = queries.window_stats(settings, version=V1, last_n=5, now=now)  # images 5..9
    ok_ms = [60.0, 70.0, 5.0]
    assert (w.n, w.errors, w.consecutive_failures) == (5, 2, 1)
    assert w.mean_ms == pytest.approx(np.mean(ok_ms)) and w.p95_ms == pytest.approx(np.percentile(ok_ms, 95))
    assert (w.reviewed_fp, w.reviewed_total, w.fp_rate) == (1, 1, 1.0)
    assert (w.shadow_disagreements, w.shadow_total) == (1, 2)
    assert w.first_ts == T0 + timedelta(minutes=5) and w.last_ts == T0 + timedelta(minutes=9)


def test_window_of_last_minutes_with_an_injected_now(windowed) -> None:
    settings, _ = windowed
    w = queries.window_stats(settings, version=V1, last_minutes=3.5, now=T0 + timedelta(minutes=7))
    assert w.n == 4 and w.first_ts == T0 + timedelta(minutes=4)  # images 4..7 (8, 9 are after now)
    assert w.consecutive_failures == 1 and w.errors == 1
    both = queries.window_stats(settings, version=V1, last_n=2, last_minutes=60, now=T0 + timedelta(minutes=30))
    assert both.n == 2
    empty = queries.window_stats(settings, version=V1, last_minutes=5, now=T0 + timedelta(days=1))
    assert (empty.n, empty.mean_ms, empty.first_ts, empty.error_rate) == (0, None, None, None)


def test_window_of_reviewed_images_only(windowed) -> None:
    settings, _ = windowed
    w = queries.window_stats(settings, version=V1, last_n=100, reviewed_only=True, now=T0 + timedelta(hours=1))
    assert (w.n, w.reviewed_total, w.reviewed_fp, w.reviewed_confirmed) == (2, 2, 1, 1)


def test_consecutive_failures_count_the_trailing_run(settings) -> None:
    statuses = ["ok", "detector_error", "ok"] + ["detector_error"] * 4
    _log(settings, [image(i, minutes=i, status=s) for i, s in enumerate(statuses)])
    now = T0 + timedelta(hours=1)
    assert queries.window_stats(settings, version=V1, now=now).consecutive_failures == 4
    assert queries.window_stats(settings, version=V1, last_n=2, now=now).consecutive_failures == 2


# -- other reads --------------------------------------------------------------------------------
def test_a_missing_database_gives_empty_typed_results(settings) -> None:
    assert not settings.db_path.exists()
    df = queries.metrics_by_version(settings)
    assert df.empty and list(df.columns) == queries.METRIC_COLUMNS
    assert queries.window_stats(settings, version=V1).n == 0
    assert queries.recent_images(settings, limit=5).empty and "model_version" in queries.recent_images(settings).columns
    assert queries.current_version_at(settings, T0) is None
    assert queries.latency_samples(settings, V1).shape == (0,)
    assert queries.today_volume(settings, now=T0).images == 0
    status = queries.log_status(settings)
    assert not status.exists and status.rows == {}
    assert not settings.db_path.exists()  # reading never creates it


def test_images_reviews_queue_and_lookup(settings) -> None:
    a = image(1, minutes=1, flagged=True, flag_reason="canary", review_path="review/a.jpg", variant="canary")
    b = image(2, minutes=2, flagged=True, flag_reason="sampled", review_path="review/b.jpg")
    c = image(3, minutes=3, flagged=True, review_path=None)  # no image kept: cannot be reviewed
    _log(settings, [a, b, c, review(b.image_id, "correct", reviewer="ann")])
    assert list(queries.review_queue(settings, limit=10)["image_id"]) == [a.image_id]
    assert list(queries.review_queue(settings, limit=10, reviewer="bob")["image_id"]) == [b.image_id, a.image_id]
    found = queries.image_by_hash(settings, a.input_sha256)
    assert list(found["model_version"]) == [V1] and found["boxes"].iloc[0][0]["score"] == 0.9
    assert list(queries.image_by_hash(settings, b.image_id)["image_id"]) == [b.image_id]
    assert list(queries.recent_images(settings, limit=2)["image_id"]) == [c.image_id, b.image_id]
    assert list(queries.recent_images(settings, limit=5, variant="canary")["image_id"]) == [a.image_id]
    rv = queries.reviews_for(settings, b.image_id)
    assert list(rv["verdict"]) == ["correct"] and list(rv["reviewer"]) == ["ann"]


def test_events_and_the_version_current_at_a_time(settings) -> None:
    def at(m):
        return T0 + timedelta(minutes=m)
    _log(settings, [
        EventRecord(ts=at(0), kind="switch", actor="admin", to_version="v1.0.0-prod", reason="install"),
        EventRecord(ts=at(10), kind="canary_start", actor="admin", from_version="v1.0.0-prod", to_version=V2),
        EventRecord(ts=at(20), kind="promote", actor="admin", from_version="v1.0.0-prod", to_version=V2,
                    evidence={"recall": 0.96}),
        EventRecord(ts=at(30), kind="rollback", actor="guard", from_version=V2, to_version="v1.0.0-prod",
                    reason="fp rate", evidence={"fp": 3}),
    ])
    assert queries.current_version_at(settings, at(-1)) is None
    assert queries.current_version_at(settings, at(15)) == "v1.0.0-prod"  # a canary does not change stable
    assert queries.current_version_at(settings, at(25)) == V2
    assert queries.current_version_at(settings, at(35)) == "v1.0.0-prod"
    ev = queries.events(settings, kinds=["rollback", "promote"])
    assert list(ev["kind"]) == ["rollback", "promote"] and ev["evidence"].iloc[0] == {"fp": 3}
    assert len(queries.events(settings, limit=1)) == 1


def test_alerts_are_open_until_acknowledged(settings) -> None:
    a1 = AlertRecord(ts=T0, rule="latency_mean", version=V2, message="slow", evidence={"mean_ms": 130})
    a2 = AlertRecord(ts=T0 + timedelta(minutes=1), rule="fp_rate", version=V2, message="fps")
    _log(settings, [a1, a2, AlertAck(alert_id=a1.alert_id, ts=T0 + timedelta(minutes=2), actor="admin"),
                    AlertAck(alert_id=a1.alert_id, ts=T0 + timedelta(minutes=3), actor="bob")])
    all_alerts = queries.alerts(settings)
    assert list(all_alerts["alert_id"]) == [a2.alert_id, a1.alert_id]
    assert list(all_alerts["open"]) == [True, False] and all_alerts["acked_by"].iloc[1] == "admin"
    assert list(queries.alerts(settings, open_only=True)["alert_id"]) == [a2.alert_id]


def test_evaluations_latency_samples_variants_and_volume(settings) -> None:
    old = EvaluationRecord(ts=T0, model_version=V1, dataset="val", metrics={"recall": 0.9})
    new = EvaluationRecord(ts=T0 + timedelta(hours=1), model_version=V1, dataset="val", metrics={"recall": 0.95},
                           pr_curve=[[0.95, 0.9, 0.5]])
    _log(settings, [old, new, image(1, minutes=1, processing_ms=11.0), image(2, minutes=2, processing_ms=12.0),
                    image(3, minutes=3, processing_ms=99.0, status="detector_error"),
                    image(4, minutes=4, version=V2, variant="canary")])
    ev = queries.evaluations(settings, version=V1)
    assert list(ev["eval_id"]) == [new.eval_id, old.eval_id] and ev["metrics"].iloc[0]["recall"] == 0.95
    assert ev["pr_curve"].iloc[0] == [[0.95, 0.9, 0.5]]
    assert queries.latency_samples(settings, V1, T0, T0 + timedelta(hours=1)).tolist() == [11.0, 12.0]
    vc = queries.variant_counts(settings, T0, T0 + timedelta(hours=1))
    assert {(v, var): n for v, var, n in zip(vc["model_version"], vc["variant"], vc["images"])} == {
        (V1, "stable"): 3, (V2, "canary"): 1}
    vol = queries.today_volume(settings, now=T0 + timedelta(hours=3))
    assert (vol.images, vol.errors, vol.faces) == (4, 1, 4)


def test_log_status_counts_rows_and_pending_spool(settings) -> None:
    _log(settings, [image(1), image(2)])
    writer = LogWriter(settings, source="cli", autoingest=False)
    writer.write(image(3))
    status = queries.log_status(settings)
    assert status.exists and status.schema_version == status.latest_schema_version
    assert status.rows["images"] == 2 and status.spool_files == 1
    assert status.pending_spool_bytes == writer.spool_path.stat().st_size
    writer.close()
    assert queries.log_status(settings).pending_spool_bytes == 0
