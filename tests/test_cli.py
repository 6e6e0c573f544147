"""The command line: thin commands, one-line errors, exit codes."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceguard.cli import app

runner = CliRunner()


def _commands(typer_app, prefix=()):
    import typer.main

    click_cmd = typer.main.get_command(typer_app)
    stack = [(prefix, click_cmd)]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + (name,), sub))


def test_every_command_has_help():
    missing = [" ".join(p) for p, cmd in _commands(app) if p and not (cmd.help or "").strip()]
    assert not missing, f"commands without help: {missing}"
    names = {" ".join(p) for p, _ in _commands(app)}
    assert {"blur", "models", "models list", "models use", "models rollback", "models prune", "models verify",
            "models show"} <= names


@pytest.fixture
def photos(tmp_path, astronaut, astronaut_jpeg):
    src = tmp_path / "in"
    (src / "nested").mkdir(parents=True)
    (src / "astro.jpg").write_bytes(astronaut_jpeg)
    Image.fromarray(astronaut).convert("P").save(src / "nested" / "astro.gif")
    (src / "broken.jpg").write_bytes(astronaut_jpeg[: len(astronaut_jpeg) // 2])
    (src / "nested" / "readme.txt").write_text("not an image, and not picked up from a folder")
    return src


def test_blur_folder_goes_on_after_bad_files(fg_env, photos, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["blur", str(photos), str(tmp_path / "missing.jpg"), "-o", str(out), "--no-progress"])
    assert res.exit_code == 1
    err = res.stderr
    assert "broken.jpg" in err and "truncated" in err
    assert "missing.jpg" in err and "no such file" in err
    assert "Traceback" not in res.output + err
    assert (out / "astro.jpg").is_file()
    assert (out / "nested" / "astro.png").is_file()  # GIF becomes PNG
    assert not (out / "broken.jpg").exists()
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))
    assert "2 image(s) written" in err and "2 failed" in err


def test_blur_json_prints_detections(fg_env, photos, tmp_path):
    res = runner.invoke(app, ["blur", str(photos / "astro.jpg"), "-o", str(tmp_path / "o"), "--json", "--mode", "pixelate"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and len(rows[0]["faces"]) == 1
    assert rows[0]["model_version"] == "v1.1.0-prod" or rows[0]["model_version"].startswith("v")
    assert rows[0]["faces"][0]["score"] > 0.5


def test_blur_with_model_option(fg_env, photos, tmp_path):
    res = runner.invoke(app, ["blur", str(photos / "astro.jpg"), "-o", str(tmp_path / "o"), "--json", "--model", "v1.0.0-prod"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.splitlines()[0])
    assert row["model_version"] == "v1.0.0-prod" and row["variant"] == "pinned"


def test_unknown_model_is_one_line_error(fg_env, photos, tmp_path):
    res = runner.invoke(app, ["blur", str(photos / "astro.jpg"), "-o", str(tmp_path / "o"), "--model", "v9.9.9-prod"])
    assert res.exit_code == 1
    assert "v9.9.9-prod" in res.stderr and "Traceback" not in res.stderr


def test_models_use_verify_rollback(fg_env):
    res = runner.invoke(app, ["models", "use", "v1.0.0-prod", "--reason", "testing", "--actor", "ana"])
    assert res.exit_code == 0, res.output
    assert (fg_env.models / "current").resolve().name == "v1.0.0-prod"
    res = runner.invoke(app, ["models", "verify"])
    assert res.exit_code == 0 and res.stdout.count("ok ") >= 3
    res = runner.invoke(app, ["models", "rollback"])
    assert res.exit_code == 0, res.output
    assert (fg_env.models / "current").resolve().name == "v1.1.0-prod"
    res = runner.invoke(app, ["models", "use", "bad-name"])
    assert res.exit_code == 1 and "v{major}" in res.stderr


def test_models_verify_fails_on_tampered_file(fg_env):
    f = fg_env.models / "v1.0.0-prod" / "face_detection.tflite"
    f.write_bytes(f.read_bytes() + b"x")
    res = runner.invoke(app, ["models", "verify"])
    assert res.exit_code == 1 and "v1.0.0-prod" in res.stderr and "sha256" in res.stderr


def test_models_prune_refuses_protected(fg_env):
    res = runner.invoke(app, ["models", "prune", "v1.1.0-prod"])
    assert res.exit_code == 1 and "current" in res.stderr
    res = runner.invoke(app, ["models", "prune", "--dry-run"])
    assert res.exit_code == 0 and "kept:" in res.stdout


def test_models_list_and_show(fg_env):
    res = runner.invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "v1.2.0-beta" in res.stdout and "current" in res.stdout
    res = runner.invoke(app, ["models", "show", "current"])
    assert res.exit_code == 0 and json.loads(res.stdout)["model_version"] == "v1.1.0-prod"


def test_cli_rollback_records_event_and_raises_the_banner(fg_env):
    from faceguard.alerts import rollback_banner
    from faceguard.log import queries

    assert runner.invoke(app, ["models", "use", "v1.0.0-prod", "--reason", "r"]).exit_code == 0
    assert runner.invoke(app, ["models", "use", "v1.1.0-prod", "--reason", "r"]).exit_code == 0
    res = runner.invoke(app, ["models", "rollback", "--reason", "too slow", "--actor", "ops", "--quarantine"])
    assert res.exit_code == 0, res.output
    assert "v1.1.0-prod -> v1.0.0-prod" in res.stdout and "quarantined" in res.stdout
    banner = rollback_banner(fg_env.db_path)
    assert banner is not None and "v1.0.0-prod" in banner.message
    ev = queries.events(fg_env.db_path, kinds=["rollback"])
    assert len(ev) == 1 and ev.iloc[0]["actor"] == "ops" and ev.iloc[0]["reason"] == "too slow"


def test_zero_margin_is_honoured(fg_env, astronaut_jpeg, tmp_path, monkeypatch):
    from faceguard.cli import blur as blur_cli

    seen = {}
    real = blur_cli._options

    def spy(engine, model, **overrides):
        opts = real(engine, model, **overrides)
        seen["margin"] = opts.margin if opts else None
        return opts

    monkeypatch.setattr(blur_cli, "_options", spy)
    src = tmp_path / "a.jpg"
    src.write_bytes(astronaut_jpeg)
    res = runner.invoke(app, ["blur", str(src), "-o", str(tmp_path / "o"), "--margin", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert seen["margin"] == 0.0
