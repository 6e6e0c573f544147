"""``faceguard eval``: evaluate a model version on a labelled folder (internal-test stage)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from faceguard.cli import handles_errors
from faceguard.config import Settings
from faceguard.evaluate import VersionEvaluation, evaluate_version, load_dataset
from faceguard.registry import ModelStore


@handles_errors
def eval_command(
    dataset: Path = typer.Argument(..., help="Folder with images/, images.csv and annotations.csv (see ../shared/eval/README.md)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Version to evaluate (default: the current one)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N images (a smoke test; nothing is recorded)."),
    write_manifest: bool = typer.Option(True, "--write-manifest/--no-write-manifest", help="Record the figures in the version's manifest."),
) -> None:
    """Recall, precision, AP, recall by face size, false positives per 100 face-free photos and
    latency of one version on DATASET; recorded in the manifest and the log's evaluations."""
    settings = Settings.load()
    store = ModelStore.from_settings(settings)
    version = model or store.current()
    data = load_dataset(dataset)
    show_progress = not json_out and sys.stderr.isatty()
    log = _log_writer(settings)
    try:
        run = evaluate_version(store, version, data, progress=show_progress, limit=limit,
                               write_manifest=write_manifest, log=log)
    finally:
        if log is not None:
            log.close()
    if json_out:
        typer.echo(json.dumps({"model_version": version, **run.report.to_dict(), **run.benchmarks(),
                               "wall_s": round(run.wall_s, 2), "recorded": run.recorded}, indent=2))
    else:
        Console().print(_table(run))
        if not run.recorded:
            typer.echo("--limit given: a partial run, not recorded in the manifest or the log.", err=True)


def _log_writer(settings: Settings):
    try:
        from faceguard.log import LogWriter
    except ImportError:  # pragma: no cover - only while the log package is being built
        return None
    return LogWriter(settings, source="eval", autoingest=False)


def _table(run: VersionEvaluation) -> Table:
    r = run.report
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    num = lambda v, unit="": "-" if v is None else f"{v:.1f}{unit}"  # noqa: E731
    t = Table(title=f"{run.version} on {r.dataset}",
              caption=f"{r.n_images} photos, {r.n_faces} faces, {r.n_negatives} without faces; IoU 0.5")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("recall", pct(r.recall)),
        ("precision", pct(r.precision)),
        ("average precision", pct(r.average_precision)),
        (f"recall, small < 32 px ({r.faces_by_size['small']})", pct(r.recall_by_size["small"])),
        (f"recall, medium 32-96 px ({r.faces_by_size['medium']})", pct(r.recall_by_size["medium"])),
        (f"recall, large > 96 px ({r.faces_by_size['large']})", pct(r.recall_by_size["large"])),
        ("false positives per 100 face-free photos", num(r.fp_per_100_negatives)),
        ("detection latency p50", num(r.latency_ms_p50, " ms")),
        ("detection latency p95", num(r.latency_ms_p95, " ms")),
        ("CPU (100% = one core)", num(run.cpu_percent, "%")),
        ("peak memory", num(run.memory_peak_mb, " MB")),
    ]
    for name, value in rows:
        t.add_row(name, value)
    return t
