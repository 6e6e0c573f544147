"""``faceguard blur``: anonymize files and folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from faceguard import batch
from faceguard.anonymize import AnonymizeOptions, MaskShape, Mode
from faceguard.cli import handles_errors
from faceguard.config import Settings
from faceguard.pipeline import Engine


@handles_errors
def blur_command(
    paths: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; folder inputs are mirrored inside it."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Version to use (default: the current one, or the canary split)."),
    mode: Optional[Mode] = typer.Option(None, "--mode", case_sensitive=False, help="blur, pixelate or solid (default: the version's setting)."),
    mask: Optional[MaskShape] = typer.Option(None, "--mask", case_sensitive=False, help="ellipse or box."),
    margin: Optional[float] = typer.Option(None, help="Extra margin around each face, as a fraction of its size."),
    strength: Optional[float] = typer.Option(None, help="Blur / pixelation strength multiplier."),
    show_boxes: bool = typer.Option(False, "--show-boxes", help="Draw green boxes with scores (preview only: boxes reveal where faces are)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per image with its detections."),
    workers: int = typer.Option(1, min=1, max=32, help="Images processed in parallel (threads)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Blur every face in PATHS and write the results to OUT, without metadata.

    Bad files are reported and skipped; the exit code is 1 if any file failed.
    """
    settings = Settings.load()
    jobs, missing = batch.plan(paths, out)
    with Engine.from_settings(settings, source="cli") as engine:
        options = _options(engine, model, mode=mode, mask=mask, margin=margin, strength=strength, show_boxes=show_boxes)
        report = _run(engine, jobs, model, options, workers, as_json, progress and not as_json and sys.stderr.isatty())
    failures = missing + report.failures
    for path, message in failures:
        typer.secho(f"error: {message if str(path) in message else f'{path}: {message}'}", err=True, fg=typer.colors.RED)
    typer.echo(
        f"{len(report.results)} image(s) written to {out}, {report.faces} face(s) anonymized, {len(failures)} failed.",
        err=True,
    )
    if failures:
        raise typer.Exit(1)


def _options(engine: Engine, model, **overrides) -> AnonymizeOptions | None:
    # `is not`, not `in`: 0.0 == False, and --margin 0 is a real choice.
    given = {k: v for k, v in overrides.items() if v is not None and v is not False}
    if not given:
        return None  # each image uses the anonymizer settings of the version that served it
    base = engine.store.manifest(model or engine.store.current()).anonymizer
    return AnonymizeOptions.from_dict({**base, **{k: (v.value if hasattr(v, "value") else v) for k, v in given.items()}})


def _run(engine, jobs, model, options, workers, as_json, show_progress):
    if not jobs:
        return batch.BatchReport()
    if not show_progress:
        def emit(job, result, error):
            if as_json and result is not None:
                typer.echo(json.dumps({"source": str(job.source), **result.to_dict()}))
        return batch.run(engine, jobs, version=model, options=options, workers=workers, on_done=emit)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]blurring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[faces]} faces"), transient=False) as bar:
        task = bar.add_task("blur", total=len(jobs), faces=0)
        faces = 0

        def tick(job, result, error):
            nonlocal faces
            faces += len(result.detections) if result else 0
            bar.update(task, advance=1, faces=faces)

        return batch.run(engine, jobs, version=model, options=options, workers=workers, on_done=tick)
