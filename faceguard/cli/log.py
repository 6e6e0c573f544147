"""``faceguard log ...``: thin commands over ``faceguard.log`` (one library call each).

The main CLI mounts ``app`` as ``faceguard log`` and registers ``demo_data_command`` as the
top-level ``faceguard demo-data``. Library errors become a one-line message and exit code 1.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from faceguard.cli import handles_errors
from faceguard.config import Settings
from faceguard.files import read_bytes
from faceguard.log import ingest, queries, remove_demo_data, write_demo_data

app = typer.Typer(help="The processing log: ingest spools, show status, find which version processed an image.")


@handles_errors
def demo_data_command(
    rows: Annotated[int, typer.Option("--rows", min=0, help="Number of synthetic images to write.")] = 100_000,
    remove: Annotated[bool, typer.Option("--remove", help="Delete all demo data instead of writing it.")] = False,
    days: Annotated[int, typer.Option("--days", min=1, help="Days of history, ending now.")] = 7,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Write realistic synthetic history (marked demo, removable with --remove)."""
    settings = Settings.load()
    if remove:
        removed = remove_demo_data(settings)
        typer.echo(f"removed {removed} demo rows from {settings.db_path}")
        return
    written = write_demo_data(settings, rows=rows, days=days, seed=seed)
    typer.echo(f"wrote {written} demo images over {days} days to {settings.db_path} (remove with --remove)")


app.command("demo-data")(demo_data_command)


@app.command("ingest")
@handles_errors
def ingest_command() -> None:
    """Merge every spool file (including those of stopped processes) into the database now."""
    settings = Settings.load()
    stats = ingest(settings)
    typer.echo(
        f"ingested {stats.inserted} records from {stats.files} spool files in {stats.seconds:.2f} s"
        f" ({stats.duplicates} duplicates skipped, {stats.rejected} unreadable lines set aside,"
        f" {stats.deleted_files} finished spools removed)"
    )


@app.command("status")
@handles_errors
def status_command() -> None:
    """Row counts, schema version and what still waits in the spool."""
    settings = Settings.load()
    st = queries.log_status(settings)
    typer.echo(f"database: {st.db_path}" + ("" if st.exists else " (not created yet)"))
    if st.exists:
        typer.echo(f"schema version: {st.schema_version} (this faceguard: {st.latest_schema_version})")
        typer.echo(f"size: {st.size_bytes / 1e6:.1f} MB, last image: {st.last_image_ts or '-'}")
        for table, n in st.rows.items():
            typer.echo(f"  {table:<17} {n:>12,}")
        typer.echo(f"demo rows: {st.demo_rows:,}")
    typer.echo(f"spool: {st.spool_files} files, {st.pending_spool_bytes:,} bytes not yet ingested")


@app.command("which")
@handles_errors
def which_command(
    hash_or_file: Annotated[str, typer.Argument(help="sha256 of the input, an image id, or the input file itself.")],
) -> None:
    """Which model version processed this image (and when, as which variant)."""
    path = Path(hash_or_file)
    key = hashlib.sha256(read_bytes(path)).hexdigest() if path.is_file() else hash_or_file
    rows = queries.image_by_hash(Settings.load(), key)
    if rows.empty:
        typer.echo(f"no logged image with sha256 or id {key}", err=True)
        raise typer.Exit(1)
    for r in rows.itertuples():
        typer.echo(
            f"{r.ts:%Y-%m-%d %H:%M:%S} UTC  {r.model_version}  {r.variant}  {r.status}  "
            f"{r.num_faces} faces  {r.processing_ms:.1f} ms  image {r.image_id}"
        )
