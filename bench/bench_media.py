"""Decode, encode and anonymize times, single thread.

Run: `.venv/bin/python -m bench.bench_media` (or `make bench`). Photos are real pictures
(``bench.photos.scene``), not noise, because JPEG and blur costs depend on content. Each
case runs once to warm up, then `REPEATS` times; p50 and p95 are reported in ms.

The Pillow-only and raw OpenCV decode rows are there to justify ``media.decode``'s choice of
OpenCV for sound JPEGs; the "0 faces" anonymize row is the cost of the defensive copy.
"""

from __future__ import annotations

import io
import os
import time
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.photos import jpeg, scene  # noqa: E402
from faceguard import media  # noqa: E402
from faceguard.anonymize import AnonymizeOptions, MaskShape, Mode, anonymize  # noqa: E402
from faceguard.detections import Detections  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "25"))
SIZES = {"1920x1080": (1920, 1080), "4000x3000": (4000, 3000)}


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def _row(op: str, case: str, fn: Callable[[], object], repeats: int = REPEATS) -> dict:
    p50, p95 = _time(fn, repeats)
    return {"op": op, "case": case, "p50_ms": p50, "p95_ms": p95}


def _grid_faces(count: int, width: int, height: int) -> Detections:
    """``count`` square faces on a grid, each as large as the grid allows (at most 300 px)."""
    if count == 0:
        return Detections.empty()
    cols = int(np.ceil(np.sqrt(count * width / height)))
    rows = int(np.ceil(count / cols))
    side = min(300.0, 0.6 * min(width / cols, height / rows))
    boxes = [
        [(i % cols + 0.2) * width / cols, (i // cols + 0.2) * height / rows, side, side] for i in range(count)
    ]
    return Detections.from_xywh(boxes)


def _pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def run() -> list[dict]:
    cv2.setNumThreads(1)
    repeats_big = max(5, REPEATS // 3)
    rows: list[dict] = []
    for name, (w, h) in SIZES.items():
        rgb = scene(w, h)
        data = jpeg(rgb, quality=90)
        n = REPEATS if w * h < 5e6 else repeats_big
        rows.append(_row("decode", f"{name} JPEG", lambda: media.decode(data), n))
        rows.append(_row("decode (Pillow only)", f"{name} JPEG", lambda: _pillow_decode(data), n))
        raw = np.frombuffer(data, np.uint8)
        rows.append(_row("decode (raw cv2.imdecode)", f"{name} JPEG", lambda: cv2.imdecode(raw, cv2.IMREAD_COLOR_RGB), n))
        for fmt in media.WRITABLE_FORMATS:
            rows.append(_row("encode", f"{name} {fmt} q90", lambda fmt=fmt: media.encode(rgb, format=fmt, quality=90), n if fmt == "JPEG" else 3))

    rgb = scene(1920, 1080)
    blur = AnonymizeOptions()
    for count in (0, 1, 10, 100):
        det = _grid_faces(count, 1920, 1080)
        side = int(det.width[0]) if len(det) else 0
        rows.append(_row("anonymize blur", f"1920x1080, {count} faces ({side} px)", lambda det=det: anonymize(rgb, det, blur)))

    one = Detections.from_xywh([[800, 300, 300, 300]])
    baseline = _time(lambda: anonymize(rgb, Detections.empty(), blur), REPEATS)[0]
    for mode in Mode:
        for mask in MaskShape:
            options = AnonymizeOptions(mode=mode, mask=mask)
            row = _row(f"one 300 px face, {mode.value}", f"{mask.value} (copy of the image excluded)",
                       lambda options=options: anonymize(rgb, one, options))  # fmt: skip
            row["p50_ms"] -= baseline
            row["p95_ms"] -= baseline
            rows.append(row)
    gauss = rgb[225:675, 725:1175].copy()
    rows.append(_row("reference: cv2.GaussianBlur", "450x450 region, sigma 50", lambda: cv2.GaussianBlur(gauss, (0, 0), 50), 5))
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Media and anonymize, single thread, ms (cv2 {cv2.__version__})")
    for column in ("op", "case", "p50", "p95"):
        table.add_column(column, justify="right" if column in ("p50", "p95") else "left")
    for r in rows:
        table.add_row(r["op"], r["case"], f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    print_table(run())
