"""Batch anonymization of files and folders, used by ``faceguard blur`` and batch jobs.

A bad file never stops the batch: its error is collected and the next file goes on. Every
output is written to a temp file and renamed, so a crash leaves whole files only.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from faceguard import media
from faceguard.errors import FaceguardError, InputError
from faceguard.pipeline import Engine, Result

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}


@dataclass(frozen=True)
class Job:
    """One input file and the output path it is written to (before the format's extension)."""

    source: Path
    target: Path


@dataclass
class BatchReport:
    """What a batch produced: the results of the files that worked and the error of each that did not."""

    results: list[tuple[Job, Result]] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def faces(self) -> int:
        return sum(len(r.detections) for _, r in self.results)


def plan(paths: Iterable[Path], out_dir: Path) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Inputs to outputs. A named file is always tried; a folder contributes the image files
    below it (recursively), mirrored under ``out_dir``. Missing paths are failures."""
    jobs: list[Job] = []
    missing: list[tuple[Path, str]] = []
    taken: set[Path] = set()

    def add(src: Path, rel: Path) -> None:
        target = out_dir / rel
        n = 1
        while target in taken:  # two inputs with one name: keep both
            target = target.with_name(f"{rel.stem}-{n}{rel.suffix}")
            n += 1
        taken.add(target)
        jobs.append(Job(src, target))

    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                    add(f, f.relative_to(p))
        elif p.exists():
            add(p, Path(p.name))
        else:
            missing.append((p, "no such file or folder"))
    return jobs, missing


def run(
    engine: Engine,
    jobs: list[Job],
    *,
    version: str | None = None,
    options=None,
    workers: int = 1,
    on_done: Callable[[Job, Result | None, str | None], None] | None = None,
) -> BatchReport:
    """Process ``jobs`` with ``workers`` threads; collects failures instead of stopping."""
    report = BatchReport()
    lock = threading.Lock()

    def one(job: Job) -> None:
        result, error = None, None
        try:
            data = media.read_bytes(job.source)
            result = engine.process(data, name=str(job.source), version=version, options=options)
            target = media.path_for_format(job.target, result.output_format)  # a GIF becomes a PNG
            target.parent.mkdir(parents=True, exist_ok=True)
            media.write_atomic(target, result.output)
        except FaceguardError as exc:
            error = str(exc) if isinstance(exc, InputError) else f"{job.source}: {exc}"
        except OSError as exc:  # e.g. output folder not writable
            error = f"{job.source}: {exc.strerror or exc}"
        with lock:
            if error:
                report.failures.append((job.source, error))
            else:
                report.results.append((job, result))
            if on_done:
                on_done(job, result, error)

    if workers <= 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, jobs))
    return report
