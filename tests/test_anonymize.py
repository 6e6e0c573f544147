"""Tests for faceguard.anonymize: options, masks, modes, and that identity is really gone."""

from __future__ import annotations

import json
import math
from contextlib import nullcontext as DoesNotRaise

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data as skdata
from skimage import restoration

from faceguard.anonymize import AnonymizeOptions, MaskShape, Mode, anonymize, draw_boxes
from faceguard.detections import Detections
from faceguard.errors import ConfigError

# The astronaut's face in skimage.data.astronaut(), forehead to chin, measured once by eye:
# an input fixture, as a detector would give it.
ASTRONAUT_FACE = (177, 82, 272, 177)


def boxes(*xyxy: tuple[float, float, float, float]) -> Detections:
    return Detections(xyxy=np.array(xyxy, np.float32).reshape(-1, 4), confidence=np.full(len(xyxy), 0.9))


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float64)


def detail(g: np.ndarray) -> np.ndarray:
    """Fine structure (eyes, mouth, edges): what an attacker wants back."""
    return g - cv2.GaussianBlur(g, (0, 0), 2)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def touched(shape: tuple[int, int], det: Detections, margin: float) -> np.ndarray:
    """Pixels any grown box touches (floor/ceil of its edges), the only ones allowed to change."""
    out = np.zeros(shape, bool)
    for x1, y1, x2, y2 in det.expanded(margin).xyxy.tolist():
        out[max(math.floor(y1), 0) : max(math.ceil(y2), 0), max(math.floor(x1), 0) : max(math.ceil(x2), 0)] = True
    return out


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        ({}, DoesNotRaise()),
        ({"mode": "pixelate", "mask": "BOX"}, DoesNotRaise()),
        ({"margin": 0, "strength": 10, "fixed_radius": 1}, DoesNotRaise()),
        ({"solid_color": [255, 128, 0]}, DoesNotRaise()),
        ({"mode": "blurr"}, pytest.raises(ConfigError, match=r"anonymizer.mode.*blur, pixelate, solid.*'blurr'")),
        ({"mask": "circle"}, pytest.raises(ConfigError, match=r"anonymizer.mask.*ellipse, box")),
        ({"margin": -0.1}, pytest.raises(ConfigError, match=r"anonymizer.margin.*0.0..2.0, got -0.1")),
        ({"margin": "0.2"}, pytest.raises(ConfigError, match=r"anonymizer.margin.*got '0.2'")),
        ({"strength": 0}, pytest.raises(ConfigError, match=r"anonymizer.strength.*got 0")),
        ({"fixed_radius": 2.5}, pytest.raises(ConfigError, match=r"anonymizer.fixed_radius.*integer, got 2.5")),
        ({"fixed_radius": True}, pytest.raises(ConfigError, match=r"anonymizer.fixed_radius")),
        ({"dynamic": "false"}, pytest.raises(ConfigError, match=r"anonymizer.dynamic.*true or false, got 'false'")),
        ({"show_boxes": 1}, pytest.raises(ConfigError, match=r"anonymizer.show_boxes")),
        ({"solid_color": (256, 0, 0)}, pytest.raises(ConfigError, match=r"solid_color.*0..255.*\(256, 0, 0\)")),
        ({"solid_color": (0, 0)}, pytest.raises(ConfigError, match=r"solid_color")),
        ({"solid_color": "red"}, pytest.raises(ConfigError, match=r"solid_color")),
        ({"solid_color": 0}, pytest.raises(ConfigError, match=r"solid_color.*got 0")),
    ],
)
def test_options_validate(kwargs, expectation) -> None:
    with expectation:
        options = AnonymizeOptions(**kwargs)
        assert isinstance(options.mode, Mode) and isinstance(options.mask, MaskShape)
        assert isinstance(options.solid_color, tuple)


def test_options_round_trip_through_json() -> None:
    options = AnonymizeOptions(mode=Mode.SOLID, mask=MaskShape.BOX, margin=0.4, solid_color=(1, 2, 3))
    stored = json.loads(json.dumps(options.to_dict()))
    assert stored["mode"] == "solid" and stored["mask"] == "box"
    assert AnonymizeOptions.from_dict(stored) == options


def test_options_from_manifest_fields_take_defaults_for_missing_keys() -> None:
    manifest = {"mode": "blur", "mask": "ellipse", "margin": 0.25, "strength": 1.0, "dynamic": False, "fixed_radius": 25}
    options = AnonymizeOptions.from_dict(manifest)
    assert options.dynamic is False and options.show_boxes is False and options.solid_color == (0, 0, 0)


def test_options_refuse_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"anonymizer.sigma.*unknown setting"):
        AnonymizeOptions.from_dict({"mode": "blur", "sigma": 4})


# -- behaviour -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("mask", list(MaskShape))
def test_only_grown_boxes_change_and_input_is_untouched(astronaut, mode, mask) -> None:
    before = astronaut.copy()
    det = boxes(ASTRONAUT_FACE, (400.5, 300.2, 460.7, 380.9))
    out = anonymize(astronaut, det, AnonymizeOptions(mode=mode, mask=mask))
    assert out is not astronaut and np.array_equal(astronaut, before)
    outside = ~touched(astronaut.shape[:2], det, 0.25)
    assert np.array_equal(out[outside], astronaut[outside])
    face = (slice(ASTRONAUT_FACE[1], ASTRONAUT_FACE[3]), slice(ASTRONAUT_FACE[0], ASTRONAUT_FACE[2]))
    assert np.mean(out[face] != astronaut[face]) > 0.5


@pytest.mark.parametrize(
    ("mask", "margin", "expect_all_of_detector_box"),
    [
        (MaskShape.BOX, 0.0, True),
        (MaskShape.BOX, 0.25, True),
        (MaskShape.ELLIPSE, 0.25, True),  # ellipse contains the detector box from margin 0.21 on
        (MaskShape.ELLIPSE, 0.0, False),  # inscribed in the box: corners stay
    ],
)
def test_detector_box_is_fully_replaced(mask, margin, expect_all_of_detector_box) -> None:
    image = np.full((200, 200, 3), 255, np.uint8)
    out = anonymize(image, boxes((50, 60, 150, 140)), AnonymizeOptions(mode=Mode.SOLID, mask=mask, margin=margin))
    inside = out[60:140, 50:150]
    assert np.all(inside == 0) == expect_all_of_detector_box
    assert out[100, 100].tolist() == [0, 0, 0]


def test_ellipse_edge_is_feathered_not_jagged() -> None:
    image = np.full((300, 300, 3), 255, np.uint8)
    out = anonymize(image, boxes((50, 50, 250, 250)), AnonymizeOptions(mode=Mode.SOLID, margin=0.0))
    values = np.unique(out[..., 0])
    assert len(values) > 5  # intermediate levels along the edge
    assert np.mean((values > 0) & (values < 255)) > 0.5


def test_blur_destroys_identity_and_resists_sharpening(astronaut) -> None:
    x1, y1, x2, y2 = ASTRONAUT_FACE
    face = (slice(y1, y2), slice(x1, x2))
    original = gray(astronaut[face])
    blurred = gray(anonymize(astronaut, boxes(ASTRONAUT_FACE), AnonymizeOptions())[face])

    def laplacian_var(g: np.ndarray) -> float:
        return float(cv2.Laplacian(g, cv2.CV_64F).var())

    assert laplacian_var(blurred) < 0.05 * laplacian_var(original)

    def attacks(g: np.ndarray):
        for sigma, amount in [(2, 3), (4, 4), (8, 6)]:  # unsharp masks, gentle to brutal
            yield g + amount * (g - cv2.GaussianBlur(g, (0, 0), sigma))
        psf = np.outer(cv2.getGaussianKernel(13, 2)[:, 0], cv2.getGaussianKernel(13, 2)[:, 0])
        yield restoration.richardson_lucy(g / 255, psf, num_iter=30) * 255  # deconvolution

    recovered = [correlation(detail(original), detail(a)) for a in attacks(blurred)]
    assert max(recovered) < 0.3, recovered
    # The same attacks do recover a weak blur: the measure can tell the difference.
    weak = gray(cv2.GaussianBlur(astronaut, (0, 0), 3)[face])
    assert max(correlation(detail(original), detail(a)) for a in attacks(weak)) > 0.45


def test_pixelate_keeps_no_fine_detail(astronaut) -> None:
    x1, y1, x2, y2 = ASTRONAUT_FACE
    face = (slice(y1, y2), slice(x1, x2))
    out = anonymize(astronaut, boxes(ASTRONAUT_FACE), AnonymizeOptions(mode=Mode.PIXELATE, mask=MaskShape.BOX))
    assert abs(correlation(detail(gray(astronaut[face])), detail(gray(out[face])))) < 0.2
    # About 8 blocks across the face at strength 1: count colour changes along one row.
    row = out[(y1 + y2) // 2, x1:x2, 0].astype(int)
    assert 5 <= np.count_nonzero(np.diff(row)) <= 11


def texture(size: int) -> np.ndarray:
    """A face-sized patch of real photo texture (the astronaut, tiled to size)."""
    return np.ascontiguousarray(cv2.resize(skdata.astronaut(), (size, size), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize(
    ("weaker", "stronger"),
    [
        (AnonymizeOptions(dynamic=False, fixed_radius=4, margin=0), AnonymizeOptions(margin=0)),
        (AnonymizeOptions(margin=0), AnonymizeOptions(strength=3.0, margin=0)),
        (AnonymizeOptions(mode=Mode.PIXELATE, margin=0), AnonymizeOptions(mode=Mode.PIXELATE, strength=2.0, margin=0)),
    ],
)
def test_larger_kernels_remove_more(weaker, stronger) -> None:
    image = texture(400)
    det = boxes((0, 0, 400, 400))

    def distortion(options: AnonymizeOptions) -> float:
        out = anonymize(image, det, AnonymizeOptions.from_dict({**options.to_dict(), "mask": "box"}))
        return float(np.abs(out.astype(int) - image).mean())

    assert distortion(stronger) > 1.1 * distortion(weaker)


def test_blur_kernel_grows_with_face_size() -> None:
    # The same face at 60 and 400 px must come out equally hidden relative to its size.
    def residual(size: int) -> float:
        image = texture(size)
        out = anonymize(image, boxes((0, 0, size, size)), AnonymizeOptions(mask=MaskShape.BOX, margin=0))
        return float(np.abs(cv2.resize(out, (60, 60), interpolation=cv2.INTER_AREA).astype(int) - cv2.resize(image, (60, 60), interpolation=cv2.INTER_AREA)).mean())

    small, large = residual(60), residual(400)
    assert large == pytest.approx(small, rel=0.1)


@pytest.mark.parametrize(
    ("det", "expect_changed"),
    [
        (Detections.empty(), False),
        (boxes((10, 10, 10, 30)), False),  # zero width
        (boxes((-500, -500, -400, -400)), False),  # entirely outside
        (boxes((-20, -20, 30, 30)), True),  # partly outside
        (boxes((90, 90, 140, 140)), True),
    ],
)
def test_edge_boxes(det, expect_changed) -> None:
    image = texture(120)
    out = anonymize(image, det, AnonymizeOptions())
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (not np.array_equal(out, image)) == expect_changed


@pytest.mark.parametrize("mode", [Mode.BLUR, Mode.PIXELATE])
def test_tiny_faces_are_still_hidden(mode) -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)
    out = anonymize(image, boxes((17, 17, 23, 23)), AnonymizeOptions(mode=mode, mask=MaskShape.BOX))
    face = (slice(17, 23), slice(17, 23))
    assert np.mean(out[face] != image[face]) > 0.9
    assert out[face].astype(float).std() < 0.6 * image[face].astype(float).std()  # >= 2x2 averaging


def test_show_boxes_draws_green_only_when_asked() -> None:
    image = np.full((100, 100, 3), 128, np.uint8)
    det = boxes((20, 20, 80, 80))
    green = lambda a: np.all(a == (0, 255, 0), axis=-1).any()  # noqa: E731
    assert not green(anonymize(image, det, AnonymizeOptions()))
    assert green(anonymize(image, det, AnonymizeOptions(show_boxes=True)))
    assert green(draw_boxes(image.copy(), det))


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), [[0, 0, 0]]])
def test_anonymize_refuses_non_rgb(bad) -> None:
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB array"):
        anonymize(bad, Detections.empty(), AnonymizeOptions())


box_strategy = st.tuples(
    st.floats(-40, 100), st.floats(-40, 100), st.floats(0, 80), st.floats(0, 80)
).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))


@settings(max_examples=150, deadline=None)
@given(
    height=st.integers(1, 90),
    width=st.integers(1, 90),
    xyxy=st.lists(box_strategy, max_size=5),
    margin=st.floats(0, 1),
    strength=st.floats(0.1, 10),
    mode=st.sampled_from(Mode),
    mask=st.sampled_from(MaskShape),
    dynamic=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_nothing_outside_grown_boxes_changes(height, width, xyxy, margin, strength, mode, mask, dynamic, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    before = image.copy()
    det = boxes(*xyxy) if xyxy else Detections.empty()
    options = AnonymizeOptions(mode=mode, mask=mask, margin=margin, strength=strength, dynamic=dynamic)
    out = anonymize(image, det, options)
    assert out.shape == image.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    assert np.array_equal(image, before)
    outside = ~touched((height, width), det, margin)
    assert np.array_equal(out[outside], image[outside])
