"""Shared fixtures: temporary model stores and data folders, real photos as bytes.

Tests never touch the repo's models/ or data/: ``fg_env`` copies models/ into tmp_path and
points FACEGUARD_MODELS / FACEGUARD_HOME / FACEGUARD_DB there.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
EVAL_SET = REPO.parent / "shared" / "eval"

# scikit-image's astronaut photo: one frontal face (Eileen Collins). The box is read off the
# image by hand (forehead to chin), an input of the tests, not a detector's output.
ASTRONAUT_FACE = (175, 70, 275, 180)  # x1, y1, x2, y2


def _copy_models(dest: Path) -> Path:
    shutil.copytree(MODELS, dest, symlinks=True, ignore=shutil.ignore_patterns(".registry.lock", "*.tmp"))
    return dest


# The shipped default is the CenterFace v2.0.0-prod; most tests run the store with the fast
# BlazeFace v1.1.0-prod current so they stay quick. tests/test_shipped_default.py covers the
# shipped default itself.
TEST_CURRENT = "v1.1.0-prod"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped model store, with v1.1.0-prod current."""
    dest = _copy_models(tmp_path / "models")
    (dest / "current").unlink()
    (dest / "current").symlink_to(TEST_CURRENT)
    return dest


@pytest.fixture
def fg_env(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing at a private model store, data folder and DuckDB file."""
    from faceguard.config import Settings

    home = tmp_path / "data"
    home.mkdir()
    monkeypatch.setenv("FACEGUARD_HOME", str(home))
    monkeypatch.setenv("FACEGUARD_MODELS", str(models_dir))
    monkeypatch.setenv("FACEGUARD_DB", str(home / "faceguard.duckdb"))
    monkeypatch.delenv("FACEGUARD_CONFIG", raising=False)
    monkeypatch.delenv("FACEGUARD_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray faceguard.toml from the repo
    return Settings.load()


def jpeg_bytes(rgb: np.ndarray, quality: int = 92, exif: bytes | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    kwargs = {"quality": quality}
    if exif is not None:
        kwargs["exif"] = exif
    Image.fromarray(rgb).save(buf, format="JPEG", **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut) -> bytes:
    return jpeg_bytes(astronaut)


@pytest.fixture(scope="session")
def no_face_jpegs() -> list[bytes]:
    """Real photos without a human face (a cat, a coffee cup, a rocket)."""
    import skimage.data

    return [jpeg_bytes(np.ascontiguousarray(f())) for f in (skimage.data.chelsea, skimage.data.coffee, skimage.data.rocket)]


@pytest.fixture(scope="session")
def eval_set() -> Path:
    if not (EVAL_SET / "annotations.csv").exists():
        pytest.skip(f"the labelled evaluation set is not here ({EVAL_SET}); it is not part of the project")
    return EVAL_SET
