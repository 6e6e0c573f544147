"""Human review of flagged images: the queue, blurred previews, logged reveals, verdicts.

Images are kept for review only while review sampling is on (see ``faceguard.review``):
``$FACEGUARD_HOME/review/<date>/<image_id>.jpg``, upright RGB, no metadata, deleted after
``review.retention_days``. Privacy holds here too: a reviewer sees the whole image only
heavily blurred (:func:`blurred_preview`), and sees one face sharp at a time through
:func:`reveal_face`, which logs who revealed which face of which image, and when, as an
``EventRecord(kind="reveal")`` before the pixels are returned.

Verdicts go to the log as ``ReviewRecord`` rows (one per detection, one per missed face) and
are ingested at once, so the metrics and the queue see them on the next read.

>>> item = next_for_review(settings, "ann")                      # doctest: +SKIP
>>> preview = blurred_preview(settings, item.image_id)           # doctest: +SKIP
>>> submit_verdicts(settings, item.image_id, "ann", {0: "correct"}, [])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from faceguard import media
from faceguard.config import Settings
from faceguard.detections import Detections
from faceguard.errors import InputError, ReviewError
from faceguard.review import review_image_path

# The preview keeps about this many cells along the image's long side: people and heads stay
# visible as shapes (enough to judge "is there a face here?"), faces do not stay recognisable.
PREVIEW_CELLS_LONG_SIDE = 24
REVEAL_MARGIN = 0.3  # share of the box added on each side of a revealed crop
QUEUE_BATCH = 200  # queue rows read per look-up when skipping entries whose image is gone

JUDGEMENTS = ("correct", "false_positive")  # per detection; "missed" comes with a box


@dataclass(frozen=True)
class ReviewItem:
    """One flagged image waiting for review, with what the serving version found."""

    image_id: str
    ts: datetime
    model_version: str
    variant: str
    flag_reason: str | None
    review_path: str | None
    width: int
    height: int
    detections: Detections
    shadow_version: str | None = None
    shadow_detections: Detections | None = None
    queue_size: int = 0  # images waiting (with a kept image), this one included; capped at QUEUE_BATCH
    reasons: tuple[str, ...] = field(default=())

    @property
    def n_faces(self) -> int:
        return len(self.detections)


# -- the queue -------------------------------------------------------------------------------------
def next_for_review(settings: Settings, reviewer: str | None, *, skip: Collection[str] = ()) -> ReviewItem | None:
    """The newest flagged image this reviewer has not reviewed, whose kept image still exists.

    ``skip`` lists image ids the reviewer passed over in this session. Entries whose image was
    deleted (retention) or never kept are passed over: there is nothing to look at.
    """
    from faceguard.log import queries

    rows = queries.review_queue(settings, limit=QUEUE_BATCH + len(skip), reviewer=reviewer or None)
    available = [r for r in rows.to_dict("records") if r["image_id"] not in skip and _kept(settings, r)]
    if not available:
        return None
    return replace(_item(available[0]), queue_size=len(available))


def _kept(settings: Settings, row: Mapping[str, Any]) -> bool:
    return _kept_file(settings, row.get("review_path")) is not None


def _kept_file(settings: Settings, review_path: Any) -> Path | None:
    # A path outside the review folder (review_image_path refuses it) counts as not kept.
    if not review_path:
        return None
    try:
        path = review_image_path(settings, str(review_path))
    except ValueError:
        return None
    return path if path.is_file() else None


def _item(row: Mapping[str, Any]) -> ReviewItem:
    shadow = row.get("shadow_boxes")
    reason = row.get("flag_reason") or None
    return ReviewItem(
        image_id=str(row["image_id"]), ts=row["ts"], model_version=str(row["model_version"]),
        variant=str(row["variant"]), flag_reason=reason, review_path=row.get("review_path") or None,
        width=int(row.get("width") or 0), height=int(row.get("height") or 0),
        detections=Detections.from_records(row.get("boxes") or []),
        shadow_version=row.get("shadow_version") or None,
        shadow_detections=Detections.from_records(shadow) if isinstance(shadow, list) else None,
        reasons=tuple(r for r in (reason or "").split(",") if r),
    )


def get_item(settings: Settings, image_id: str) -> ReviewItem:
    """The logged image ``image_id`` as a review item; ``ReviewError`` when it is not in the log."""
    from faceguard.log import queries

    rows = queries.image_by_hash(settings, image_id)
    rows = rows[rows["image_id"] == image_id] if len(rows) else rows
    if not len(rows):
        raise ReviewError(image_id, "not in the processing log")
    return _item(rows.iloc[0].to_dict())


# -- pixels ----------------------------------------------------------------------------------------
def _load_rgb(settings: Settings, item: ReviewItem) -> np.ndarray:
    if not item.review_path:
        raise ReviewError(item.image_id, "its pixels were not kept (review sampling was off for it)")
    try:
        path = review_image_path(settings, item.review_path)
    except ValueError as exc:
        raise ReviewError(item.image_id, str(exc)) from exc
    try:
        data = media.read_bytes(path)
    except (InputError, OSError) as exc:
        raise ReviewError(item.image_id, "its kept image is gone (deleted after the retention period)") from exc
    return media.decode(data, source=path.name, max_pixels=settings.max_pixels).rgb


def blurred_preview(
    settings: Settings, image_id: str, *, item: ReviewItem | None = None,
    extra_boxes: Sequence[Mapping[str, float]] = (), show_boxes: bool = True,
) -> np.ndarray:
    """The kept image blurred all over (about ``PREVIEW_CELLS_LONG_SIDE`` cells along the long
    side), with the detections numbered 1..N in green and ``extra_boxes`` ({x, y, w, h}, e.g.
    missed faces being added) in orange. Nothing sharp leaves this function."""
    item = item or get_item(settings, image_id)
    rgb = _load_rgb(settings, item)
    h, w = rgb.shape[:2]
    scale = PREVIEW_CELLS_LONG_SIDE / max(h, w)
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = Image.fromarray(rgb).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BICUBIC)
    im = im.filter(ImageFilter.GaussianBlur(radius=max(1.0, max(h, w) / PREVIEW_CELLS_LONG_SIDE / 4)))
    if show_boxes:
        _draw(im, item.detections.to_records(), (0, 230, 0), numbered=True)
        _draw(im, list(extra_boxes), (255, 140, 0), numbered=False)
    return np.asarray(im)


def _draw(im: Image.Image, boxes: Sequence[Mapping[str, float]], color: tuple[int, int, int], *, numbered: bool) -> None:
    draw = ImageDraw.Draw(im)
    width = max(2, round(max(im.size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(im.size) / 35)))
    for i, b in enumerate(boxes):
        x1, y1 = float(b["x"]), float(b["y"])
        x2, y2 = x1 + float(b["w"]), y1 + float(b["h"])
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        if numbered:
            label = str(i + 1)
            left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
            ty = y1 - (bottom - top) - 2 * width if y1 - (bottom - top) - 2 * width >= 0 else y1
            draw.rectangle([x1, ty, x1 + right - left + 2 * width, ty + bottom - top + 2 * width], fill=color)
            draw.text((x1 + width - left, ty + width - top), label, fill=(0, 0, 0), font=font)


def reveal_face(
    settings: Settings, image_id: str, index: int, reviewer: str, *, item: ReviewItem | None = None,
    writer=None,
) -> np.ndarray:
    """The sharp crop of detection ``index`` (with a margin). The reveal is logged first (who,
    when, which image and face): no log record, no pixels."""
    item = item or get_item(settings, image_id)
    if not 0 <= index < len(item.detections):
        raise ReviewError(image_id, f"has {len(item.detections)} detections; there is no face number {index + 1}")
    box = item.detections.to_records()[index]
    return _reveal(settings, item, box, reviewer, writer=writer, detection_index=index)


def reveal_region(
    settings: Settings, image_id: str, box: Mapping[str, float], reviewer: str, *, item: ReviewItem | None = None,
    writer=None,
) -> np.ndarray:
    """Like :func:`reveal_face` for a region the reviewer marked (a face the detector missed)."""
    item = item or get_item(settings, image_id)
    return _reveal(settings, item, _box(box), reviewer, writer=writer, detection_index=None)


def _reveal(settings: Settings, item: ReviewItem, box: Mapping[str, float], reviewer: str, *, writer,
            detection_index: int | None) -> np.ndarray:
    from faceguard.log import EventRecord

    reviewer = _reviewer(reviewer, item.image_id)
    rgb = _load_rgb(settings, item)  # fails before logging a reveal of pixels that do not exist
    h, w = rgb.shape[:2]
    x, y, bw, bh = (float(box[k]) for k in ("x", "y", "w", "h"))
    x1 = max(0, math.floor(x - bw * REVEAL_MARGIN))
    y1 = max(0, math.floor(y - bh * REVEAL_MARGIN))
    x2 = min(w, math.ceil(x + bw * (1 + REVEAL_MARGIN)))
    y2 = min(h, math.ceil(y + bh * (1 + REVEAL_MARGIN)))
    if x2 <= x1 or y2 <= y1:
        raise ReviewError(item.image_id, f"box {dict(box)} lies outside the {w}x{h} image")
    what = f"face {detection_index + 1}" if detection_index is not None else "a marked region"
    record = EventRecord(
        kind="reveal", actor=reviewer, from_version=item.model_version, to_version=None,
        reason=f"review: revealed {what} of image {item.image_id}",
        evidence={"image_id": item.image_id, "detection_index": detection_index,
                  "box": {k: round(float(box[k]), 1) for k in ("x", "y", "w", "h")}},
    )
    with _writer(settings, writer) as log:
        log.write(record)
    return np.ascontiguousarray(rgb[y1:y2, x1:x2])


# -- verdicts --------------------------------------------------------------------------------------
def submit_verdicts(
    settings: Settings, image_id: str, reviewer: str, verdicts: Mapping[int, str],
    missed_boxes: Sequence[Mapping[str, float]] = (), *, item: ReviewItem | None = None, writer=None,
) -> list:
    """Log one ``ReviewRecord`` per judged detection (``verdicts``: index -> ``"correct"`` or
    ``"false_positive"``) and one ``"missed"`` record per box in ``missed_boxes`` ({x, y, w, h}
    in image pixels), then ingest them. Every detection must be judged, so the image's
    precision counts are whole. Returns the records written."""
    from faceguard.log import ReviewRecord

    item = item or get_item(settings, image_id)
    reviewer = _reviewer(reviewer, image_id)
    n = len(item.detections)
    unknown = sorted(set(verdicts) - set(range(n)))
    if unknown:
        raise ReviewError(image_id, f"has {n} detections; no face number {unknown[0] + 1}")
    missing = [i + 1 for i in range(n) if i not in verdicts]
    if missing:
        raise ReviewError(image_id, f"face(s) {', '.join(map(str, missing))} still need a verdict")
    for i, v in verdicts.items():
        if v not in JUDGEMENTS:
            raise ReviewError(image_id, f"verdict for face {i + 1} must be one of {', '.join(JUDGEMENTS)}, got {v!r}")
    records = [
        ReviewRecord(image_id=image_id, reviewer=reviewer, model_version=item.model_version, verdict=v,
                     detection_index=int(i))
        for i, v in sorted(verdicts.items())
    ]
    records += [
        ReviewRecord(image_id=image_id, reviewer=reviewer, model_version=item.model_version, verdict="missed",
                     box=_box(b))
        for b in missed_boxes
    ]
    if not records:  # a review row needs a detection or a box: an image with neither cannot be recorded
        raise ReviewError(image_id, "nothing to record: no detections and no missed face marked")
    with _writer(settings, writer) as log:
        for r in records:
            log.write(r)
    return records


def _box(b: Mapping[str, float]) -> dict[str, float]:
    try:
        box = {k: round(float(b[k]), 1) for k in ("x", "y", "w", "h")}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a box needs numeric x, y, w, h; got {dict(b)!r}") from exc
    if box["w"] <= 0 or box["h"] <= 0:
        raise ValueError(f"a box needs positive width and height; got {box}")
    return box


def _reviewer(name: str | None, image_id: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ReviewError(image_id, "a reviewer name is required (it is logged with every verdict and reveal)")
    return name


@contextmanager
def _writer(settings: Settings, writer) -> Iterator[Any]:
    """The caller's log writer, or a short-lived one; either way the records are ingested at the
    end so the next read (queue, metrics, history) sees them."""
    if writer is not None:
        yield writer
        writer.ingest_now()
        return
    from faceguard.log import LogWriter

    own = LogWriter(settings, source="app", autoingest=False)
    try:
        yield own
    finally:
        own.close()


def kept_image_path(settings: Settings, item: ReviewItem) -> Path | None:
    """Where the item's kept image is, if it still exists."""
    return _kept_file(settings, item.review_path)


__all__ = [
    "JUDGEMENTS", "ReviewError", "ReviewItem", "blurred_preview", "get_item", "kept_image_path", "next_for_review",
    "reveal_face", "reveal_region", "submit_verdicts",
]
