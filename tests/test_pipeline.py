"""The one processing path, with the real models on real photos."""

import io
import threading
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from faceguard import pipeline
from faceguard.detectors import cache as detector_cache
from faceguard.anonymize import AnonymizeOptions, Mode
from faceguard.detections import Detections, count_disagreements, iou_matrix
from faceguard.detectors import FakeDetector
from faceguard.errors import ChecksumMismatchError, NotAnImageError, TooManyPixelsError
from faceguard.pipeline import Engine, Variant
from faceguard.registry import ModelStore
from tests.conftest import ASTRONAUT_FACE, jpeg_bytes


def sharpness(rgb: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


@pytest.fixture
def engine(fg_env):
    with Engine(fg_env, ModelStore.from_settings(fg_env)) as e:
        yield e


def test_blurs_the_face_and_reports_everything(engine, astronaut, astronaut_jpeg):
    r = engine.process(astronaut_jpeg, name="astronaut.jpg")
    assert r.model_version == engine.store.current() and r.variant is Variant.STABLE
    assert len(r.detections) == 1
    assert iou_matrix(r.detections.xyxy, np.array([ASTRONAUT_FACE]))[0, 0] > 0.6
    assert set(r.timings_ms) >= {"decode", "detect", "anonymize", "encode", "total"}
    assert (r.width, r.height, r.format, r.output_format) == (512, 512, "JPEG", "JPEG")
    out = np.asarray(Image.open(io.BytesIO(r.output)).convert("RGB"))
    # identity destroyed: almost no fine detail left inside the face box ...
    assert sharpness(out, ASTRONAUT_FACE) < 0.05 * sharpness(astronaut, ASTRONAUT_FACE)
    # ... while the rest of the photo keeps its detail (JPEG re-encoding aside)
    corner = (300, 300, 500, 500)
    assert sharpness(out, corner) > 0.5 * sharpness(astronaut, corner)
    assert r.to_dict()["faces"][0]["score"] > 0.5


def test_output_has_no_metadata_and_orientation_is_baked_in(engine, astronaut):
    rotated = np.ascontiguousarray(np.rot90(astronaut, 1))  # stored sideways, as a camera does
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": undoes rot90(k=1), a counter-clockwise turn
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS
    data = jpeg_bytes(rotated, exif=exif.tobytes())
    r = engine.process(data, name="sideways.jpg")
    assert r.orientation == 6 and r.orientation_applied
    assert (r.width, r.height) == (512, 512)
    assert iou_matrix(r.detections.xyxy, np.array([ASTRONAUT_FACE]))[0, 0] > 0.5
    out = Image.open(io.BytesIO(r.output))
    assert not out.getexif() and "exif" not in out.info and "xmp" not in out.info
    assert b"Exif" not in r.output and b"CameraMaker" not in r.output


def test_bad_input_is_a_clear_error_naming_the_file(engine):
    with pytest.raises(NotAnImageError, match="notes.txt"):
        engine.process(b"just some text, not a photo", name="notes.txt")


def test_pixel_limit(fg_env, astronaut_jpeg):
    small = fg_env.replace(max_pixels=1000)
    with Engine(small, ModelStore.from_settings(small)) as e:
        with pytest.raises(TooManyPixelsError, match="big.jpg"):
            e.process(astronaut_jpeg, name="big.jpg")


def unique_colours(rgb: np.ndarray, box) -> int:
    x1, y1, x2, y2 = box
    return len(np.unique(rgb[y1:y2, x1:x2].reshape(-1, 3), axis=0))


def test_modes_from_options(engine, astronaut_jpeg, astronaut):
    inner = (195, 95, 255, 160)  # eyes to mouth: well inside the masked area
    r = engine.process(astronaut_jpeg, options=AnonymizeOptions(mode=Mode.BLUR), keep_array=True)
    assert sharpness(r.anonymized, inner) < 0.02 * sharpness(astronaut, inner)
    r = engine.process(astronaut_jpeg, options=AnonymizeOptions(mode=Mode.PIXELATE), keep_array=True)
    assert unique_colours(r.anonymized, inner) <= 40 < unique_colours(astronaut, inner)
    r = engine.process(astronaut_jpeg, options=AnonymizeOptions(mode=Mode.SOLID), keep_array=True)
    assert unique_colours(r.anonymized, inner) == 1


def test_hot_switch_reaches_a_running_engine(engine, fg_env, astronaut_jpeg):
    first = engine.process(astronaut_jpeg)
    other = "v1.0.0-prod" if first.model_version != "v1.0.0-prod" else "v1.1.0-prod"
    ModelStore.from_settings(fg_env).use(other, actor="ops", reason="test")  # e.g. another process
    second = engine.process(astronaut_jpeg)
    assert second.model_version == other
    assert len(second.detections) == 1


def test_in_flight_image_finishes_on_its_version(engine, fg_env, astronaut_jpeg, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real_build = detector_cache.build_detector

    def slow_build(manifest, model):
        inner = real_build(manifest, model)

        def detect(img):
            started.set()
            release.wait(10)
            return inner.detect(img)

        return FakeDetector(detect)

    monkeypatch.setattr(detector_cache, "build_detector", slow_build)
    start_version = engine.store.current()
    results = []
    t = threading.Thread(target=lambda: results.append(engine.process(astronaut_jpeg)))
    t.start()
    assert started.wait(10)
    other = "v1.0.0-prod" if start_version != "v1.0.0-prod" else "v1.1.0-prod"
    ModelStore.from_settings(fg_env).use(other, actor="ops", reason="switch mid-flight")
    release.set()
    t.join(10)
    assert results[0].model_version == start_version
    assert engine.process(astronaut_jpeg).model_version == other


def test_pinned_version_is_served_and_marked(engine, astronaut_jpeg):
    r = engine.process(astronaut_jpeg, version="v1.0.0-prod")
    assert r.model_version == "v1.0.0-prod" and r.variant is Variant.PINNED


def test_tampered_model_file_is_refused_at_load(engine, fg_env, astronaut_jpeg):
    current = engine.store.current()
    f = fg_env.models / current / "face_detection.tflite"
    f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumMismatchError):
        engine.process(astronaut_jpeg)


class _Router:
    def __init__(self, assignment):
        self.assignment = assignment

    def assign(self, key):
        return self.assignment


def test_union_blur_covers_faces_the_canary_missed(fg_env, astronaut, astronaut_jpeg, monkeypatch):
    """A canary that misses a face cannot leak it while the stable version runs as shadow."""
    store = ModelStore.from_settings(fg_env)
    stable = store.current()
    real_build = detector_cache.build_detector
    monkeypatch.setattr(detector_cache, "build_detector",
                        lambda m, b: FakeDetector(Detections.empty()) if m.model_version == "v1.2.0-beta" else real_build(m, b))
    router = _Router(pipeline.Assignment("v1.2.0-beta", Variant.CANARY, shadow_version=stable))
    with Engine(fg_env, store, router=router) as e:
        r = e.process(astronaut_jpeg, keep_array=True)
    assert r.model_version == "v1.2.0-beta" and r.variant is Variant.CANARY
    assert len(r.detections) == 0 and len(r.shadow_detections) == 1 and len(r.blurred) == 1
    assert sharpness(r.anonymized, ASTRONAUT_FACE) < 0.05 * sharpness(astronaut, ASTRONAUT_FACE)

    off = fg_env.replace(rollout=fg_env.rollout.__class__(union_blur=False))
    with Engine(off, store, router=router) as e:
        r = e.process(astronaut_jpeg, keep_array=True)
    assert len(r.blurred) == 0  # configurable: the user then gets exactly the canary's result


def test_count_disagreements():
    a = Detections.from_xywh([[0, 0, 10, 10], [100, 100, 10, 10]], [0.9, 0.9])
    b = Detections.from_xywh([[1, 1, 10, 10], [300, 300, 10, 10]], [0.9, 0.9])
    assert count_disagreements(a, b) == 2
    assert count_disagreements(a, a) == 0
    assert count_disagreements(a, Detections.empty()) == 2


def test_concurrent_requests_from_threads(engine, astronaut_jpeg, no_face_jpegs):
    inputs = [astronaut_jpeg, *no_face_jpegs] * 4
    expected = sorted(len(engine.process(d).detections) for d in inputs)  # one at a time
    out, errors = [], []

    def work(data):
        try:
            out.append(len(engine.process(data).detections))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in inputs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and sorted(out) == expected and 1 in out
