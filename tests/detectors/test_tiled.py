"""Tiled inference: coverage, cut-face rejection, agreement between tiles, skipped work."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from faceguard.detections import Detections
from faceguard.detectors.base import FakeDetector
from faceguard.detectors.tiled import TiledDetector, TilingOptions, border_keep, count_votes, tile_grid, tile_origins


@given(length=st.integers(1, 3000), tile=st.integers(32, 800), overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_tile_origins_cover_the_whole_length_with_the_overlap(length, tile, overlap):
    starts = tile_origins(length, tile, overlap)
    assert starts == sorted(set(starts)) and starts[0] == 0
    assert all(0 <= s and (s + tile <= length or length <= tile) for s in starts)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()
    # neighbours share at least the requested overlap, so a face that small is whole in one tile
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= int(tile * overlap)


def test_tile_grid_clips_tiles_to_the_image():
    grid = tile_grid(500, 300, 256, 0.5)
    assert (0, 0, 256, 256) in grid and all(x + w <= 500 and y + h <= 300 for x, y, w, h in grid)


@pytest.mark.parametrize(
    "box, tile, keep",
    [
        ([10, 10, 50, 50], (100, 100, 200, 200), True),  # well inside
        ([0, 10, 40, 50], (100, 100, 200, 200), False),  # touches the inner left edge: a cut face
        ([160, 10, 199, 50], (100, 100, 200, 200), False),  # touches the inner right edge
        ([0, 0, 40, 40], (0, 0, 200, 200), True),  # touches the image's own corner: a real edge
        ([160, 160, 200, 200], (300, 200, 200, 200), True),  # bottom-right tile of a 500x400 image
    ],
)
def test_border_rejection(box, tile, keep):
    assert border_keep(np.array([box], np.float32), tile, 500, 400, 2).tolist() == [keep]


def test_votes_count_distinct_tiles():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 1, 10, 11], [50, 50, 60, 60]], np.float32)
    tiles = np.array([0, 1, 1, 2])
    assert count_votes(boxes, tiles, 0.3).tolist() == [2, 2, 2, 1]


def _face_in_tiles(face_xyxy, score: float = 0.9, *, max_side: int = 10**6) -> FakeDetector:
    """A fake inner detector that 'sees' one face wherever it lies wholly inside a crop of at
    most ``max_side`` px (the crop's origin is read from the coordinates painted into
    ``_coordinate_image``); larger crops (the whole frame) see it too small to find."""
    return FakeDetector(lambda crop: _locate(crop, face_xyxy, score) if max(crop.shape[:2]) <= max_side else Detections.empty())


def _locate(crop, face_xyxy, score):
    # the image carries its own coordinates in channel 0/1 (x, y modulo 256) and channel 2 (x // 256, y // 256)
    x0 = int(crop[0, 0, 0]) + 256 * int(crop[0, 0, 2] % 16)
    y0 = int(crop[0, 0, 1]) + 256 * int(crop[0, 0, 2] // 16)
    h, w = crop.shape[:2]
    x1, y1, x2, y2 = face_xyxy
    if x1 >= x0 and y1 >= y0 and x2 <= x0 + w and y2 <= y0 + h:
        return Detections(xyxy=np.array([[x1 - x0, y1 - y0, x2 - x0, y2 - y0]], np.float32), confidence=np.array([score]))
    return Detections.empty()


def _coordinate_image(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx % 256, yy % 256, (xx // 256) + 16 * (yy // 256)], axis=-1).astype(np.uint8)


def test_a_face_seen_by_several_tiles_comes_out_once_in_image_coordinates():
    det = TiledDetector(_face_in_tiles((300, 200, 330, 230)), TilingOptions(tile=192, overlap=0.5, min_votes=2))
    found = det.detect(_coordinate_image(800, 600))
    assert found.xyxy.tolist() == [[300, 200, 330, 230]]


def test_a_face_only_one_tile_sees_needs_a_high_score_when_votes_are_required():
    # a face in the image corner lies inside exactly one 400 px tile (overlap 0) and not the whole frame
    face = (10, 10, 40, 40)
    opts = dict(tile=400, overlap=0.0, min_image_side=100)
    inner = _face_in_tiles(face, score=0.7, max_side=400)
    assert len(TiledDetector(inner, TilingOptions(**opts, min_votes=1)).detect(_coordinate_image(800, 800))) == 1
    assert len(TiledDetector(inner, TilingOptions(**opts, min_votes=2)).detect(_coordinate_image(800, 800))) == 0
    lone = TilingOptions(**opts, min_votes=2, solo_confidence=0.6)
    assert len(TiledDetector(inner, lone).detect(_coordinate_image(800, 800))) == 1


def test_flat_tiles_and_tiles_inside_a_found_face_are_skipped():
    img = np.full((800, 800, 3), 90, np.uint8)
    img[:400, :400] = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)  # texture top-left
    det = TiledDetector(FakeDetector(), TilingOptions(tile=400, overlap=0.0, flat_std=5.0))
    assert det.tiles_for(img, Detections.empty()) == [(0, 0, 400, 400)]
    big_face = Detections(xyxy=np.array([[0, 0, 420, 420]], np.float32), confidence=np.array([0.9]))
    assert det.tiles_for(img, big_face) == []


def test_small_images_use_the_whole_frame_only():
    inner = FakeDetector()
    TiledDetector(inner, TilingOptions(tile=192, min_image_side=400)).detect(np.zeros((300, 390, 3), np.uint8))
    assert inner.calls == 1


def test_old_single_level_manifests_still_load():
    opts = TilingOptions.from_dict({"tile": 384, "overlap": 0.25, "min_image_side": 400, "border_margin": 2,
                                    "tile_min_confidence": 0.5, "nms_iou": 0.3})
    assert opts.levels == (384,)
    assert TilingOptions.from_dict({"tiles": [384, 192]}).levels == (384, 192)


def test_parallel_tiles_give_the_same_result():
    img = _coordinate_image(900, 700)
    inner = _face_in_tiles((500, 300, 540, 340))
    one = TiledDetector(inner, TilingOptions(tiles=(384, 192), overlap=0.5)).detect(img)
    det = TiledDetector(inner, TilingOptions(tiles=(384, 192), overlap=0.5, workers=2))
    two = det.detect(img)
    det.close()
    assert one.xyxy.tolist() == two.xyxy.tolist() == [[500, 300, 540, 340]]


@pytest.mark.parametrize(
    ("tiling", "message"),
    [({"tile": 8}, "tile sides must be >= 32"), ({"bogus": 1}, "unexpected keyword argument 'bogus'")],
)
def test_build_detector_turns_a_bad_tiling_option_into_a_manifest_error(tiling, message):
    import dataclasses

    from faceguard.detectors import build_detector
    from faceguard.errors import ManifestError
    from faceguard.registry import ModelStore
    from tests.conftest import MODELS

    manifest, model = ModelStore(MODELS).load("v1.2.0-beta")
    bad = dataclasses.replace(manifest, inference={"tiling": tiling})
    with pytest.raises(ManifestError, match=f"inference.*{message}"):
        build_detector(bad, model)
