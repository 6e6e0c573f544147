"""Labelled data set folders: the format of ``../shared/eval/``, read and validated.

Layout::

    images/<name>.jpg        the photos
    images.csv               image,width,height,n_faces,source,license   (one row per image)
    annotations.csv          image,x,y,w,h,ignore                        (one row per face box)

Boxes are in stored pixels, (x, y) the top-left corner; ``ignore=1`` marks boxes that count
neither way. Every error names the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from faceguard.errors import EvaluationError


@dataclass(frozen=True)
class LabelledImage:
    """One photo and its ground truth: (N, 4) xyxy boxes and an (N,) ignore mask."""

    name: str
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    ignore: np.ndarray

    @property
    def is_negative(self) -> bool:
        """No face box at all, ignored or not: every detection here is a false positive."""
        return len(self.boxes) == 0

    @property
    def n_faces(self) -> int:
        return int((~self.ignore).sum())

    def read(self) -> np.ndarray:
        """The photo as RGB uint8, in the stored pixel layout the boxes refer to."""
        data = np.fromfile(self.path, np.uint8)
        # Boxes are in stored pixels: EXIF orientation must not rotate the image under them.
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
        if bgr is None:
            raise EvaluationError(f"{self.path}: not a readable image")
        if bgr.shape[:2] != (self.height, self.width):
            raise EvaluationError(
                f"{self.path}: images.csv says {self.width}x{self.height}, the file is {bgr.shape[1]}x{bgr.shape[0]}"
            )
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Dataset:
    """A labelled data set: its folder, its images with their face boxes, and which labels were read."""

    root: Path
    images: tuple[LabelledImage, ...]
    fingerprint: str = ""  # sha256 of the two CSV files (first 16 hex): which labels were used

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_faces(self) -> int:
        return sum(im.n_faces for im in self.images)

    @property
    def n_negatives(self) -> int:
        return sum(im.is_negative for im in self.images)

    def subset(self, names: Iterable[str]) -> "Dataset":
        """The images named in ``names``, in data set order."""
        wanted = set(names)
        return Dataset(self.root, tuple(im for im in self.images if im.name in wanted), self.fingerprint)


def load_dataset(path: Path | str) -> Dataset:
    """Read and validate a data set folder; errors name the file and line."""
    root = Path(path)
    if not root.is_dir():
        raise EvaluationError(f"{root}: data set folder does not exist")
    images_csv, ann_csv = root / "images.csv", root / "annotations.csv"
    meta: dict[str, tuple[int, int, int]] = {}
    for line, row in _rows(images_csv, ("image", "width", "height", "n_faces")):
        name = row["image"]
        if name in meta:
            raise EvaluationError(f"{images_csv}:{line}: image {name!r} listed twice")
        w, h, n = (_int(images_csv, line, row, k, minimum=m) for k, m in (("width", 1), ("height", 1), ("n_faces", 0)))
        meta[name] = (w, h, n)
    boxes: dict[str, list[list[float]]] = {name: [] for name in meta}
    ignore: dict[str, list[bool]] = {name: [] for name in meta}
    for line, row in _rows(ann_csv, ("image", "x", "y", "w", "h", "ignore")):
        name = row["image"]
        if name not in meta:
            raise EvaluationError(f"{ann_csv}:{line}: image {name!r} is not in images.csv")
        x, y, w, h = (_float(ann_csv, line, row, k) for k in ("x", "y", "w", "h"))
        if w <= 0 or h <= 0:
            raise EvaluationError(f"{ann_csv}:{line}: box width and height must be positive, got w={w} h={h}")
        flag = row["ignore"].strip()
        if flag not in ("0", "1"):
            raise EvaluationError(f"{ann_csv}:{line}: ignore must be 0 or 1, got {flag!r}")
        boxes[name].append([x, y, x + w, y + h])
        ignore[name].append(flag == "1")
    out = []
    for name, (w, h, n) in meta.items():
        img_path = root / "images" / name
        if not img_path.is_file():
            raise EvaluationError(f"{images_csv}: image {name!r} has no file {img_path}")
        ign = np.asarray(ignore[name], bool)
        if int((~ign).sum()) != n:
            raise EvaluationError(
                f"{images_csv}: image {name!r} has n_faces={n} but annotations.csv has {int((~ign).sum())} non-ignored boxes"
            )
        out.append(LabelledImage(name, img_path, w, h, np.asarray(boxes[name], np.float32).reshape(-1, 4), ign))
    if not out:
        raise EvaluationError(f"{images_csv}: no images listed")
    digest = hashlib.sha256(images_csv.read_bytes() + b"\0" + ann_csv.read_bytes()).hexdigest()[:16]
    return Dataset(root, tuple(out), digest)


def _rows(path: Path, required: Sequence[str]):
    try:
        f = open(path, newline="")
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read ({exc.strerror})") from exc
    with f:
        reader = csv.DictReader(f)
        missing = [k for k in required if k not in (reader.fieldnames or [])]
        if missing:
            raise EvaluationError(f"{path}:1: missing column(s) {', '.join(missing)}; expected {','.join(required)}")
        for row in reader:
            if None in row or any(row.get(k) is None for k in required):
                raise EvaluationError(f"{path}:{reader.line_num}: expected {len(reader.fieldnames)} columns")
            yield reader.line_num, row


def _float(path: Path, line: int, row: dict, key: str) -> float:
    try:
        value = float(row[key])
    except ValueError:
        raise EvaluationError(f"{path}:{line}: {key} must be a number, got {row[key]!r}") from None
    if not math.isfinite(value):
        raise EvaluationError(f"{path}:{line}: {key} must be finite, got {row[key]!r}")
    return value


def _int(path: Path, line: int, row: dict, key: str, *, minimum: int) -> int:
    try:
        value = int(row[key])
    except ValueError:
        raise EvaluationError(f"{path}:{line}: {key} must be an integer, got {row[key]!r}") from None
    if value < minimum:
        raise EvaluationError(f"{path}:{line}: {key} must be >= {minimum}, got {value}")
    return value


__all__ = ["Dataset", "LabelledImage", "load_dataset"]
