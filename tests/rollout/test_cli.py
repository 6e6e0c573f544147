"""`faceguard rollout ...` and `faceguard check` through the real command line."""

import json
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from faceguard.alerts import rollback_banner
from faceguard.cli import app
from faceguard.log import queries
from faceguard.registry import ModelStore

from .conftest import BETA, STABLE, image, review, with_evaluation, write_records

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_rollout_commands_exist_with_help():
    import typer.main

    root = typer.main.get_command(app)
    rollout = root.commands["rollout"]
    assert {"start", "status", "stop", "gate", "promote", "compare", "ack"} <= set(rollout.commands)
    assert root.commands["check"].help and all(c.help for c in rollout.commands.values())


def test_canary_lifecycle_from_the_command_line(fg_env):
    res = run("rollout", "start", BETA, "--percent", "5")
    assert res.exit_code == 1 and "has no evaluation" in res.stderr and "Traceback" not in res.output
    res = run("rollout", "start", BETA, "--percent", "5", "--force", "-r", "customer escalation", "--actor", "ann")
    assert res.exit_code == 0, res.output
    assert f"canary {BETA} started at 5% of traffic (stable: {STABLE})" in res.stdout and "[forced]" in res.stdout
    status = json.loads(run("rollout", "status", "--json").stdout)
    assert status["canary"]["version"] == BETA and status["canary"]["percent"] == 5 and status["current"] == STABLE
    assert "canary: v1.2.0-beta at 5%" in run("rollout", "status").stdout
    assert run("rollout", "start", BETA, "-p", "10", "--force", "-r", "wider").stdout.startswith(
        f"canary {BETA} changed from 5% to 10%")
    ev = queries.events(fg_env, kinds=["canary_start"])
    assert len(ev) == 2 and set(ev["actor"]) >= {"ann"} and ev.iloc[-1]["reason"] == "customer escalation"

    gate = run("rollout", "gate")  # defaults to the canary
    assert gate.exit_code == 1 and "promotion gate for v1.2.0-beta" in gate.stdout and "inconclusive" in gate.stdout
    assert "reviewed_images" in gate.stdout and "recall" in gate.stdout
    assert json.loads(run("rollout", "gate", "--json").stdout)["verdict"] == "inconclusive"

    res = run("rollout", "promote")
    assert res.exit_code == 1 and "gate inconclusive" in res.stderr and ModelStore(fg_env.models).current() == STABLE
    res = run("rollout", "promote", "--force", "-r", "accepted by the owner")
    assert res.exit_code == 0 and f"promoted: {STABLE} -> {BETA}" in res.stdout and "forced" in res.stdout
    promote = queries.events(fg_env, kinds=["promote"]).iloc[0]
    assert promote["evidence"]["forced"] is True and promote["reason"] == "accepted by the owner"
    assert "no canary was running" in run("rollout", "stop").stdout


def test_check_exits_non_zero_only_when_it_acted(fg_env):
    res = run("check")
    assert res.exit_code == 0 and f"checked {STABLE}" in res.stdout
    store = ModelStore(fg_env.models)
    store.use(BETA, actor="ann", reason="release")
    now = datetime.now(timezone.utc)
    write_records(fg_env, [image(i, ts=now - timedelta(seconds=30 - i), status="model_error", variant="stable")
                           for i in range(10)])
    res = run("check", "--json")
    assert res.exit_code == 2, res.output
    out = json.loads(res.stdout)
    assert out["acted"] and out["actions"][0]["action"] == "rolled_back" and out["actions"][0]["restored_version"] == STABLE
    assert store.current() == STABLE and store.is_quarantined(BETA)
    assert run("check").exit_code == 0  # done: nothing left to do
    banner = rollback_banner(fg_env)
    assert banner.title == f"Restored to stable version {STABLE}" and banner.failed_version == BETA
    res = run("rollout", "ack", "--actor", "ann")
    assert res.exit_code == 0 and banner.alert_id in res.stdout and rollback_banner(fg_env) is None


def test_compare_prints_the_ab_report(fg_env):
    store = ModelStore(fg_env.models)
    with_evaluation(store, BETA)
    assert run("rollout", "start", BETA, "-p", "40").exit_code == 0
    now = datetime.now(timezone.utc)
    a = [image(i, version=STABLE, variant="stable", ts=now - timedelta(minutes=5), ms=20.0) for i in range(60)]
    b = [image(i, ts=now - timedelta(minutes=5), ms=25.0) for i in range(40)]
    write_records(fg_env, a + b + [review(x, "correct") for x in a[:10] + b[:10]])
    res = run("rollout", "compare", "--hours", "1")
    assert res.exit_code == 0, res.output
    assert "reviewed recall" in res.stdout and "verdict: not_enough_data" in res.stdout
    assert "sample ratio: observed (60, 40)" in res.stdout and "MISMATCH" not in res.stdout
    data = json.loads(run("rollout", "compare", "--hours", "1", "--json").stdout)
    assert data["a"]["images"] == 60 and data["b"]["images"] == 40 and data["p50_diff_ms"]["value"] == 5.0
