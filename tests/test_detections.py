from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from faceguard.detections import Detections, iou_matrix, nms_indices


@pytest.mark.parametrize(
    "xyxy, conf, expectation",
    [
        ([[0, 0, 10, 10]], [0.5], does_not_raise()),
        ([], [], does_not_raise()),
        ([[0, 0, 10, 10]], [0.5, 0.6], pytest.raises(ValueError, match="one value per box")),
        ([[10, 0, 0, 10]], [0.5], pytest.raises(ValueError, match="x1 <= x2")),
        ([[0, 0, 10, 10]], [1.5], pytest.raises(ValueError, match=r"\[0, 1\]")),
        ([[0, 0, np.nan, 10]], [0.5], pytest.raises(ValueError, match="finite")),
    ],
)
def test_validation(xyxy, conf, expectation):
    with expectation:
        d = Detections(xyxy=np.array(xyxy, dtype=float).reshape(-1, 4), confidence=np.array(conf))
        assert d.xyxy.dtype == np.float32


def test_boolean_indexing_and_geometry():
    d = Detections.from_xywh([[0, 0, 10, 20], [5, 5, 4, 4]], [0.9, 0.2])
    strong = d[d.confidence > 0.5]
    assert len(strong) == 1 and strong.xyxy.tolist() == [[0, 0, 10, 20]]
    assert np.allclose(d.size, [np.sqrt(200), 4])
    grown = d.expanded(0.5)
    assert grown.xyxy[0].tolist() == [-5, -10, 15, 30]
    assert grown.clipped(12, 12).xyxy[0].tolist() == [0, 0, 12, 12]


def test_scaled_maps_crop_boxes_back():
    d = Detections.from_xywh([[10, 10, 10, 10]], [0.5])
    back = d.scaled(2.0, dx=100, dy=50)
    assert back.xyxy[0].tolist() == [120, 70, 140, 90]


def test_iou_and_nms():
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    iou = iou_matrix(a, a)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[0, 2] == 0
    keep = nms_indices(a, np.array([0.9, 0.8, 0.7]), 0.3)
    assert keep.tolist() == [0, 2]
    keep = nms_indices(a, np.array([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 1, 2]


def test_union_keeps_each_face_once_with_the_higher_score():
    a = Detections.from_xywh([[0, 0, 10, 10]], [0.6])
    b = Detections.from_xywh([[1, 0, 10, 10], [50, 50, 10, 10]], [0.9, 0.5])
    u = a.union(b)
    assert len(u) == 2
    assert sorted(u.confidence.tolist()) == pytest.approx([0.5, 0.9])


def test_records_round_trip():
    d = Detections.from_xywh([[1.5, 2, 3, 4]], [0.75])
    again = Detections.from_records(d.to_records())
    assert np.allclose(again.xyxy, d.xyxy) and np.allclose(again.confidence, d.confidence)


boxes = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(1, 100), st.floats(1, 100), st.floats(0, 1)),
    max_size=30,
)


@given(boxes)
def test_nms_output_has_no_overlapping_pair(rows):
    d = Detections.from_xywh([r[:4] for r in rows], [r[4] for r in rows]) if rows else Detections.empty()
    kept = d.with_nms(0.3)
    assert len(kept) <= len(d)
    iou = iou_matrix(kept.xyxy, kept.xyxy)
    np.fill_diagonal(iou, 0)
    assert (iou < 0.3).all()
