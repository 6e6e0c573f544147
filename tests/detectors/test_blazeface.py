import threading

import numpy as np
import pytest

from faceguard.detections import iou_matrix
from faceguard.detectors import build_detector
from faceguard.errors import DetectionError, ModelLoadError
from faceguard.registry import ModelStore
from tests.conftest import ASTRONAUT_FACE, MODELS


@pytest.fixture(scope="module")
def store():
    return ModelStore(MODELS)


@pytest.mark.parametrize("version", ["v1.0.0-prod", "v1.1.0-prod", "v1.2.0-beta"])
def test_finds_the_astronaut_face(store, version, astronaut):
    manifest, model = store.load(version)
    det = build_detector(manifest, model)
    try:
        found = det.detect(astronaut)
    finally:
        det.close()
    iou = iou_matrix(found.xyxy, np.array([ASTRONAUT_FACE]))[:, 0]
    assert iou.max() > 0.6
    assert found.confidence[iou.argmax()] > manifest.confidence_threshold
    if not manifest.inference.get("tiling"):
        assert len(found) == 1  # whole-frame BlazeFace is clean on a portrait


def test_no_face_on_a_cat(store):
    import skimage.data

    manifest, model = store.load("v1.1.0-prod")
    det = build_detector(manifest, model)
    assert len(det.detect(np.ascontiguousarray(skimage.data.chelsea()))) == 0
    det.close()


def test_safe_from_several_threads(store, astronaut):
    manifest, model = store.load("v1.1.0-prod")
    det = build_detector(manifest, model)
    boxes, errors = [], []

    def work():
        try:
            for _ in range(10):
                boxes.append(det.detect(astronaut).xyxy.round().tolist())
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    det.close()
    assert not errors
    assert len(boxes) == 40 and all(b == boxes[0] for b in boxes)


def test_rejects_non_rgb_input(store):
    manifest, model = store.load("v1.1.0-prod")
    det = build_detector(manifest, model)
    with pytest.raises(DetectionError, match="RGB uint8"):
        det.detect(np.zeros((10, 10), np.uint8))
    det.close()


def test_garbage_model_bytes_are_a_load_error(store):
    manifest, _ = store.load("v1.1.0-prod")
    with pytest.raises(ModelLoadError, match="v1.1.0-prod"):
        build_detector(manifest, b"not a tflite file" * 100)
