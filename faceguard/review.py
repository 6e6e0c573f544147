"""Which images are flagged and kept for human review, and their deletion after retention.

An image is *flagged* when the detector was unsure (a score within ``low_margin`` of the
version's threshold), when a shadow run disagreed with the served version, or when it falls
in the random review sample. Its pixels are *kept* only while review sampling is on for its
traffic (``review.sample_rate`` for stable traffic, ``review.canary_sample_rate`` for canary
traffic; 0 turns sampling off): then the decoded, upright image is re-encoded without any
metadata under ``$FACEGUARD_HOME/review/<date>/<image_id>.jpg`` and deleted after
``review.retention_days``. The log only ever holds the relative path, never pixels.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from faceguard import media
from faceguard.config import Settings
from faceguard.detections import Detections


class ReviewSampler:
    """Decides, per processed image, whether it is flagged for review and whether its pixels
    are kept; purges expired kept images at most once an hour as a side effect."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._last_purge = 0.0

    def consider(self, *, image_id: str, input_sha256: str, rgb: np.ndarray, detections: Detections,
                 threshold: float, variant: str, disagreements: int = 0) -> tuple[bool, str | None, str | None]:
        """Return (flagged, reason, relative path of the kept image or None)."""
        from faceguard.rollout import bucket

        cfg = self.settings.review
        rate = cfg.canary_sample_rate if variant == "canary" else cfg.sample_rate
        reasons = []
        if disagreements:
            reasons.append("shadow_disagreement")
        if len(detections) and bool(np.any(detections.confidence < threshold + cfg.low_margin)):
            reasons.append("low_margin")
        if rate > 0 and bucket(input_sha256, "review") < rate * 100:
            reasons.append("sample")
        if not reasons:
            return False, None, None
        path = None
        if rate > 0:  # sampling on for this traffic: keep the pixels for the reviewer
            path = self._keep(image_id, rgb)
        self._maybe_purge()
        return True, ",".join(reasons), path

    def _keep(self, image_id: str, rgb: np.ndarray) -> str:
        day = self._clock().strftime("%Y-%m-%d")
        rel = Path(day) / f"{image_id}.jpg"
        target = self.settings.review_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        media.write_atomic(target, media.encode(rgb, format="JPEG", quality=92))
        return str(rel)

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge > 3600:
            self._last_purge = now
            purge_expired(self.settings, now=self._clock())


def purge_expired(settings: Settings, *, now: datetime | None = None) -> int:
    """Delete kept review images older than the retention period; returns how many."""
    now = now or datetime.now(timezone.utc)
    root = settings.review_dir
    if not root.is_dir():
        return 0
    cutoff = now.timestamp() - settings.review.retention_days * 86400
    removed = 0
    for f in root.rglob("*.jpg"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another process purged it first
    for d in sorted(root.iterdir()):
        if d.is_dir() and not any(d.iterdir()):
            shutil.rmtree(d, ignore_errors=True)
    return removed


def review_image_path(settings: Settings, relative: str) -> Path:
    """Absolute path of a kept image; refuses paths that escape the review folder."""
    root = settings.review_dir.resolve()
    p = (root / relative).resolve()
    if root not in p.parents:
        raise ValueError(f"{relative!r} is outside the review folder")
    return p
