"""Fixtures for the rollout tests: a private model store, an event recorder, log builders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import os
import shutil

import pytest

from faceguard.config import Settings
from faceguard.registry import ModelStore

T0 = datetime(2025, 6, 10, 12, 0, tzinfo=timezone.utc)
STABLE, PREVIOUS, BETA = "v1.1.0-prod", "v1.0.0-prod", "v1.2.0-beta"
GOOD_EVAL = {"dataset": "reference", "recall": 0.9, "recall_small": 0.8, "fp_per_100_negatives": 5.0}


class Events:
    """An ``EventRecorder`` that keeps what it is told."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def record_event(self, **kw) -> None:
        self.rows.append(kw)

    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.rows]


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A private store with the three BlazeFace versions only, current = v1.1.0-prod: the rollout
    tests name the previous stable version, which must not change as versions ship."""
    from tests.conftest import MODELS

    root = tmp_path / "models"
    root.mkdir()
    for v in (PREVIOUS, STABLE, BETA):
        shutil.copytree(MODELS / v, root / v)
    os.symlink(STABLE, root / "current")
    return root


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path) -> Settings:
    return Settings(home=tmp_path / "data", models=models_dir)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def store(models_dir: Path, events: Events) -> ModelStore:
    return ModelStore(models_dir, recorder=events)


def with_evaluation(store: ModelStore, version: str, evaluation: dict | None = None) -> None:
    """Write an evaluation into the version's manifest (as ``faceguard eval`` does)."""
    store.write_manifest(store.manifest(version).with_evaluation(dict(evaluation or GOOD_EVAL)))


def write_records(settings: Settings, records) -> None:
    """Append records to the log and merge them into the database."""
    from faceguard.log import LogWriter

    with LogWriter(settings, source="cli", autoingest=False) as log:
        for r in records:
            log.write(r)


def image(i: int, *, version: str = BETA, ts: datetime = T0, status: str = "ok", ms: float = 20.0,
          variant: str = "canary", **kw):
    from faceguard.log import ImageRecord

    return ImageRecord(image_id=f"{version}-{i:06d}-{ts.timestamp():.0f}", ts=ts, input_sha256=f"{i:064x}",
                       source="cli", model_version=version, variant=variant, processing_ms=ms, status=status,
                       num_faces=1 if status == "ok" else 0,
                       boxes=[{"x": 10.0, "y": 10.0, "w": 20.0, "h": 20.0, "score": 0.9}] if status == "ok" else [],
                       **kw)


def review(img, verdict: str, *, minutes: float = 1.0, index: int = 0):
    from faceguard.log import ReviewRecord

    box = {"x": 1.0, "y": 1.0, "w": 5.0, "h": 5.0} if verdict == "missed" else None
    return ReviewRecord(ts=img.ts + timedelta(minutes=minutes), image_id=img.image_id, reviewer="ann",
                        model_version=img.model_version, verdict=verdict,
                        detection_index=None if verdict == "missed" else index, box=box)
