import multiprocessing as mp
import os
from pathlib import Path

import pytest

from faceguard.errors import (ChecksumMismatchError, ModelError, PruneRefusedError, QuarantinedError,
                              VersionNotFoundError)
from faceguard.registry import Manifest, ModelStore


class Recorder:
    def __init__(self):
        self.events = []

    def record_event(self, **kw):
        self.events.append(kw)


@pytest.fixture
def store(models_dir):
    return ModelStore(models_dir, recorder=Recorder())


def test_lists_shipped_versions_and_current(store):
    assert store.versions()[:3] == ["v1.0.0-prod", "v1.1.0-prod", "v1.2.0-beta"]
    assert store.current() in store.versions()
    for v in store.versions():
        assert store.verify(v).model_version == v


def test_use_switches_and_records_who_when_from_to_why(store):
    before = store.current()
    ev = store.use("v1.0.0-prod", actor="ana", reason="test switch")
    assert store.current() == "v1.0.0-prod"
    assert (ev.from_version, ev.to_version, ev.actor) == (before, "v1.0.0-prod", "ana")
    rec = store.recorder.events[-1]
    assert rec["kind"] == "switch" and rec["actor"] == "ana" and rec["reason"] == "test switch"
    assert rec["from_version"] == before and rec["to_version"] == "v1.0.0-prod"
    assert os.path.islink(store.root / "current")


def test_corrupt_model_never_becomes_current(store):
    cur = store.current()
    f = store.root / "v1.0.0-prod" / "face_detection.tflite"
    data = bytearray(f.read_bytes())
    data[1000] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        store.use("v1.0.0-prod", actor="t", reason="r")
    with pytest.raises(ChecksumMismatchError):
        store.load("v1.0.0-prod")
    assert store.current() == cur
    assert store.recorder.events == []


def test_unknown_version(store):
    with pytest.raises(VersionNotFoundError, match="v7.0.0-prod"):
        store.use("v7.0.0-prod", actor="t", reason="r")


def test_rollback_goes_to_previous_stable_and_quarantines(store):
    store.use("v1.0.0-prod", actor="t", reason="r")
    store.use("v1.1.0-prod", actor="t", reason="r")
    assert store.previous_stable() == "v1.0.0-prod"
    ev = store.rollback(actor="guard", reason="latency", quarantine="v1.1.0-prod")
    assert ev.to_version == "v1.0.0-prod" and store.current() == "v1.0.0-prod"
    assert store.is_quarantined("v1.1.0-prod")
    with pytest.raises(QuarantinedError):
        store.use("v1.1.0-prod", actor="t", reason="r")
    store.use("v1.1.0-prod", actor="op", reason="root cause fixed", force=True)
    assert not store.is_quarantined("v1.1.0-prod")


def test_rollback_only_to_stable(store):
    with pytest.raises(ModelError, match="stable"):
        store.rollback("v1.2.0-beta", actor="t", reason="r")


def test_prune_keeps_current_previous_and_two_stable(store, tmp_path):
    # add two older stable versions and one old beta as copies of v1.0.0-prod
    import json, shutil
    for name in ["v0.8.0-prod", "v0.9.0-prod", "v0.9.1-beta"]:
        d = store.root / name
        shutil.copytree(store.root / "v1.0.0-prod", d)
        m = json.loads((d / "model_manifest.json").read_text())
        m["model_version"] = name
        (d / "model_manifest.json").write_text(json.dumps(m))
    store.use("v1.0.0-prod", actor="t", reason="r")
    store.use("v1.1.0-prod", actor="t", reason="r")
    protected = store.protected()
    assert {"v1.1.0-prod", "v1.0.0-prod", "v1.2.0-beta"} <= set(protected)
    with pytest.raises(PruneRefusedError, match="current"):
        store.prune(["v1.1.0-prod"])
    with pytest.raises(PruneRefusedError, match="previous stable"):
        store.prune(["v1.0.0-prod"])
    before = set(store.versions())
    would = store.prune(dry_run=True)
    assert set(would) == {"v0.8.0-prod", "v0.9.0-prod", "v0.9.1-beta"}
    assert (store.root / "v0.8.0-prod").exists()
    removed = store.prune()
    assert set(removed) == set(would)
    assert set(store.versions()) == before - set(removed)
    assert {"v1.0.0-prod", "v1.1.0-prod", "v1.2.0-beta"} <= set(store.versions())
    stable = [v for v in store.versions() if v.endswith("-prod")]
    assert len(stable) >= 2


def _switch_forever(root: str, versions: list[str], n: int) -> None:
    s = ModelStore(Path(root))
    for i in range(n):
        s.use(versions[i % len(versions)], actor="p", reason="stress")


def test_pointer_is_never_broken_under_concurrent_switches(store):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_switch_forever, args=(str(store.root), ["v1.0.0-prod", "v1.1.0-prod"], 40))
             for _ in range(2)]
    for p in procs:
        p.start()
    seen = set()
    while any(p.is_alive() for p in procs):
        seen.add(store.current())  # must always resolve to a real version
        assert (store.root / "current" / "model_manifest.json").exists()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert seen <= {"v1.0.0-prod", "v1.1.0-prod", "v1.1.0-prod"} and seen
    assert not list(store.root.glob(".current.*.tmp"))


def test_crash_between_symlink_and_rename_leaves_old_target(store, monkeypatch):
    before = store.current()

    def boom(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.use("v1.0.0-prod", actor="t", reason="r")
    monkeypatch.undo()
    assert store.current() == before
    store.use("v1.0.0-prod", actor="t", reason="r")  # next switch cleans the stray temp link
    assert not list(store.root.glob(".current.*.tmp"))


def test_write_manifest_replaces_atomically(store):
    m = store.manifest("v1.2.0-beta")
    store.write_manifest(m.with_evaluation({"recall": 0.5}, avg_inference_time_ms=12.5))
    again = store.manifest("v1.2.0-beta")
    assert again.performance_benchmarks.evaluation == {"recall": 0.5}
    assert again.performance_benchmarks.avg_inference_time_ms == 12.5
