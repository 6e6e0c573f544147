"""The ``faceguard`` command: one thin command per engine verb.

Each command loads ``Settings``, calls one engine function and turns ``FaceguardError`` into
a one-line message on stderr with exit code 1 (never a traceback).
"""

from __future__ import annotations

import functools
import getpass
import os
import sys

# OpenCV's C++ decoder prints "Corrupt JPEG data" lines of its own; faceguard reports bad
# files itself, in one line naming the file.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
from typing import Callable

import typer

from faceguard.errors import FaceguardError

app = typer.Typer(
    help="faceguard: anonymize faces in photos locally, on CPU, with versioned detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; return the ``typer.Exit`` for the caller to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def actor_or_login(actor: str | None) -> str:
    """Who an event is recorded against: ``--actor`` when given, else the login name."""
    return actor or getpass.getuser()


def handles_errors(fn: Callable) -> Callable:
    """Turn engine errors into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FaceguardError as exc:
            raise fail(str(exc)) from None

    return wrapper


def _mount() -> None:
    from faceguard.cli import blur, models

    app.command("blur")(blur.blur_command)
    app.add_typer(models.app, name="models")
    try:
        from faceguard.cli import log as log_cli

        app.add_typer(log_cli.app, name="log")
        app.command("demo-data")(log_cli.demo_data_command)
    except ImportError:  # pragma: no cover - only while the log package is being built
        pass
    try:
        from faceguard.cli import eval as eval_cli

        app.command("eval")(eval_cli.eval_command)
    except ImportError:  # pragma: no cover
        pass
    try:
        from faceguard.cli import rollout as rollout_cli

        app.add_typer(rollout_cli.app, name="rollout")
        app.command("check")(rollout_cli.check_command)
    except ImportError:  # pragma: no cover
        pass


_mount()


def main() -> None:
    """Console-script entry point; Ctrl-C exits with 130 instead of a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
