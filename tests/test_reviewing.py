"""Review actions: the queue, blurred previews, logged reveals, verdicts into the log."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard import reviewing
from faceguard.config import Settings
from faceguard.log import queries
from faceguard.pipeline import Engine
from faceguard.reviewing import ReviewError
from tests.conftest import ASTRONAUT_FACE


def sharpness(rgb: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    g = rgb[y1:y2, x1:x2].astype(np.float64).mean(axis=2)
    lap = g[1:-1, 1:-1] * -4 + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


@pytest.fixture
def kept(fg_env, monkeypatch, astronaut_jpeg) -> tuple[Settings, str]:
    """The astronaut processed with review sampling at 100 %: flagged, kept, in the log."""
    monkeypatch.setenv("FACEGUARD_REVIEW_SAMPLE_RATE", "1.0")
    settings = Settings.load()
    with Engine.from_settings(settings, source="app") as engine:
        result = engine.process(astronaut_jpeg, name="astronaut.jpg")
    assert result.review_path
    return settings, result.image_id


def test_next_for_review_returns_the_kept_image_with_its_boxes(kept):
    settings, image_id = kept
    item = reviewing.next_for_review(settings, "ann")
    assert item is not None and item.image_id == image_id
    assert item.n_faces == 1 and "sample" in item.reasons and item.queue_size == 1
    assert reviewing.next_for_review(settings, "ann", skip=[image_id]) is None


def test_entries_whose_image_is_gone_are_passed_over(kept):
    settings, image_id = kept
    item = reviewing.get_item(settings, image_id)
    reviewing.kept_image_path(settings, item).unlink()  # retention purged it
    assert reviewing.next_for_review(settings, "ann") is None
    with pytest.raises(ReviewError, match="retention"):
        reviewing.blurred_preview(settings, image_id)


def test_preview_is_blurred_all_over_with_numbered_boxes(kept, astronaut):
    settings, image_id = kept
    preview = reviewing.blurred_preview(settings, image_id, show_boxes=False)
    assert preview.shape == astronaut.shape
    assert sharpness(preview, ASTRONAUT_FACE) < 0.02 * sharpness(astronaut, ASTRONAUT_FACE)
    assert sharpness(preview, (300, 300, 500, 500)) < 0.05 * sharpness(astronaut, (300, 300, 500, 500))
    boxed = reviewing.blurred_preview(settings, image_id, extra_boxes=[{"x": 10, "y": 10, "w": 40, "h": 40}])
    green = (boxed[..., 1] > 200) & (boxed[..., 0] < 60) & (boxed[..., 2] < 60)
    orange = (boxed[..., 0] > 230) & (np.abs(boxed[..., 1].astype(int) - 140) < 20) & (boxed[..., 2] < 40)
    assert green.sum() > 100 and orange[5:60, 5:60].sum() > 50


def test_reveal_returns_the_sharp_face_and_logs_who_and_when(kept, astronaut):
    settings, image_id = kept
    crop = reviewing.reveal_face(settings, image_id, 0, "ann")
    assert crop.shape[0] > 80 and crop.shape[1] > 80
    assert sharpness(crop, (0, 0, crop.shape[1], crop.shape[0])) > 0.3 * sharpness(astronaut, ASTRONAUT_FACE)
    ev = queries.events(settings, kinds=["reveal"])
    assert len(ev) == 1 and ev.iloc[0]["actor"] == "ann"
    assert ev.iloc[0]["evidence"]["image_id"] == image_id and ev.iloc[0]["evidence"]["detection_index"] == 0


@pytest.mark.parametrize("index", [-1, 1, 5])
def test_reveal_refuses_faces_that_do_not_exist_and_logs_nothing(kept, index):
    settings, image_id = kept
    with pytest.raises(ReviewError, match="no face number"):
        reviewing.reveal_face(settings, image_id, index, "ann")
    assert queries.events(settings, kinds=["reveal"]).empty


def test_reveal_needs_a_reviewer_name(kept):
    settings, image_id = kept
    with pytest.raises(ReviewError, match="reviewer name"):
        reviewing.reveal_region(settings, image_id, {"x": 1, "y": 1, "w": 20, "h": 20}, "  ")


def test_verdicts_and_missed_faces_land_in_the_log(kept):
    settings, image_id = kept
    records = reviewing.submit_verdicts(settings, image_id, "ann", {0: "false_positive"},
                                        [{"x": 300, "y": 40, "w": 50, "h": 60}])
    assert [r.verdict for r in records] == ["false_positive", "missed"]
    rows = queries.reviews_for(settings, image_id)
    assert sorted(rows["verdict"]) == ["false_positive", "missed"]
    assert set(rows["reviewer"]) == {"ann"} and set(rows["model_version"]) == {"v1.1.0-prod"}
    assert rows[rows["verdict"] == "missed"].iloc[0]["box"] == {"x": 300.0, "y": 40.0, "w": 50.0, "h": 60.0}
    # ann is done with it; another reviewer still sees it
    assert reviewing.next_for_review(settings, "ann") is None
    assert reviewing.next_for_review(settings, "bob").image_id == image_id


@pytest.mark.parametrize(
    "reviewer, verdicts, missed, message",
    [
        ("ann", {}, [], "still need a verdict"),
        ("ann", {0: "correct", 1: "correct"}, [], "no face number 2"),
        ("ann", {0: "maybe"}, [], "must be one of"),
        ("", {0: "correct"}, [], "reviewer name"),
    ],
)
def test_incomplete_or_invalid_verdicts_are_refused(kept, reviewer, verdicts, missed, message):
    settings, image_id = kept
    with pytest.raises(ReviewError, match=message):
        reviewing.submit_verdicts(settings, image_id, reviewer, verdicts, missed)
    assert queries.reviews_for(settings, image_id).empty


def test_a_missed_box_needs_a_size(kept):
    settings, image_id = kept
    with pytest.raises(ValueError, match="positive width"):
        reviewing.submit_verdicts(settings, image_id, "ann", {0: "correct"}, [{"x": 1, "y": 1, "w": 0, "h": 5}])


def test_unknown_image_is_refused(fg_env):
    with pytest.raises(ReviewError, match="not in the processing log"):
        reviewing.get_item(fg_env, "f" * 32)


def test_revealing_a_marked_region_is_logged_too(kept):
    settings, image_id = kept
    crop = reviewing.reveal_region(settings, image_id, {"x": 300, "y": 300, "w": 100, "h": 50}, "cy")
    assert crop.shape == (80, 160, 3)  # the box plus 30 % on each side
    ev = queries.events(settings, kinds=["reveal"]).iloc[0]
    assert ev["actor"] == "cy" and ev["evidence"]["detection_index"] is None
    assert ev["evidence"]["box"] == {"x": 300.0, "y": 300.0, "w": 100.0, "h": 50.0}
