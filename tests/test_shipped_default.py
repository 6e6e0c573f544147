"""The store as shipped: its current version verifies and anonymizes a real face."""

import os

import numpy as np

from faceguard.config import Settings
from faceguard.detections import iou_matrix
from faceguard.pipeline import Engine
from faceguard.registry import ModelStore, Version
from tests.conftest import ASTRONAUT_FACE, MODELS


def test_shipped_current_is_a_verified_stable_version():
    store = ModelStore(MODELS)
    current = store.current()
    assert os.path.islink(MODELS / "current")
    assert Version.parse(current).is_stable
    m = store.verify(current)
    ev = m.performance_benchmarks.evaluation
    assert ev is None or ev["recall"] > 0.8  # the default was chosen for recall on distant faces
    assert len([v for v in store.versions() if Version.parse(v).is_stable]) >= 2


def test_shipped_default_finds_and_blurs_the_astronaut(tmp_path, astronaut_jpeg):
    settings = Settings.load({"FACEGUARD_HOME": str(tmp_path), "FACEGUARD_MODELS": str(MODELS)})
    with Engine(settings, ModelStore(MODELS)) as engine:
        r = engine.process(astronaut_jpeg, name="astronaut.jpg")
    assert r.model_version == ModelStore(MODELS).current()
    assert iou_matrix(r.detections.xyxy, np.array([ASTRONAUT_FACE]))[:, 0].max() > 0.5
    assert len(r.detections) == 1
