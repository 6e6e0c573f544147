"""The one processing path: bytes -> decode -> detect -> anonymize -> encode -> log.

The CLI, the app and batch jobs all call ``Engine.process``. The engine holds no notion of a
"current model" of its own: for every image it asks its router (by default: the store's
``current`` pointer) which version serves it, so a switch reaches a running process with the
next image. An image keeps the ``LoadedModel`` it started with until it is done, so images in
flight finish on their version even while the pointer moves.

>>> engine = Engine.from_settings(Settings.load())            # doctest: +SKIP
>>> result = engine.process(Path("photo.jpg").read_bytes(), name="photo.jpg")  # doctest: +SKIP
>>> result.model_version, len(result.detections)               # doctest: +SKIP
('v1.1.0-prod', 3)
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from faceguard.anonymize import AnonymizeOptions, anonymize
from faceguard import media
from faceguard.config import Settings
from faceguard.detections import Detections, count_disagreements
from faceguard.detectors.cache import DetectorCache, LoadedModel
from faceguard.errors import DetectionError, FaceguardError, InputError, ModelError
from faceguard.log.records import Variant  # one enum for the engine and the log
from faceguard.registry import ModelStore


@dataclass(frozen=True)
class Assignment:
    """Which version serves one image, as which variant (stable, canary, pinned)."""

    version: str
    variant: Variant
    shadow_version: str | None = None  # also run this version (its boxes are compared and, by default, blurred too)


class Router(Protocol):
    """Chooses the version for one image from a stable key (the input's sha256)."""

    def assign(self, key: str) -> Assignment: ...


class CurrentRouter:
    """Every image goes to the store's current version (no canary)."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def assign(self, key: str) -> Assignment:
        return Assignment(self.store.current(), Variant.STABLE)


@dataclass(frozen=True)
class Result:
    """What one image produced. ``output`` is the encoded, metadata-free anonymized image."""

    image_id: str
    name: str | None
    input_sha256: str
    model_version: str
    variant: Variant
    detections: Detections  # the serving version's faces
    blurred: Detections  # what was actually anonymized (union with the shadow's when on)
    shadow_version: str | None
    shadow_detections: Detections | None
    width: int
    height: int
    format: str
    orientation: int
    orientation_applied: bool
    timings_ms: dict[str, float]
    output: bytes
    output_format: str
    flagged: bool = False
    flag_reason: str | None = None
    review_path: str | None = None
    anonymized: np.ndarray | None = field(default=None, repr=False)  # RGB, only when asked (previews)

    @property
    def total_ms(self) -> float:
        return self.timings_ms.get("total", 0.0)

    def to_dict(self) -> dict:
        """JSON-ready summary (what ``faceguard blur --json`` prints)."""
        return {
            "image_id": self.image_id,
            "name": self.name,
            "input_sha256": self.input_sha256,
            "model_version": self.model_version,
            "variant": self.variant.value,
            "faces": self.detections.to_records(),
            "blurred_faces": len(self.blurred),
            "shadow_version": self.shadow_version,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "exif_orientation": self.orientation,
            "orientation_applied": self.orientation_applied,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "flagged": self.flagged,
            "flag_reason": self.flag_reason,
        }


logger = logging.getLogger("faceguard")

RequestObserver = Callable[["ProcessOutcome"], None]
# Given the assignment whose version just failed (model or detector error) and the error, the
# assignment to serve the image with instead, or None to let the request fail. The rollback
# guard (faceguard.guard.Guard.fallback) supplies it.
Fallback = Callable[["Assignment", FaceguardError], "Assignment | None"]


@dataclass(frozen=True)
class ProcessOutcome:
    """What observers (the rollback guard) see after each request, success or failure."""

    model_version: str | None
    variant: Variant | None
    ok: bool
    error_code: str | None
    processing_ms: float
    shadow_disagreements: int = 0
    shadow_version: str | None = None  # set when a shadow run was compared (0 disagreements then means agreement)


class Engine:
    """The processing engine. Build with ``Engine.from_settings``; pass it around."""

    def __init__(
        self,
        settings: Settings,
        store: ModelStore,
        *,
        router: Router | None = None,
        log=None,
        review=None,
        source: str = "cli",
        observers: list[RequestObserver] | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.router: Router = router or CurrentRouter(store)
        self.log = log
        self.review = review
        self.source = source
        self.observers: list[RequestObserver] = list(observers or [])
        self.fallback = fallback
        self.detectors = DetectorCache(store)

    @classmethod
    def from_settings(cls, settings: Settings, *, source: str = "cli", with_log: bool = True, **kwargs) -> "Engine":
        """Engine wired to the settings' model store and processing log."""
        log = None
        recorder = None
        if with_log:
            from faceguard.log import LogWriter
            from faceguard.eventlog import LogEventRecorder

            log = LogWriter(settings, source=source)
            recorder = LogEventRecorder(log, actor_default=source)
        store = ModelStore.from_settings(settings, recorder=recorder)
        if "router" not in kwargs:
            from faceguard.rollout import CanaryRouter

            kwargs["router"] = CanaryRouter(store, settings)
        if "review" not in kwargs:
            from faceguard.review import ReviewSampler

            kwargs["review"] = ReviewSampler(settings)
        guard = kwargs.pop("guard", True)
        engine = cls(settings, store, log=log, source=source, **kwargs)
        if guard and engine.fallback is None:
            from faceguard.guard import Guard

            Guard(store, settings, log=log).attach(engine)  # rollback rules + fallback to the stable version
        return engine

    def close(self) -> None:
        """Release the detectors and close the log writer (which ingests what it spooled)."""
        self.detectors.close()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the pipeline ------------------------------------------------------------------------------
    def process(
        self,
        data: bytes,
        *,
        name: str | None = None,
        version: str | None = None,
        options: AnonymizeOptions | None = None,
        output_format: str | None = None,
        keep_array: bool = False,
        source: str | None = None,
    ) -> Result:
        """Anonymize one image. Raises ``InputError`` for bad input, ``ModelError`` when the
        version cannot be loaded, ``DetectionError`` when detection fails; every outcome,
        failures included, is logged."""
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        sha = hashlib.sha256(data).hexdigest()
        image_id = uuid.uuid4().hex
        source = source or self.source
        assignment: Assignment | None = None
        decoded = None
        try:
            t = time.perf_counter()
            decoded = media.decode(data, source=name, max_pixels=self.settings.max_pixels)
            timings["decode"] = _ms(t)

            assignment = Assignment(version, Variant.PINNED) if version else self.router.assign(sha)
            t = time.perf_counter()
            try:
                primary = self.detectors.get(assignment.version)
                load_ms = _ms(t)
                if load_ms > 1.0:
                    # A first use builds the detector (hundreds of ms, once per version and
                    # process). It is logged as its own stage and kept out of the image's
                    # processing time, which the latency rules judge.
                    timings["load"] = load_ms
                    t_start += load_ms / 1000.0
                t = time.perf_counter()
                found = _detect(primary, decoded.rgb)
            except (ModelError, DetectionError) as err:
                # Fallback hook: a canary or newly switched version that fails must not fail the
                # user's request. The failure gets its own log record and reaches the observers
                # against the version that failed (so it counts toward the rollback rules); the
                # image is then served once by the fallback version, whose failure is final.
                alt = self.fallback(assignment, err) if self.fallback is not None else None
                if alt is None or alt.version == assignment.version:
                    raise
                timings["failed_attempt"] = _ms(t)
                self._log_failure(uuid.uuid4().hex, sha, name, source, assignment, decoded,
                                  {**timings, "total": _ms(t_start)}, err)
                assignment = alt
                primary = self.detectors.get(assignment.version)
                t = time.perf_counter()
                found = _detect(primary, decoded.rgb)
            timings["detect"] = _ms(t)

            shadow_found = None
            blurred = found
            disagreements = 0
            if assignment.shadow_version:
                try:
                    shadow_model = self.detectors.get(assignment.shadow_version)
                    t = time.perf_counter()
                    shadow_found = _detect(shadow_model, decoded.rgb)
                    timings["shadow_detect"] = _ms(t)
                except FaceguardError:
                    shadow_found = None  # the shadow must never fail the user's request
                if shadow_found is not None:
                    disagreements = count_disagreements(found, shadow_found)
                    if self.settings.rollout.union_blur:
                        blurred = found.union(shadow_found)

            opts = options or AnonymizeOptions.from_dict(primary.manifest.anonymizer)
            t = time.perf_counter()
            out_rgb = anonymize(decoded.rgb, blurred, opts)
            timings["anonymize"] = _ms(t)

            fmt = output_format or media.output_format_for_input(decoded.format)
            t = time.perf_counter()
            encoded = media.encode(out_rgb, format=fmt, quality=self.settings.jpeg_quality)
            timings["encode"] = _ms(t)
        except (InputError, ModelError, DetectionError) as err:
            timings["total"] = _ms(t_start)
            self._log_failure(image_id, sha, name, source, assignment, decoded, timings, err)
            raise

        flagged, reason, review_path = False, None, None
        if self.review is not None:
            flagged, reason, review_path = self.review.consider(
                image_id=image_id, input_sha256=sha, rgb=decoded.rgb, detections=found,
                threshold=primary.manifest.confidence_threshold, variant=assignment.variant.value,
                disagreements=disagreements,
            )
        timings["total"] = _ms(t_start)
        result = Result(
            image_id=image_id, name=name, input_sha256=sha, model_version=primary.version,
            variant=assignment.variant, detections=found, blurred=blurred,
            shadow_version=assignment.shadow_version if shadow_found is not None else None,
            shadow_detections=shadow_found, width=decoded.width, height=decoded.height,
            format=decoded.format, orientation=decoded.orientation,
            orientation_applied=decoded.orientation_applied, timings_ms=timings, output=encoded,
            output_format=fmt, flagged=flagged, flag_reason=reason, review_path=review_path,
            anonymized=out_rgb if keep_array else None,
        )
        self._log_success(result, source)
        self._notify(ProcessOutcome(primary.version, assignment.variant, True, None, timings["total"], disagreements,
                                    shadow_version=result.shadow_version))
        return result

    # -- logging -----------------------------------------------------------------------------------
    def _write(self, make_record: Callable[[], object]) -> None:
        """Logging never fails the user's request (the spool absorbs DB trouble; a record that
        cannot even be built is a bug, reported on the ``faceguard`` logger, not to the user)."""
        if self.log is None:
            return
        try:
            self.log.write(make_record())
        except Exception:  # noqa: BLE001 - see docstring
            logger.exception("could not log a processing record")

    def _log_success(self, r: Result, source: str) -> None:
        from faceguard.log import ImageRecord

        self._write(lambda: ImageRecord(
            image_id=r.image_id, input_sha256=r.input_sha256, source=source,
            model_version=r.model_version, variant=r.variant.value, num_faces=len(r.detections),
            boxes=r.detections.to_records(), processing_ms=r.total_ms,
            stage_ms={k: round(v, 3) for k, v in r.timings_ms.items() if k != "total"},  # incl. 'load' 
            width=r.width, height=r.height, status="ok", error=None, flagged=r.flagged,
            flag_reason=r.flag_reason, shadow_version=r.shadow_version,
            shadow_boxes=r.shadow_detections.to_records() if r.shadow_detections is not None else None,
            union_blur=bool(r.shadow_detections is not None and self.settings.rollout.union_blur),
            review_path=r.review_path,
        ))

    def _log_failure(self, image_id, sha, name, source, assignment, decoded, timings, err) -> None:
        code = getattr(err, "code", "error")  # the log's status column, e.g. "not_an_image"
        # Bad input is the caller's fault, not the model's: it is logged but not held against
        # the version by the rollback rules.
        counts_against_model = not isinstance(err, InputError)
        version = assignment.version if assignment else None
        from faceguard.log import ImageRecord

        self._write(lambda: ImageRecord(
            image_id=image_id, input_sha256=sha, source=source,
            model_version=version or "-", variant=(assignment.variant.value if assignment else "stable"),
            num_faces=0, boxes=[], processing_ms=timings.get("total", 0.0),
            stage_ms={k: round(v, 3) for k, v in timings.items() if k != "total"},
            width=decoded.width if decoded else None, height=decoded.height if decoded else None,
            status=code, error=str(err)[:500],
        ))
        if counts_against_model:
            self._notify(ProcessOutcome(version, assignment.variant if assignment else None, False, code,
                                        timings.get("total", 0.0)))

    def _notify(self, outcome: ProcessOutcome) -> None:
        for observer in self.observers:
            observer(outcome)


def _detect(model: LoadedModel, rgb: np.ndarray) -> Detections:
    try:
        return model.detector.detect(rgb)
    except FaceguardError:
        raise
    except Exception as exc:  # a detector bug must become a logged, per-image failure
        raise DetectionError(model.version, f"{type(exc).__name__}: {exc}") from exc


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


__all__ = [
    "Assignment", "CurrentRouter", "DetectorCache", "Engine", "LoadedModel", "ProcessOutcome",
    "Result", "Router", "Variant", "count_disagreements",
]
