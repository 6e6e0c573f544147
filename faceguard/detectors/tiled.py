"""Multi-scale tiled inference around any whole-image detector.

BlazeFace sees the whole frame at 128 or 192 px, so a face under ~20 px in a 1080p photo
shrinks to a pixel or two and vanishes. Running the detector on overlapping tiles at native
resolution lets small faces keep their size; boxes from all tiles and the whole frame are
merged with NMS. Tiles touching a face only partly produce truncated boxes: those whose edge
lies on an inner tile border are dropped (the neighbouring tile sees the face whole).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceguard.detections import Detections
from faceguard.detectors.base import Detector


@dataclass(frozen=True, kw_only=True)
class TilingOptions:
    tile: int = 384  # tile side in source pixels
    overlap: float = 0.25  # fraction of the tile shared with its neighbour
    min_image_side: int = 400  # below this the whole frame is enough
    border_margin: int = 2  # boxes within this many px of an inner tile edge are truncated
    tile_min_confidence: float | None = None  # stricter threshold for tile detections (FP control)
    nms_iou: float = 0.3

    @classmethod
    def from_dict(cls, d: dict) -> "TilingOptions":
        return cls(**d)


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering [0, length) with tiles of ``tile`` px overlapping by ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


class TiledDetector:
    """Whole frame plus overlapping native-resolution tiles, merged with NMS."""

    def __init__(self, inner: Detector, options: TilingOptions) -> None:
        self.inner = inner
        self.options = options

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        o = self.options
        parts = [self.inner.detect(image)]
        if max(h, w) >= o.min_image_side:
            for y in tile_origins(h, o.tile, o.overlap):
                for x in tile_origins(w, o.tile, o.overlap):
                    crop = image[y : y + o.tile, x : x + o.tile]
                    found = self.inner.detect(crop)
                    if not len(found):
                        continue
                    ch, cw = crop.shape[:2]
                    keep = np.ones(len(found), bool)
                    m = o.border_margin
                    b = found.xyxy
                    if x > 0:
                        keep &= b[:, 0] > m
                    if y > 0:
                        keep &= b[:, 1] > m
                    if x + cw < w:
                        keep &= b[:, 2] < cw - m
                    if y + ch < h:
                        keep &= b[:, 3] < ch - m
                    if o.tile_min_confidence is not None:
                        keep &= found.confidence >= o.tile_min_confidence
                    parts.append(found[keep].scaled(1.0, dx=x, dy=y))
        return Detections.merge(parts).with_nms(o.nms_iou)

    def close(self) -> None:
        self.inner.close()
