"""Evaluation of a detector on a labelled folder: the internal-test stage of a release.

``load_dataset`` reads a folder in the format of ``../shared/eval/`` (``dataset.py``),
``evaluate`` runs a detector over it and scores it with the data set's matching rule
(``scoring.py``), and ``evaluate_version`` is the verb behind ``faceguard eval``: a stored,
sha256-verified version evaluated and its figures recorded in its manifest and the log, so a
canary can be required to meet a bar and the dashboard can show every version's figures and
precision-recall curve.

>>> ds = load_dataset(Path("../shared/eval"))                          # doctest: +SKIP
>>> report = evaluate(detector, ds)                                     # doctest: +SKIP
>>> report.recall, report.small_recall, report.fp_per_100_negatives    # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from faceguard.detections import Detections
from faceguard.detectors.base import Detector
from faceguard.evaluate.dataset import Dataset, LabelledImage, load_dataset
from faceguard.evaluate.scoring import (
    EvaluationReport, ImageMatch, Outcome, average_precision, match_image, size_bucket,
)


# -- running a detector ---------------------------------------------------------------------------
def evaluate(
    detector: Detector,
    dataset: Dataset,
    *,
    progress: bool = True,
    limit: int | None = None,
    threshold: float | None = None,
    on_image: Callable[[LabelledImage, Detections], None] | None = None,
) -> EvaluationReport:
    """Run ``detector`` on every image (reading is not timed, detection is) and score it.

    ``limit`` keeps the first N images (a quick smoke run); ``threshold`` is only recorded in
    the report (the detector applies its own); ``on_image`` sees every result (for analysis).
    """
    if limit is not None:
        dataset = Dataset(dataset.root, dataset.images[: max(0, limit)], dataset.fingerprint)
    matches, latencies = [], []
    with _progress(progress, len(dataset.images)) as advance:
        for im in dataset.images:
            image = im.read()
            t0 = time.perf_counter()
            found = detector.detect(image)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            if on_image is not None:
                on_image(im, found)
            matches.append(match_image(found.xyxy, found.confidence, im.boxes, im.ignore))
            advance()
    return EvaluationReport.from_matches(dataset, matches, latencies_ms=latencies, threshold=threshold)


class _progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._bar = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("eval", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- the engine verb behind `faceguard eval` -----------------------------------------------------
@dataclass(frozen=True)
class VersionEvaluation:
    """One version evaluated: the report plus what the run cost the machine."""

    version: str
    report: EvaluationReport
    wall_s: float
    cpu_percent: float  # process CPU time / wall time (100 = one core busy)
    memory_peak_mb: float  # peak resident memory of the process
    recorded: bool  # written to the manifest and the log

    def benchmarks(self) -> dict[str, float]:
        """The manifest's ``performance_benchmarks`` figures besides ``evaluation``."""
        return {
            "avg_inference_time_ms": round(self.report.latency_ms_mean or 0.0, 2),
            "cpu_usage_percent": round(self.cpu_percent, 1),
            "memory_peak_mb": round(self.memory_peak_mb, 1),
        }


def evaluate_version(
    store,
    version: str,
    dataset: Dataset,
    *,
    progress: bool = True,
    limit: int | None = None,
    write_manifest: bool = True,
    log=None,
) -> VersionEvaluation:
    """Evaluate a stored version (sha256-verified) on ``dataset`` and record the result.

    Recording = the figures in the version's manifest ``performance_benchmarks`` (when
    ``write_manifest``) and an ``EvaluationRecord`` on ``log`` (anything with ``write``). A run
    with ``limit`` is a smoke test and records nothing: a partial figure must never stand in
    for the version's evaluation when a canary is judged.
    """
    from faceguard.detectors import build_detector

    manifest, model = store.load(version)
    detector = build_detector(manifest, model)
    try:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        report = evaluate(detector, dataset, progress=progress, limit=limit, threshold=manifest.confidence_threshold)
        wall = time.perf_counter() - t0
        cpu = 100.0 * (_cpu_seconds() - cpu0) / max(wall, 1e-9)
    finally:
        detector.close()
    run = VersionEvaluation(version, report, wall, cpu, _peak_rss_mb(), recorded=limit is None)
    if run.recorded:
        if write_manifest:
            store.write_manifest(manifest.with_evaluation(report.to_dict(), **run.benchmarks()))
        if log is not None:
            from faceguard.log import EvaluationRecord

            metrics = {k: v for k, v in report.to_dict().items() if k != "pr_curve"}
            metrics.update(run.benchmarks())
            log.write(EvaluationRecord(model_version=version, dataset=report.dataset, metrics=metrics, pr_curve=report.pr_curve))
    return run


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _peak_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    except ImportError:  # pragma: no cover - not on POSIX
        import psutil

        return psutil.Process().memory_info().rss / 2**20


__all__ = [
    "Dataset", "EvaluationReport", "ImageMatch", "LabelledImage", "Outcome", "VersionEvaluation",
    "average_precision", "evaluate", "evaluate_version", "load_dataset", "match_image", "size_bucket",
]
