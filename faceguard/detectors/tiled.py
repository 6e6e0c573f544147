"""Multi-scale tiled inference around any whole-image detector (BlazeFace).

BlazeFace sees the whole frame at 128 or 192 px, so a face under ~20 px in a 1080p photo
shrinks to a pixel or two and vanishes. Running the detector on overlapping tiles keeps small
faces near their own size; the whole frame still finds the large ones. Naive tiling also
multiplies false positives (every tile is another chance to see a face in texture), so tile
detections are filtered:

* border rejection: a box touching an inner tile edge is a face cut in two; with an overlap of
  at least half a tile a neighbouring tile sees it whole;
* a stricter threshold for tile detections than for the whole frame;
* agreement: overlapping tiles see every point several times, so a real face is found by
  ``min_votes`` tiles (of any level) while a texture false positive usually fools one; a tile
  detection below ``solo_confidence`` needs that many votes;
* skipped work: tiles with almost no texture (grey standard deviation below ``flat_std``) and
  tiles inside a face the whole frame already found are not run.

Tiles run on ``workers`` threads (the inner detector must be thread-safe; BlazeFace keeps one
MediaPipe task per thread).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from faceguard.detections import Detections, iou_matrix, nms_indices
from faceguard.detectors.base import Detector


@dataclass(frozen=True, kw_only=True)
class TilingOptions:
    """tile / tiles: tile sides in source pixels (one level per side, each beside the whole frame).

    Single-level manifests (``tile``) keep working; ``tiles`` lists several levels.
    """

    tile: int = 384
    tiles: tuple[int, ...] = ()
    overlap: float = 0.5  # fraction of a tile shared with its neighbour
    min_image_side: int = 400  # below this the whole frame is enough
    border_margin: int = 2  # boxes within this many px of an inner tile edge are cut faces
    tile_min_confidence: float | None = None  # threshold for tile detections (None: the detector's own)
    min_votes: int = 1  # tiles that must see a face ...
    solo_confidence: float = 1.0  # ... unless one tile scores it at least this
    vote_iou: float = 0.3
    flat_std: float = 0.0  # skip tiles whose grey standard deviation is below this (0: never)
    workers: int = 1
    nms_iou: float = 0.3
    levels: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        levels = tuple(int(t) for t in (self.tiles or (self.tile,)))
        if any(t < 32 for t in levels):
            raise ValueError(f"tile sides must be >= 32 px, got {levels}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.min_votes < 1 or self.workers < 1:
            raise ValueError(f"min_votes and workers must be >= 1, got {self.min_votes} and {self.workers}")
        object.__setattr__(self, "tiles", tuple(self.tiles))
        object.__setattr__(self, "levels", levels)

    @classmethod
    def from_dict(cls, d: dict) -> "TilingOptions":
        d = dict(d)
        if "tiles" in d:
            d["tiles"] = tuple(d["tiles"])
        return cls(**d)


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering [0, length) with tiles of ``tile`` px overlapping by ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def tile_grid(width: int, height: int, tile: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of every tile of one level."""
    return [
        (x, y, min(tile, width - x), min(tile, height - y))
        for y in tile_origins(height, tile, overlap)
        for x in tile_origins(width, tile, overlap)
    ]


def border_keep(boxes: np.ndarray, tile: tuple[int, int, int, int], width: int, height: int, margin: float) -> np.ndarray:
    """Which boxes (tile coordinates) do not touch an inner edge of the tile (an image edge is fine)."""
    x, y, w, h = tile
    keep = np.ones(len(boxes), bool)
    if x > 0:
        keep &= boxes[:, 0] > margin
    if y > 0:
        keep &= boxes[:, 1] > margin
    if x + w < width:
        keep &= boxes[:, 2] < w - margin
    if y + h < height:
        keep &= boxes[:, 3] < h - margin
    return keep


def count_votes(boxes: np.ndarray, tile_ids: np.ndarray, iou: float) -> np.ndarray:
    """For each box, how many distinct tiles found a box overlapping it by at least ``iou``."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    same = iou_matrix(boxes, boxes) >= iou
    seen = np.zeros((len(boxes), int(tile_ids.max()) + 1), bool)
    rows, cols = np.nonzero(same)
    seen[rows, tile_ids[cols]] = True
    return seen.sum(axis=1)


class TiledDetector:
    """Whole frame plus overlapping tiles at one or more sizes, filtered and merged with NMS."""

    def __init__(self, inner: Detector, options: TilingOptions) -> None:
        self.inner = inner
        self.options = options
        self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="tile") if options.workers > 1 else None

    def tiles_for(self, image: np.ndarray, whole: Detections) -> list[tuple[int, int, int, int]]:
        """Tiles worth running: all levels, minus flat tiles and tiles inside a found face."""
        h, w = image.shape[:2]
        o = self.options
        if max(h, w) < o.min_image_side:
            return []
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if o.flat_std > 0 else None
        out = []
        for side in o.levels:
            for t in tile_grid(w, h, side, o.overlap):
                x, y, tw, th = t
                if grey is not None and float(grey[y : y + th, x : x + tw].std()) < o.flat_std:
                    continue
                if len(whole) and np.any(
                    (whole.xyxy[:, 0] <= x) & (whole.xyxy[:, 1] <= y) & (whole.xyxy[:, 2] >= x + tw) & (whole.xyxy[:, 3] >= y + th)
                ):
                    continue  # the tile lies inside one face: nothing smaller to find there
                out.append(t)
        return out

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        o = self.options
        whole = self.inner.detect(image)
        tiles = self.tiles_for(image, whole)
        if not tiles:
            return whole

        def run(t: tuple[int, int, int, int]) -> Detections:
            x, y, tw, th = t
            found = self.inner.detect(np.ascontiguousarray(image[y : y + th, x : x + tw]))
            keep = border_keep(found.xyxy, t, w, h, o.border_margin)
            if o.tile_min_confidence is not None:
                keep &= found.confidence >= o.tile_min_confidence
            return found[keep].scaled(1.0, dx=x, dy=y)

        found = list(self._pool.map(run, tiles)) if self._pool else [run(t) for t in tiles]
        ids = np.concatenate([np.full(len(f), i) for i, f in enumerate(found)]) if found else np.zeros(0, int)
        parts = Detections.merge(found)
        if len(parts) and o.min_votes > 1:
            votes = count_votes(parts.xyxy, ids.astype(np.int64), o.vote_iou)
            parts = parts[(votes >= o.min_votes) | (parts.confidence >= o.solo_confidence)]
        merged = Detections.merge([whole, parts])
        if len(merged) < 2:
            return merged
        return merged[nms_indices(merged.xyxy, merged.confidence, o.nms_iou)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.inner.close()
