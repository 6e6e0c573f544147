"""End-to-end and per-stage time of the real pipeline, per shipped version, single thread.

Run: `.venv/bin/python -m bench.bench_pipeline` (or `make bench`). Each image size is
processed `REPEATS` times per version through `Engine.process` with the processing log on
(spool writes included), after one warm-up call that builds the detector.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.photos import jpeg, scene  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "25"))
SIZES = {"1920x1080": (1920, 1080), "4000x3000": (4000, 3000)}
STAGES = ["decode", "detect", "anonymize", "encode", "total"]


def run(versions: list[str] | None = None) -> list[dict]:
    from faceguard.config import Settings
    from faceguard.pipeline import Engine
    from faceguard.registry import ModelStore

    cv2.setNumThreads(1)
    repo = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.load({"FACEGUARD_HOME": home, "FACEGUARD_MODELS": str(repo / "models")})
        store = ModelStore.from_settings(settings)
        versions = versions or store.versions()
        images = {name: jpeg(scene(w, h)) for name, (w, h) in SIZES.items()}
        with Engine.from_settings(settings, source="batch") as engine:
            for version in versions:
                for name, data in images.items():
                    engine.process(data, version=version)  # warm-up: builds the detector
                    samples = {s: [] for s in STAGES}
                    faces = 0
                    for _ in range(REPEATS):
                        r = engine.process(data, version=version)
                        faces = len(r.detections)
                        for s in STAGES:
                            samples[s].append(r.timings_ms.get(s, 0.0))
                    row = {"version": version, "image": name, "faces": faces}
                    for s in STAGES:
                        row[f"{s}_p50"] = float(np.percentile(samples[s], 50))
                        row[f"{s}_p95"] = float(np.percentile(samples[s], 95))
                    rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Pipeline, single thread, ms (p50 / p95)")
    for col in ["version", "image", "faces", *STAGES]:
        t.add_column(col, justify="right" if col not in ("version", "image") else "left")
    for r in rows:
        t.add_row(r["version"], r["image"], str(r["faces"]),
                  *[f"{r[f'{s}_p50']:.1f} / {r[f'{s}_p95']:.1f}" for s in STAGES])
    Console(width=200).print(t)


if __name__ == "__main__":
    print_table(run())
