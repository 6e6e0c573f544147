from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from faceguard.cli.log import app, demo_data_command
from faceguard.log import LogWriter

from .conftest import image

runner = CliRunner()


@pytest.fixture
def env(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGUARD_HOME", str(settings.home))
    monkeypatch.delenv("FACEGUARD_DB", raising=False)
    monkeypatch.delenv("FACEGUARD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return settings


def test_every_command_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("demo-data", "ingest", "status", "which"):
        assert name in result.output
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0 and len(sub.output.strip()) > 40


def test_demo_data_status_and_remove(env) -> None:
    result = runner.invoke(app, ["demo-data", "--rows", "500", "--days", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 500 demo images" in result.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "schema version" in status.output and "500" in status.output
    removed = runner.invoke(app, ["demo-data", "--remove"])
    assert removed.exit_code == 0 and "removed" in removed.output


def test_demo_data_command_is_a_plain_function_for_the_main_cli(env) -> None:
    import typer

    top = typer.Typer()
    top.command("demo-data")(demo_data_command)
    top.command("noop")(lambda: None)
    assert runner.invoke(top, ["demo-data", "--rows", "100", "--days", "1"]).exit_code == 0


def test_ingest_and_which_by_file_or_hash(env, tmp_path) -> None:
    photo = tmp_path / "in.jpg"
    photo.write_bytes(b"pretend jpeg bytes")
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    writer = LogWriter(env, source="cli", autoingest=False)
    writer.write(image(1, input_sha256=sha, version="v1.2.0-beta", variant="canary"))
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 0 and "ingested 1 records" in result.output
    for arg in (str(photo), sha):
        found = runner.invoke(app, ["which", arg])
        assert found.exit_code == 0 and "v1.2.0-beta" in found.output and "canary" in found.output
    missing = runner.invoke(app, ["which", "0" * 64])
    assert missing.exit_code == 1
    writer.close()


def test_library_errors_become_one_line_and_exit_1(env) -> None:
    env.db_path.mkdir(parents=True)  # a directory where the database should be
    writer = LogWriter(env, source="cli", autoingest=False)
    writer.write(image(1))
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error:") and "Traceback" not in result.output
    writer.close()  # its final ingest fails the same way, silently: the record stays in the spool
