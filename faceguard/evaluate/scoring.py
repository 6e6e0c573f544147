"""Scoring: the data set's greedy matching rule, AP and the evaluation report.

Detections are sorted by score and matched greedily: a detection matches the unmatched
non-ignored face with the highest IoU if that IoU is >= 0.5 (true positive); otherwise, if its
IoU with an ignored box is >= 0.5 it counts neither way; otherwise it is a false positive.
Unmatched non-ignored faces are misses; any detection on a negative image (no box at all) is
a false positive. Size buckets use sqrt(w*h) of the ground-truth box: small < 32 px, medium
32-96 px, large > 96 px.

Because matching is greedy in score order, raising the threshold only removes the
lowest-scored detections without changing how the others matched; so one run at the
detector's own threshold gives the whole precision-recall curve, and
``EvaluationReport.at_threshold`` gives every figure at any stricter operating point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Sequence

import numpy as np

from faceguard.detections import iou_matrix
from faceguard.evaluate.dataset import Dataset

IOU_MATCH = 0.5
SMALL_MAX = 32.0  # sqrt(w*h) < 32 px is small
LARGE_MIN = 96.0  # sqrt(w*h) > 96 px is large
SIZE_BUCKETS = ("small", "medium", "large")
PR_CURVE_POINTS = 101  # points kept for the dashboard's precision-recall curve


# -- matching ------------------------------------------------------------------------------------
class Outcome(IntEnum):
    """What one detection counted as."""

    FP = 0
    TP = 1
    IGNORED = 2  # overlaps an ignored box: neither TP nor FP


@dataclass(frozen=True)
class ImageMatch:
    """The greedy match on one image: an outcome per detection (in the detections' order) and,
    per ground-truth box, the score of the detection that matched it (NaN when missed)."""

    scores: np.ndarray
    outcomes: np.ndarray
    gt_score: np.ndarray


def match_image(
    det_xyxy: np.ndarray, det_scores: np.ndarray, gt_xyxy: np.ndarray, gt_ignore: np.ndarray, *, iou: float = IOU_MATCH
) -> ImageMatch:
    """Match one image's detections to its ground truth with the data set's greedy rule.

    >>> m = match_image(np.array([[0, 0, 10, 10], [0, 0, 10, 10]]), np.array([0.9, 0.8]),
    ...                 np.array([[0, 0, 10, 10]]), np.array([False]))
    >>> [Outcome(o).name for o in m.outcomes]
    ['TP', 'FP']
    """
    det_xyxy = np.asarray(det_xyxy, np.float32).reshape(-1, 4)
    det_scores = np.asarray(det_scores, np.float32).reshape(-1)
    gt_xyxy = np.asarray(gt_xyxy, np.float32).reshape(-1, 4)
    gt_ignore = np.asarray(gt_ignore, bool).reshape(-1)
    outcomes = np.full(len(det_xyxy), Outcome.FP, np.int8)
    gt_score = np.full(len(gt_xyxy), np.nan, np.float32)
    if len(det_xyxy) and len(gt_xyxy):
        ious = iou_matrix(det_xyxy, gt_xyxy)
        free = ~gt_ignore  # non-ignored faces not matched yet
        ignored_hit = (ious[:, gt_ignore] >= iou).any(axis=1) if gt_ignore.any() else np.zeros(len(det_xyxy), bool)
        for d in np.argsort(-det_scores, kind="stable"):
            cand = np.where(free, ious[d], -1.0)
            g = int(np.argmax(cand))
            if cand[g] >= iou:
                outcomes[d] = Outcome.TP
                free[g] = False
                gt_score[g] = det_scores[d]
            elif ignored_hit[d]:
                outcomes[d] = Outcome.IGNORED
    return ImageMatch(det_scores, outcomes, gt_score)


def size_bucket(sizes: np.ndarray) -> np.ndarray:
    """0 small, 1 medium, 2 large, for sqrt(w*h) sizes."""
    sizes = np.asarray(sizes, np.float32)
    return np.where(sizes < SMALL_MAX, 0, np.where(sizes > LARGE_MIN, 2, 1)).astype(np.int8)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated precision-recall curve (VOC all-point).

    ``recall``/``precision`` are cumulative values with detections in descending score order.
    Precision is made monotone from the right, then integrated over recall steps.
    """
    if not len(recall):
        return 0.0
    mrec = np.concatenate([[0.0], recall, [recall[-1]]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


# -- report --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationReport:
    """Every figure of one evaluation run; ``to_dict()`` is what the manifest and the log store.

    The raw per-detection outcomes are kept (not serialised) so ``at_threshold`` can give the
    figures at any stricter operating point without running the detector again.
    """

    dataset: str
    dataset_fingerprint: str
    n_images: int
    n_faces: int
    n_negatives: int
    threshold: float | None
    tp: int
    fp: int
    fp_negatives: int
    recall: float
    precision: float
    average_precision: float
    recall_by_size: dict[str, float | None]
    faces_by_size: dict[str, int]
    fp_per_100_negatives: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_mean: float | None
    pr_curve: list[list[float]]
    _scores: np.ndarray = field(repr=False, compare=False)
    _outcomes: np.ndarray = field(repr=False, compare=False)
    _on_negative: np.ndarray = field(repr=False, compare=False)
    _gt_score: np.ndarray = field(repr=False, compare=False)
    _gt_bucket: np.ndarray = field(repr=False, compare=False)
    _latencies: tuple[float, ...] = field(repr=False, compare=False, default=())

    @property
    def small_recall(self) -> float | None:
        return self.recall_by_size["small"]

    @classmethod
    def from_matches(
        cls,
        dataset: Dataset,
        matches: Sequence[ImageMatch],
        *,
        latencies_ms: Sequence[float] = (),
        threshold: float | None = None,
    ) -> "EvaluationReport":
        """Figures from per-image matches (one per image of ``dataset``, in its order)."""
        if len(matches) != len(dataset.images):
            raise ValueError(f"expected one match per image: {len(dataset.images)} images, {len(matches)} matches")
        gt_score, gt_bucket, scores, outcomes, on_neg = [], [], [], [], []
        for im, m in zip(dataset.images, matches):
            keep = ~im.ignore
            b = im.boxes[keep]
            gt_score.append(m.gt_score[keep])
            gt_bucket.append(size_bucket(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))))
            scores.append(m.scores)
            outcomes.append(m.outcomes)
            on_neg.append(np.full(len(m.scores), im.is_negative))
        return cls._build(
            dataset=str(dataset.root),
            dataset_fingerprint=dataset.fingerprint,
            n_images=len(dataset.images),
            n_negatives=dataset.n_negatives,
            scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
            outcomes=np.concatenate(outcomes) if outcomes else np.zeros(0, np.int8),
            on_negative=np.concatenate(on_neg) if on_neg else np.zeros(0, bool),
            gt_score=np.concatenate(gt_score) if gt_score else np.zeros(0, np.float32),
            gt_bucket=np.concatenate(gt_bucket) if gt_bucket else np.zeros(0, np.int8),
            latencies=tuple(latencies_ms),
            threshold=threshold,
        )

    @classmethod
    def _build(cls, *, dataset, dataset_fingerprint, n_images, n_negatives, scores, outcomes, on_negative, gt_score, gt_bucket,
               latencies, threshold) -> "EvaluationReport":
        n_faces = len(gt_score)
        counted = outcomes != Outcome.IGNORED
        order = np.argsort(-scores[counted], kind="stable")
        s = scores[counted][order]
        is_tp = outcomes[counted][order] == Outcome.TP
        ctp, cfp = np.cumsum(is_tp), np.cumsum(~is_tp)
        rec = ctp / max(n_faces, 1)
        prec = ctp / np.maximum(ctp + cfp, 1)
        tp, fp = int(ctp[-1]) if len(ctp) else 0, int(cfp[-1]) if len(cfp) else 0
        fp_neg = int(((outcomes == Outcome.FP) & on_negative).sum())
        found = ~np.isnan(gt_score)
        by_size, faces_by_size = {}, {}
        for i, name in enumerate(SIZE_BUCKETS):
            sel = gt_bucket == i
            faces_by_size[name] = int(sel.sum())
            by_size[name] = float(found[sel].mean()) if sel.any() else None
        return cls(
            dataset=dataset,
            dataset_fingerprint=dataset_fingerprint,
            n_images=n_images,
            n_faces=n_faces,
            n_negatives=n_negatives,
            threshold=threshold,
            tp=tp,
            fp=fp,
            fp_negatives=fp_neg,
            recall=tp / n_faces if n_faces else 0.0,
            precision=tp / (tp + fp) if tp + fp else 1.0,
            average_precision=average_precision(rec, prec),
            recall_by_size=by_size,
            faces_by_size=faces_by_size,
            fp_per_100_negatives=100.0 * fp_neg / n_negatives if n_negatives else None,
            latency_ms_p50=_percentile(latencies, 50),
            latency_ms_p95=_percentile(latencies, 95),
            latency_ms_mean=float(np.mean(latencies)) if len(latencies) else None,
            pr_curve=_pr_points(rec, prec, s),
            _scores=scores,
            _outcomes=outcomes,
            _on_negative=on_negative,
            _gt_score=gt_score,
            _gt_bucket=gt_bucket,
            _latencies=tuple(latencies),
        )

    def at_threshold(self, threshold: float) -> "EvaluationReport":
        """The same run scored as if only detections with score >= ``threshold`` were kept."""
        keep = self._scores >= threshold
        gt = np.where(self._gt_score >= threshold, self._gt_score, np.nan)
        return self._build(
            dataset=self.dataset, dataset_fingerprint=self.dataset_fingerprint, n_images=self.n_images, n_negatives=self.n_negatives,
            scores=self._scores[keep], outcomes=self._outcomes[keep], on_negative=self._on_negative[keep],
            gt_score=gt, gt_bucket=self._gt_bucket, latencies=self._latencies, threshold=threshold,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able figures (rounded), as written to the manifest and the log."""
        r = lambda v, n=4: None if v is None else round(float(v), n)  # noqa: E731
        return {
            "dataset": self.dataset,
            "dataset_fingerprint": self.dataset_fingerprint,
            "n_images": self.n_images,
            "n_faces": self.n_faces,
            "n_negatives": self.n_negatives,
            "threshold": r(self.threshold),
            "tp": self.tp,
            "fp": self.fp,
            "fp_negatives": self.fp_negatives,
            "recall": r(self.recall),
            "precision": r(self.precision),
            "average_precision": r(self.average_precision),
            "recall_small": r(self.recall_by_size["small"]),
            "recall_medium": r(self.recall_by_size["medium"]),
            "recall_large": r(self.recall_by_size["large"]),
            "faces_by_size": dict(self.faces_by_size),
            "fp_per_100_negatives": r(self.fp_per_100_negatives, 2),
            "latency_ms_p50": r(self.latency_ms_p50, 2),
            "latency_ms_p95": r(self.latency_ms_p95, 2),
            "latency_ms_mean": r(self.latency_ms_mean, 2),
            "pr_curve": self.pr_curve,
        }


def _pr_points(rec: np.ndarray, prec: np.ndarray, scores: np.ndarray) -> list[list[float]]:
    """At most ``PR_CURVE_POINTS`` [recall, precision, threshold] points, evenly spread along the
    run (first and last included), for plotting."""
    if not len(rec):
        return []
    idx = np.unique(np.linspace(0, len(rec) - 1, min(PR_CURVE_POINTS, len(rec))).round().astype(int))
    return [[round(float(rec[i]), 4), round(float(prec[i]), 4), round(float(scores[i]), 4)] for i in idx]



__all__ = ["EvaluationReport", "ImageMatch", "Outcome", "average_precision", "match_image", "size_bucket"]
