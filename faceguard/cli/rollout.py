"""``faceguard rollout ...`` (canary, gate, promotion, A/B) and ``faceguard check`` (rollback rules).

Each command loads the settings, opens the store with the log as its event recorder, calls one
function of ``faceguard.rollout`` / ``gate`` / ``abtest`` / ``guard`` and prints the result.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from faceguard import abtest, alerts, gate, guard, rollout
from faceguard.cli import actor_or_login, handles_errors
from faceguard.config import Settings
from faceguard.errors import RolloutError
from faceguard.registry import ModelStore

app = typer.Typer(help="Canary split, A/B comparison, promotion gate and rollback.", no_args_is_help=True)
console = Console(width=140)

_VERDICT_COLOURS = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


@contextlib.contextmanager
def _opened() -> Iterator[tuple[Settings, ModelStore, object]]:
    """Settings, the store (events go to the log) and the log writer, closed (and ingested) after."""
    from faceguard.eventlog import LogEventRecorder
    from faceguard.log import LogWriter

    settings = Settings.load()
    log = LogWriter(settings, source="cli", autoingest=False)
    try:
        yield settings, ModelStore.from_settings(settings, recorder=LogEventRecorder(log, actor_default="cli")), log
    finally:
        log.close()


@app.command("start")
@handles_errors
def start_command(
    version: str = typer.Argument(..., help="Version to send a share of traffic to."),
    percent: Optional[float] = typer.Option(None, "--percent", "-p", help="Share of traffic in % (default: rollout.canary_percent)."),
    reason: str = typer.Option("", "--reason", "-r", help="Why (recorded; required with --force)."),
    force: bool = typer.Option(False, help="Start although the internal test is not met or the version is quarantined."),
    actor: Optional[str] = typer.Option(None, help="Who (default: the login name)."),
) -> None:
    """Start a canary (or change its percent); running processes pick it up with their next image."""
    with _opened() as (settings, store, _):
        started = rollout.start_canary(store, version, percent, settings=settings, actor=actor_or_login(actor),
                                       reason=reason, force=force)
    c = started.canary
    verb = f"changed from {started.previous.percent:g}% to" if started.previous else "started at"
    typer.echo(f"canary {c.version} {verb} {c.percent:g}% of traffic (stable: {store.current()})")
    typer.echo(f"internal test: {started.internal_test.describe()}" + (" [forced]" if started.forced else ""))


@app.command("stop")
@handles_errors
def stop_command(
    reason: str = typer.Option("", "--reason", "-r", help="Why (recorded)."),
    actor: Optional[str] = typer.Option(None, help="Who (default: the login name)."),
) -> None:
    """Stop the canary: all traffic goes to the current (stable) version."""
    with _opened() as (_, store, _log):
        stopped = rollout.stop_canary(store, actor=actor_or_login(actor), reason=reason)
    typer.echo(f"canary {stopped.version} stopped; all traffic on {store.current()}" if stopped
               else f"no canary was running; all traffic on {store.current()}")


@app.command("status")
@handles_errors
def status_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Where traffic goes: the stable version, the canary and its split, quarantined versions."""
    settings = Settings.load()
    st = rollout.status(ModelStore.from_settings(settings), settings)
    if as_json:
        typer.echo(json.dumps({
            "current": st.current, "previous_stable": st.previous_stable,
            "canary": None if st.canary is None else {"version": st.canary.version, "percent": st.canary.percent,
                                                      "started_at": st.canary.started_at, "actor": st.canary.actor},
            "shadow_rate": st.shadow_rate, "union_blur": st.union_blur, "quarantined": st.quarantined,
        }, indent=2))
        return
    typer.echo(f"stable (current): {st.current}   previous stable: {st.previous_stable or '-'}")
    if st.canary:
        typer.echo(f"canary: {st.canary.version} at {st.canary.percent:g}% since {st.canary.started_at} "
                   f"(by {st.canary.actor}); shadow on {st.shadow_rate:.0%} of canary traffic; "
                   f"union blur {'on' if st.union_blur else 'off'}")
    else:
        typer.echo("canary: none (100% on the stable version)")
    for v, q in st.quarantined.items():
        typer.echo(f"quarantined: {v} ({q.get('reason', '')})")


def _default_version(store: ModelStore, version: str | None) -> str:
    if version:
        return version
    canary = store.state().canary
    if canary is None:
        raise RolloutError("no canary is running; name the version")
    return canary.version


@app.command("gate")
@handles_errors
def gate_command(
    version: Optional[str] = typer.Argument(None, help="Version to judge (default: the canary)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each gate criterion per day with its figure, 95% interval and verdict; exit 1 unless it passes."""
    settings = Settings.load()
    store = ModelStore.from_settings(settings)
    report = gate.evaluate(settings, _default_version(store, version), settings, store=store)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_gate(report)
    if not report.passed:
        raise typer.Exit(1)


def _print_gate(report: gate.GateReport) -> None:
    table = Table("day (UTC)", "criterion", "figure", "95% interval", "target", "n", "verdict",
                  title=f"promotion gate for {report.version}")
    for d in report.days:
        judged = "" if d.day in report.judged else " (not judged)"
        for i, c in enumerate(d.criteria):
            fig = "-" if c.figure is None or math.isnan(c.figure) else gate.format_figure(c.criterion, c.figure)
            ci = "" if c.interval is None else f"[{gate.format_figure(c.criterion, c.interval.low)}, {gate.format_figure(c.criterion, c.interval.high)}]"
            colour = _VERDICT_COLOURS[c.verdict.value]
            table.add_row(f"{d.day}{judged}" if i == 0 else "", c.criterion.value, fig, ci,
                          f"{'>=' if c.at_least else '<='} {gate.format_figure(c.criterion, c.target)}", str(c.n),
                          f"[{colour}]{c.verdict.value}[/{colour}]")
        table.add_row("", "[bold]day[/bold]", "", "", "", "", f"[bold]{d.verdict.value}[/bold]", end_section=True)
    console.print(table)
    colour = _VERDICT_COLOURS[report.verdict.value]
    console.print(f"[{colour}]gate {report.verdict.value}[/{colour}]: needs {report.required_days} consecutive "
                  f"passing day(s); judged {', '.join(str(d) for d in report.judged)}")


@app.command("promote")
@handles_errors
def promote_command(
    version: Optional[str] = typer.Argument(None, help="Version to make current (default: the canary)."),
    reason: str = typer.Option("", "--reason", "-r", help="Why (recorded; required with --force)."),
    force: bool = typer.Option(False, help="Promote although the gate does not pass."),
    actor: Optional[str] = typer.Option(None, help="Who (default: the login name)."),
) -> None:
    """Make the version current if it passes the gate (refused otherwise unless forced), and stop the canary."""
    with _opened() as (settings, store, _):
        promo = gate.promote(store, _default_version(store, version), settings, actor=actor_or_login(actor),
                             reason=reason, force=force)
    typer.echo(f"promoted: {promo.event.from_version} -> {promo.event.to_version} "
               f"(gate {promo.report.verdict.value}{', forced: ' + reason if promo.forced else ''})")


@app.command("compare")
@handles_errors
def compare_command(
    baseline: Optional[str] = typer.Option(None, help="Version A (default: the current version)."),
    candidate: Optional[str] = typer.Option(None, help="Version B (default: the canary)."),
    hours: float = typer.Option(24.0, help="Period: the last HOURS hours."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A/B comparison of two versions: rates with Wilson intervals, latency, sample ratio, verdict."""
    settings = Settings.load()
    store = ModelStore.from_settings(settings)
    st = rollout.status(store, settings)
    a = baseline or st.current
    b = _default_version(store, candidate)
    until = datetime.now(timezone.utc)
    split = st.expected_split if st.canary and {a, b} == {st.current, st.canary.version} else None
    if split and a != st.current:
        split = split[::-1]
    report = abtest.compare(settings, a, b, until - timedelta(hours=hours), until, expected_split=split)
    if as_json:
        typer.echo(json.dumps(_ab_dict(report), indent=2, default=str))
        return
    table = Table("figure", a, b, "difference b - a [95%]", title=f"A/B over the last {hours:g} h")
    for name, fa, fb, diff in _ab_rows(report):
        table.add_row(name, fa, fb, diff)
    console.print(table)
    if report.srm is not None:
        colour = "red" if report.srm.mismatch else "green"
        console.print(f"[{colour}]sample ratio: observed {report.srm.observed}, expected "
                      f"{tuple(round(e) for e in report.srm.expected)}, p = {report.srm.p_value:.3g}"
                      f"{' MISMATCH' if report.srm.mismatch else ''}[/{colour}]")
    console.print(f"[bold]verdict: {report.verdict.value}[/bold]; minimum sample size per variant: "
                  f"{report.min_sample_size['recall']} reviewed faces, {report.min_sample_size['precision']} "
                  "reviewed detections")
    for r in report.reasons:
        console.print(f"  - {r}")


def _pct(e: abtest.Estimate) -> str:
    return "-" if e.n == 0 else f"{e.value:.1%} [{e.low:.1%}, {e.high:.1%}] n={e.n}"


def _ab_rows(r: abtest.ABReport):
    ms = lambda v: "-" if v is None else f"{v:.1f} ms"  # noqa: E731
    boot = lambda e: "-" if e is None else f"{e.value:+.1f} ms [{e.low:+.1f}, {e.high:+.1f}]"  # noqa: E731
    ci = lambda i: f"[{i.low:+.3f}, {i.high:+.3f}]"  # noqa: E731
    yield "images", str(r.a.images), str(r.b.images), ""
    yield "detection rate (faces/image)", f"{r.a.detection_rate:.2f}", f"{r.b.detection_rate:.2f}", ""
    yield "flagged rate", _pct(r.a.flagged_rate), _pct(r.b.flagged_rate), ""
    yield "error rate", _pct(r.a.error_rate), _pct(r.b.error_rate), ci(r.error_rate_diff)
    yield "reviewed precision", _pct(r.a.precision), _pct(r.b.precision), ci(r.precision_diff)
    yield "reviewed recall", _pct(r.a.recall), _pct(r.b.recall), ci(r.recall_diff)
    yield "latency p50", ms(r.a.p50_ms), ms(r.b.p50_ms), boot(r.p50_diff_ms)
    yield "latency p95", ms(r.a.p95_ms), ms(r.b.p95_ms), boot(r.p95_diff_ms)


def _ab_dict(r: abtest.ABReport) -> dict:
    import dataclasses

    d = dataclasses.asdict(r)
    d["verdict"] = r.verdict.value
    d["srm"] = None if r.srm is None else {**dataclasses.asdict(r.srm), "mismatch": r.srm.mismatch}
    return d


@app.command("ack")
@handles_errors
def ack_command(
    alert_id: Optional[str] = typer.Argument(None, help="Alert to acknowledge (default: the rollback banner's)."),
    actor: Optional[str] = typer.Option(None, help="Who (default: the login name)."),
) -> None:
    """Acknowledge a rollback alert (the app's 'Restored to stable version' banner goes away)."""
    settings = Settings.load()
    if alert_id is None:
        banner = alerts.rollback_banner(settings)
        if banner is None:
            typer.echo("no open rollback alert")
            return
        alert_id = banner.alert_id
    alerts.acknowledge(settings, alert_id, actor_or_login(actor))
    typer.echo(f"acknowledged {alert_id}")


@handles_errors
def check_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Judge the rollback rules from the log and roll back on a breach (for cron or a systemd timer).

    Exit code: 0 nothing to do, 2 it acted (rolled back, stopped a canary or raised an alert), 1 error.
    """
    with _opened() as (settings, store, log):
        log.ingest_now()  # judge what running processes have spooled, not only what is already merged
        report = guard.check(store, settings, log=log)
    if as_json:
        typer.echo(json.dumps({
            "now": report.now.isoformat(), "acted": report.acted,
            "checked": [{"version": s.version, "consecutive_failures": s.consecutive_failures,
                         "fp_rate": s.fp_rate, "fp_images": s.fp_images, "fp_source": s.fp_source.value,
                         "mean_ms": s.mean_ms, "latency_samples": s.latency_samples} for s in report.checked],
            "breaches": [b.evidence() for b in report.breaches],
            "actions": [{"action": a.action.value, "version": a.breach.version, "rule": a.breach.rule.value,
                         "restored_version": a.restored_version, "alert_id": a.alert_id} for a in report.actions],
        }, indent=2, default=str))
    else:
        if not report.checked:
            typer.echo("nothing to watch (no canary, and no previous stable version to return to)")
        for s in report.checked:
            fp = "no judged images" if s.fp_rate is None else \
                f"fp rate {s.fp_rate:.1%} over {s.fp_images} {s.fp_source.value}-judged images"
            mean = "no recent requests" if s.mean_ms is None else \
                f"mean {s.mean_ms:.0f} ms over {s.latency_samples} requests"
            typer.echo(f"checked {s.version}: {s.consecutive_failures} trailing failures, {fp}, {mean}")
        for a in report.actions:
            typer.echo(f"{a.action.value}: {a.breach.message}"
                       + (f"; restored {a.restored_version}" if a.restored_version else ""))
    if report.acted:
        raise typer.Exit(2)


__all__ = ["app", "check_command"]
