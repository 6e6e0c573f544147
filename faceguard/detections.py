"""The one detection type: face boxes with scores (and optional keypoints).

Every detector returns ``Detections``; anonymizers, the log and evaluation read it. It checks
its own invariants on construction so a malformed result fails where it is made, not three
modules later.

>>> d = Detections(xyxy=np.array([[10, 10, 50, 60]], dtype=np.float32), confidence=np.array([0.9]))
>>> len(d), d[d.confidence > 0.5].xyxy.shape
(1, (1, 4))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class Detections:
    """N face boxes in pixel coordinates of the image they were found in.

    xyxy: (N, 4) float32, x1 < x2 and y1 < y2 (x2/y2 exclusive).
    confidence: (N,) float32 in [0, 1].
    keypoints: optional (N, K, 2) float32 pixel coordinates.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    keypoints: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        conf = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if len(conf) != len(xyxy):
            raise ValueError(
                f"confidence must have one value per box: expected {len(xyxy)}, got {len(conf)}"
            )
        if len(xyxy) and not np.all(np.isfinite(xyxy)):
            raise ValueError("xyxy must be finite")
        if len(xyxy) and (np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1])):
            raise ValueError("xyxy must have x1 <= x2 and y1 <= y2")
        if len(conf) and (np.any(conf < 0) or np.any(conf > 1.0001) or not np.all(np.isfinite(conf))):
            raise ValueError(f"confidence must be in [0, 1], got min {conf.min()} max {conf.max()}")
        kp = self.keypoints
        if kp is not None:
            kp = np.asarray(kp, dtype=np.float32)
            if kp.ndim != 3 or kp.shape[0] != len(xyxy) or kp.shape[2] != 2:
                raise ValueError(f"keypoints must be (N, K, 2) with N={len(xyxy)}, got {kp.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", np.clip(conf, 0.0, 1.0))
        object.__setattr__(self, "keypoints", kp)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> "Detections":
        """No faces."""
        return cls(xyxy=np.zeros((0, 4), np.float32), confidence=np.zeros((0,), np.float32))

    @classmethod
    def from_xywh(cls, boxes: Sequence[Sequence[float]], scores: Sequence[float] | None = None) -> "Detections":
        """Build from (x, y, w, h) boxes, as stored in annotation files and the log."""
        arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        xyxy = arr.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        conf = np.ones(len(arr), np.float32) if scores is None else np.asarray(scores, np.float32)
        return cls(xyxy=xyxy, confidence=conf)

    @classmethod
    def merge(cls, parts: Iterable["Detections"]) -> "Detections":
        """Concatenate several results (keypoints dropped unless every part has the same K)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        kps = [p.keypoints for p in parts]
        kp = None
        if all(k is not None for k in kps) and len({k.shape[1] for k in kps}) == 1:
            kp = np.concatenate(kps)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            keypoints=kp,
        )

    # -- container protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            keypoints=None if self.keypoints is None else self.keypoints[index],
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- geometry -------------------------------------------------------------------------------
    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def size(self) -> np.ndarray:
        """Geometric-mean side, sqrt(w*h): the face-size measure used for buckets and blur."""
        return np.sqrt(np.maximum(self.width, 0) * np.maximum(self.height, 0))

    @property
    def area(self) -> np.ndarray:
        return self.width * self.height

    def scaled(self, sx: float, sy: float | None = None, *, dx: float = 0.0, dy: float = 0.0) -> "Detections":
        """Scale then translate: maps boxes found in a resized crop back to the full image."""
        sy = sx if sy is None else sy
        xyxy = self.xyxy * np.array([sx, sy, sx, sy], np.float32) + np.array([dx, dy, dx, dy], np.float32)
        kp = None
        if self.keypoints is not None:
            kp = self.keypoints * np.array([sx, sy], np.float32) + np.array([dx, dy], np.float32)
        return Detections(xyxy=xyxy, confidence=self.confidence, keypoints=kp)

    def clipped(self, width: int, height: int) -> "Detections":
        """Clip to the image and drop boxes that end up empty."""
        xyxy = self.xyxy.copy()
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, width)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, height)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        kp = None if self.keypoints is None else self.keypoints[keep]
        return Detections(xyxy=xyxy[keep], confidence=self.confidence[keep], keypoints=kp)

    def expanded(self, margin: float) -> "Detections":
        """Grow every box by ``margin`` times its size on each side (0.2 = 20 % each side)."""
        if margin == 0 or not len(self):
            return self
        w, h = self.width, self.height
        pad = np.stack([-w * margin, -h * margin, w * margin, h * margin], axis=1)
        return Detections(xyxy=self.xyxy + pad, confidence=self.confidence, keypoints=self.keypoints)

    def with_nms(self, iou_threshold: float = 0.3) -> "Detections":
        """Greedy non-maximum suppression, highest score first."""
        if len(self) < 2:
            return self
        keep = nms_indices(self.xyxy, self.confidence, iou_threshold)
        return self[keep]

    def union(self, other: "Detections", iou_threshold: float = 0.5) -> "Detections":
        """Boxes of both results, duplicates (IoU >= threshold) kept once (the higher score).

        Used when two versions ran on one image: blurring the union never blurs less than
        either version alone.
        """
        return Detections.merge([self, other]).with_nms(iou_threshold)

    # -- serialisation --------------------------------------------------------------------------
    def to_records(self) -> list[dict]:
        """Plain dicts (x, y, w, h, score), rounded: what the log and ``--json`` print."""
        out = []
        for (x1, y1, x2, y2), s in zip(self.xyxy.tolist(), self.confidence.tolist()):
            out.append(
                {
                    "x": round(x1, 1),
                    "y": round(y1, 1),
                    "w": round(x2 - x1, 1),
                    "h": round(y2 - y1, 1),
                    "score": round(s, 4),
                }
            )
        return out

    @classmethod
    def from_records(cls, records: Sequence[dict]) -> "Detections":
        """Inverse of ``to_records`` (a missing score counts as 1.0)."""
        if not records:
            return cls.empty()
        return cls.from_xywh(
            [[r["x"], r["y"], r["w"], r["h"]] for r in records], [r.get("score", 1.0) for r in records]
        )


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two (N,4) and (M,4) xyxy arrays -> (N, M)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms_indices(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS, in descending score order (vectorised per kept box)."""
    order = np.argsort(-scores, kind="stable")
    xyxy = xyxy[order]
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    ious = iou_matrix(xyxy, xyxy) if len(order) <= 4096 else None
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        row = ious[i] if ious is not None else iou_matrix(xyxy[i : i + 1], xyxy)[0]
        suppressed |= row >= iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]


def count_disagreements(a: Detections, b: Detections, iou: float = 0.5) -> int:
    """Boxes of either result with no partner at IoU >= ``iou`` in the other."""
    if not len(a) or not len(b):
        return len(a) + len(b)
    m = iou_matrix(a.xyxy, b.xyxy) >= iou
    return int((~m.any(axis=1)).sum() + (~m.any(axis=0)).sum())
