"""Fixtures for the log tests: a private data folder per test, record builders from plain values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from faceguard.config import Settings
from faceguard.log import ImageRecord, ReviewRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "data")


def image(i: int = 0, *, minutes: float = 0.0, version: str = "v1.1.0-prod", **kw) -> ImageRecord:
    """An image record at T0 + minutes with sensible defaults (override any field)."""
    defaults = dict(
        image_id=f"img{i:06d}",
        ts=T0 + timedelta(minutes=minutes),
        input_sha256=f"{i:064x}",
        source="cli",
        model_version=version,
        num_faces=1,
        boxes=[{"x": 10.0, "y": 10.0, "w": 20.0, "h": 20.0, "score": 0.9}],
        processing_ms=10.0,
        stage_ms={"decode": 1.0, "detect": 8.0},
        width=64,
        height=48,
    )
    defaults.update(kw)
    return ImageRecord(**defaults)


def review(image_id: str, verdict: str, *, index: int | None = 0, version: str = "v1.1.0-prod",
           reviewer: str = "ann", minutes: float = 1.0, **kw) -> ReviewRecord:
    box = {"x": 1.0, "y": 1.0, "w": 5.0, "h": 5.0} if verdict == "missed" else None
    return ReviewRecord(
        ts=T0 + timedelta(minutes=minutes), image_id=image_id, reviewer=reviewer, model_version=version,
        verdict=verdict, detection_index=None if verdict == "missed" else index, box=box, **kw,
    )
