"""``faceguard models ...``: the versioned model store."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from faceguard.cli import actor_or_login, handles_errors
from faceguard.config import Settings
from faceguard.errors import FaceguardError, ModelError
from faceguard.registry import ModelStore

app = typer.Typer(help="List, verify, switch, roll back and prune model versions.", no_args_is_help=True)
console = Console()


def _store(with_log: bool = True) -> ModelStore:
    settings = Settings.load()
    recorder = None
    if with_log:
        from faceguard.eventlog import LogEventRecorder
        from faceguard.log import LogWriter

        recorder = LogEventRecorder(LogWriter(settings, source="cli", autoingest=False), actor_default="cli")
    return ModelStore.from_settings(settings, recorder=recorder)


@app.command("list")
@handles_errors
def list_command() -> None:
    """Every version with its architecture, status and threshold."""
    store = _store(with_log=False)
    current = store.current()
    state = store.state()
    table = Table("version", "architecture", "threshold", "status", "changelog")
    for v in store.versions():
        try:
            m = store.manifest(v)
            arch, thr, log = m.base_architecture.value, f"{m.confidence_threshold:.2f}", m.changelog
        except ModelError as exc:
            arch, thr, log = "?", "?", f"[red]{exc.reason}[/red]"
        status = []
        if v == current:
            status.append("[green]current[/green]")
        if state.canary and state.canary.version == v:
            status.append(f"[yellow]canary {state.canary.percent:g}%[/yellow]")
        if v in state.quarantined:
            status.append("[red]quarantined[/red]")
        table.add_row(v, arch, thr, " ".join(status), log)
    console.print(table)


@app.command("show")
@handles_errors
def show_command(version: str = typer.Argument(..., help="Version name, or 'current'.")) -> None:
    """Print a version's manifest as JSON."""
    store = _store(with_log=False)
    v = store.current() if version == "current" else version
    typer.echo(json.dumps(store.manifest(v).to_dict(), indent=2))


@app.command("verify")
@handles_errors
def verify_command(version: Optional[str] = typer.Argument(None, help="One version (default: all).")) -> None:
    """Validate manifests and model checksums; exit 1 if any version fails."""
    store = _store(with_log=False)
    bad = 0
    for v in [version] if version else store.versions():
        try:
            m = store.verify(v)
            typer.echo(f"ok      {v}  sha256 {m.sha256[:16]}…")
        except FaceguardError as exc:
            bad += 1
            typer.secho(f"FAILED  {v}  {exc}", err=True, fg=typer.colors.RED)
    if bad:
        raise typer.Exit(1)


@app.command("use")
@handles_errors
def use_command(
    version: str = typer.Argument(..., help="Version to make current."),
    reason: str = typer.Option("manual switch", "--reason", "-r", help="Why (recorded in the event log)."),
    actor: Optional[str] = typer.Option(None, help="Who (default: the login name)."),
    force: bool = typer.Option(False, help="Allow a quarantined version (the reason is recorded)."),
) -> None:
    """Switch the current version atomically; running processes pick it up with their next image."""
    ev = _store().use(version, actor=actor_or_login(actor), reason=reason, force=force)
    typer.echo(f"current: {ev.from_version} -> {ev.to_version}")


@app.command("rollback")
@handles_errors
def rollback_command(
    to: Optional[str] = typer.Argument(None, help="Stable version to return to (default: the previous stable one)."),
    reason: str = typer.Option("manual rollback", "--reason", "-r", help="Why (recorded with the event and the alert)."),
    actor: Optional[str] = typer.Option(None, help="Who (default: the login name)."),
    quarantine: bool = typer.Option(False, help="Also quarantine the version left, so nothing re-promotes it."),
) -> None:
    """Go back to a retained stable version; stops any canary and raises the rollback alert."""
    from faceguard.eventlog import LogEventRecorder
    from faceguard.log import LogWriter
    from faceguard.operations import manual_rollback

    settings = Settings.load()
    with LogWriter(settings, source="cli") as log:
        store = ModelStore.from_settings(settings, recorder=LogEventRecorder(log, actor_default="cli"))
        done = manual_rollback(store, settings, actor=actor_or_login(actor), reason=reason, to=to, quarantine=quarantine, log=log)
    typer.echo(f"rolled back: {done.failed_version} -> {done.restored_version}"
               + (f" ({done.failed_version} quarantined)" if done.quarantined else ""))


@app.command("prune")
@handles_errors
def prune_command(
    versions: Optional[list[str]] = typer.Argument(None, help="Versions to remove (default: every unprotected one)."),
    keep_stable: int = typer.Option(2, min=2, help="Newest stable versions always kept (at least 2)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
) -> None:
    """Remove old versions; never the current, previous stable or canary version."""
    store = _store()
    removed = store.prune(versions or None, keep_stable=keep_stable, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb}: {', '.join(removed) if removed else 'nothing'}")
    for v, why in store.protected(keep_stable).items():
        typer.echo(f"kept:    {v} ({why})")


@app.command("history")
@handles_errors
def history_command(limit: int = typer.Option(50, help="How many events.")) -> None:
    """Model events (switch, canary, promote, rollback, quarantine) from the processing log."""
    from faceguard.log import queries

    settings = Settings.load()
    df = queries.events(settings.db_path, limit=limit)
    if df.empty:
        typer.echo("no model events logged yet")
        return
    table = Table("when (UTC)", "event", "from", "to", "who", "why")
    for r in df.itertuples():
        table.add_row(str(r.ts)[:19], r.kind, r.from_version or "", r.to_version or "", r.actor, r.reason)
    console.print(table)


@app.command("setup")
@handles_errors
def setup_command() -> None:
    """Set-up step run by `make install`: build derived model files, then verify every version."""
    from faceguard.registry.setup import prepare

    for line in prepare(Settings.load()):
        typer.echo(line)
