"""Benchmark photos built from real pictures (scikit-image's samples), not noise.

A 1920x1080 and a 4000x3000 scene: a real background with real faces pasted at several
sizes, so decode, detection, blur and encode all do representative work.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def scene(width: int, height: int, faces: int = 6, seed: int = 0) -> np.ndarray:
    import skimage.data

    rng = np.random.default_rng(seed)
    bg = cv2.resize(np.ascontiguousarray(skimage.data.coffee()), (width, height), interpolation=cv2.INTER_CUBIC)
    astro = np.ascontiguousarray(skimage.data.astronaut())
    head = astro[20:260, 110:340]  # head and shoulders
    out = bg.copy()
    for i in range(faces):
        side = int(min(width, height) * rng.uniform(0.06, 0.3))
        patch = cv2.resize(head, (side, int(side * head.shape[0] / head.shape[1])), interpolation=cv2.INTER_AREA)
        ph, pw = patch.shape[:2]
        x = int(rng.uniform(0, width - pw))
        y = int(rng.uniform(0, height - ph))
        out[y : y + ph, x : x + pw] = patch
    return out


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
