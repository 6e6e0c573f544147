from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from datetime import datetime, timezone

import numpy as np
import pytest

import faceguard.log as log
from faceguard.log import (
    AlertAck, AlertRecord, EvaluationRecord, EventRecord, ImageRecord, ResourceSample, ReviewRecord,
    record_from_json,
)

from .conftest import T0, image

ALL_RECORDS = [
    image(1, shadow_version="v1.0.0-prod", shadow_boxes=[], union_blur=True, flagged=True, flag_reason="canary",
          review_path="review/2024/img.jpg", variant="canary", status="ok"),
    image(2, status="not_an_image", error="bytes are not an image", num_faces=0, boxes=[], width=None, height=None),
    ReviewRecord(ts=T0, image_id="img1", reviewer="ann", model_version="v1", verdict="correct", detection_index=0),
    ReviewRecord(ts=T0, image_id="img1", reviewer="ann", model_version="v1", verdict="missed",
                 box={"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}),
    EventRecord(ts=T0, kind="rollback", actor="guard", from_version="v2", to_version="v1", reason="fp rate",
                evidence={"fp": 3, "n": 100}),
    AlertRecord(ts=T0, rule="latency_mean", version="v2", message="slow", evidence={"mean_ms": 130.5}),
    AlertAck(alert_id="a1", ts=T0, actor="admin"),
    ResourceSample(ts=T0, pid=123, source="app", cpu_percent=12.5, rss_mb=345.25),
    EvaluationRecord(ts=T0, model_version="v1", dataset="val", metrics={"recall": 0.9, "n_images": 10},
                     pr_curve=[[0.9, 0.95, 0.5], [0.8, 0.97, 0.6]]),
]


@pytest.mark.parametrize("record", ALL_RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips_through_json(record) -> None:
    line = record.to_json()
    assert "\n" not in line
    assert type(record).from_json(line) == record
    assert record_from_json(line) == record


def test_defaults_are_fresh_uuid_hex_and_utc_now() -> None:
    a = ReviewRecord(image_id="i", reviewer="r", model_version="v", verdict="correct", detection_index=0)
    b = ReviewRecord(image_id="i", reviewer="r", model_version="v", verdict="correct", detection_index=0)
    assert a.review_id != b.review_id and len(a.review_id) == 32 and int(a.review_id, 16) >= 0
    assert a.ts.tzinfo is not None and a.ts.utcoffset().total_seconds() == 0
    assert abs((datetime.now(timezone.utc) - a.ts).total_seconds()) < 5


def test_numpy_values_from_a_detector_serialise() -> None:
    rec = image(3, boxes=[{"x": np.float32(1.5), "y": np.float64(2), "w": 3, "h": 4, "score": np.float32(0.5)}],
                num_faces=int(np.int64(1)))
    assert record_from_json(rec.to_json()).boxes[0] == {"x": 1.5, "y": 2.0, "w": 3, "h": 4, "score": 0.5}


def test_timestamps_are_normalised_to_utc() -> None:
    from datetime import timedelta

    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert image(ts=local).ts == T0 and image(ts=local).ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("build", "expectation"),
    [
        (lambda: image(variant="canary"), does_not_raise()),
        (lambda: image(variant="blue"), pytest.raises(ValueError, match="variant must be one of.*'blue'")),
        (lambda: image(source="web"), pytest.raises(ValueError, match="source must be one of.*'web'")),
        (lambda: image(num_faces=-1), pytest.raises(ValueError, match="num_faces must be >= 0, got -1")),
        (lambda: image(ts=datetime(2024, 1, 1)), pytest.raises(ValueError, match="timezone-aware")),
        (lambda: ReviewRecord(image_id="i", reviewer="r", model_version="v", verdict="maybe", detection_index=0),
         pytest.raises(ValueError, match="verdict must be one of")),
        (lambda: ReviewRecord(image_id="i", reviewer="r", model_version="v", verdict="missed"),
         pytest.raises(ValueError, match="needs the box")),
        (lambda: ReviewRecord(image_id="i", reviewer="r", model_version="v", verdict="correct"),
         pytest.raises(ValueError, match="needs detection_index")),
        (lambda: EventRecord(kind="explode", actor="a"), pytest.raises(ValueError, match="kind must be one of")),
    ],
)
def test_records_validate_on_construction(build, expectation) -> None:
    with expectation:
        build()


def test_unknown_kind_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown record kind 'nope'.*image"):
        record_from_json('{"kind": "nope"}')


def test_public_api_is_declared_in_all() -> None:
    for name in log.__all__:
        assert hasattr(log, name), name
    for name in ("LogWriter", "ResourceSampler", "ingest", "IngestStats", "ImageRecord", "ReviewRecord",
                 "EventRecord", "AlertRecord", "AlertAck", "ResourceSample", "EvaluationRecord",
                 "write_demo_data", "remove_demo_data", "open_for_write"):
        assert name in log.__all__
