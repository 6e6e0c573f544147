"""Tests for faceguard.files: reads whose errors name the file, and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceguard import files, media
from faceguard.errors import InputError, OutputError


def test_read_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"abc")
    assert files.read_bytes(tmp_path / "a.jpg") == b"abc"
    with pytest.raises(InputError, match=r"missing.jpg: no such file"):
        files.read_bytes(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match=r"is a directory"):
        files.read_bytes(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_bytes_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(b"abc")
    locked.chmod(0)
    with pytest.raises(InputError, match=r"permission denied"):
        files.read_bytes(locked)


def test_write_atomic_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.jpg"
    files.write_atomic(target, b"first")
    files.write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]
    if os.name == "posix":  # permissions follow the umask like any new file, not mkstemp's 0600
        umask = os.umask(0)
        os.umask(umask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_write_atomic_failure_keeps_old_file_and_no_temp(tmp_path: Path, monkeypatch, failure) -> None:
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise failure

    monkeypatch.setattr(files.os, "replace", broken_replace)
    expected = pytest.raises(OutputError, match=r"out.jpg: cannot write: No space left") if isinstance(failure, OSError) else pytest.raises(KeyboardInterrupt)
    with expected:
        files.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]


@pytest.mark.parametrize(
    ("make_target", "match"),
    [
        (lambda d: d / "missing-dir" / "out.jpg", r"out.jpg: cannot write"),
        (lambda d: (d / "a-dir").mkdir() or d / "a-dir", r"a-dir: cannot write"),  # target is a directory
    ],
)
def test_write_atomic_refusals_leave_nothing_behind(tmp_path: Path, make_target, match) -> None:
    target = make_target(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(OutputError, match=match):
        files.write_atomic(target, b"data")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_media_still_offers_the_file_helpers() -> None:
    # batch, review and reviewing call media.read_bytes / media.write_atomic
    assert (media.read_bytes, media.write_atomic) == (files.read_bytes, files.write_atomic)
