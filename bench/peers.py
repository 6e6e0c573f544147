"""faceguard's versions against deface (the tool people use today), side by side on one folder.

    make bench-peers          # = bash bench/peers_setup.sh && .venv/bin/python bench/peers.py

Both tools run the whole job on a copy of the labelled photos: read, detect, anonymize, write.
Each run is a fresh process pinned to the same CPU cores (``--cores``, default all), timed from
model load to the last file written (interpreter start-up and imports excluded for both), one
after the other so they never share the machine. The tools take turns ``--repeat`` times
(default 3); the table shows each tool's best folder time (on a shared machine other jobs only
ever add time, so the minimum is the least disturbed measure; every run is in ``--json``) and
the median CPU seconds its process used. Detections are scored with faceguard's evaluator (the
data set's matching rule); they do not change between repeats.

* deface 1.5.0 runs in its own venv (``.bench-peers/deface-venv``, made by peers_setup.sh) with
  its CLI defaults (threshold 0.2, full resolution, blur with 1.3x ellipse masks, imageio
  read/write) through its own ``image_detect``, on onnxruntime (its documented fast backend)
  with one intra-op thread per allowed core.
* faceguard runs ``faceguard.batch`` over the engine (decode, detect, anonymize, encode, atomic
  write) with one image per core in parallel, each on one onnxruntime / MediaPipe thread.

Skips (exit 0) with a message when the data set is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "eval"
DEFACE_PY = REPO / ".bench-peers" / "deface-venv" / "bin" / "python"
DEFAULT_VERSIONS = ("v1.1.0-prod", "v1.2.0-beta", "v2.0.0-prod", "v2.1.0-beta")

# Runs inside deface's venv: deface's own per-image path with a recording wrapper round its detector.
DEFACE_DRIVER = r"""
import json, os, sys, time
t0 = time.perf_counter()
import onnxruntime
from deface.centerface import CenterFace
from deface.deface import image_detect
src, dst, out_json, threads = sys.argv[1:5]

class PinnedSession(onnxruntime.InferenceSession):
    # deface passes no session options; onnxruntime would size its pool by the machine's cores,
    # not by the cores this process may use, and oversubscribe them
    def __init__(self, model, sess_options=None, **kwargs):
        sess_options = sess_options or onnxruntime.SessionOptions()
        sess_options.intra_op_num_threads = int(threads)
        super().__init__(model, sess_options, **kwargs)

onnxruntime.InferenceSession = PinnedSession
inner = CenterFace(in_shape=None, backend="auto")
records = {}
class Recording:
    name = None
    def __call__(self, frame, threshold):
        t = time.perf_counter()
        dets, lms = inner(frame, threshold=threshold)
        records[self.name] = {"ms": (time.perf_counter() - t) * 1000, "dets": dets.tolist()}
        return dets, lms
rec = Recording()
for name in sorted(os.listdir(src)):
    rec.name = name
    image_detect(os.path.join(src, name), os.path.join(dst, name), rec, threshold=0.2, replacewith="blur",
                 mask_scale=1.3, ellipse=True, draw_scores=False, enable_preview=False, keep_metadata=False)
wall = time.perf_counter() - t0
json.dump({"wall_s": wall, "images": records, "provider": inner.sess.get_providers()[0] if hasattr(inner, "sess") else inner.backend}, open(out_json, "w"))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    p.add_argument("--versions", default=",".join(DEFAULT_VERSIONS), help="faceguard versions, comma-separated")
    p.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="CPU cores for each tool")
    p.add_argument("--no-deface", action="store_true", help="only faceguard's versions")
    p.add_argument("--repeat", type=int, default=3, help="rounds of timing; the best is shown")
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one faceguard version
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--dst", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _faceguard_worker(args.worker, args.src, args.dst, args.out, args.cores)
    if not (args.dataset / "annotations.csv").is_file():
        print(f"bench-peers: skipped, the labelled data set {args.dataset} is not present "
              "(see ../shared/eval/README.md for the format)")
        return 0
    sys.path.insert(0, str(REPO))
    from faceguard.evaluate import load_dataset

    dataset = load_dataset(args.dataset)
    cores = sorted(os.sched_getaffinity(0))[: max(1, args.cores)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for im in dataset.images:
            shutil.copyfile(im.path, src / im.name)
        runs = [] if args.no_deface else [("deface 1.5.0 (CenterFace, threshold 0.2)", _run_deface)]
        runs += [(f"faceguard {v}", _faceguard_runner(v)) for v in args.versions.split(",") if v]
        results: dict[str, list[dict]] = {}
        for round_ in range(max(1, args.repeat)):
            for label, run in runs:
                dst = Path(tmp) / f"out-{round_}-{len(results.get(label, []))}-{abs(hash(label))}"
                dst.mkdir()
                print(f"bench-peers: round {round_ + 1}/{args.repeat}: {label} on {len(dataset)} photos, "
                      f"{len(cores)} core(s) ...", file=sys.stderr, flush=True)
                result = _timed(run, src, dst, dst.with_suffix(".json"), cores)
                if result is not None:
                    result["written"] = len(list(dst.iterdir()))
                    results.setdefault(label, []).append(result)
                shutil.rmtree(dst, ignore_errors=True)
        rows = [_score(label, dataset, rs) for label, rs in results.items()]
    _print(rows, dataset, len(cores))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


# -- runners -------------------------------------------------------------------------------------
def _timed(run, src: Path, dst: Path, out: Path, cores: list[int]) -> dict | None:
    """Run one tool; add the CPU seconds its process used (user + system)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run(src, dst, out, cores)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result is not None:
        result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _pinned(cores: list[int]):
    return lambda: os.sched_setaffinity(0, cores)


def _run_deface(src: Path, dst: Path, out: Path, cores: list[int]) -> dict | None:
    if not DEFACE_PY.exists():
        print(f"bench-peers: deface is not set up ({DEFACE_PY} missing); run bash bench/peers_setup.sh", file=sys.stderr)
        return None
    driver = out.with_suffix(".py")
    driver.write_text(DEFACE_DRIVER)
    subprocess.run([str(DEFACE_PY), str(driver), str(src), str(dst), str(out), str(len(cores))], check=True,
                   preexec_fn=_pinned(cores), stdout=subprocess.DEVNULL)
    data = json.loads(out.read_text())
    images = {name: {"ms": r["ms"], "xyxy": [d[:4] for d in r["dets"]], "scores": [d[4] for d in r["dets"]]}
              for name, r in data["images"].items()}
    return {"wall_s": data["wall_s"], "images": images}


def _faceguard_runner(version: str):
    def run(src: Path, dst: Path, out: Path, cores: list[int]) -> dict:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", version, "--src", str(src), "--dst", str(dst),
               "--out", str(out), "--cores", str(len(cores))]
        env = {**os.environ, "FACEGUARD_MODELS": str(REPO / "models"), "PYTHONPATH": str(REPO)}
        subprocess.run(cmd, check=True, preexec_fn=_pinned(cores), env=env, cwd=str(REPO))
        return json.loads(out.read_text())

    return run


def _faceguard_worker(version: str, src: Path, dst: Path, out: Path, cores: int) -> int:
    """One faceguard version over the folder with the production batch path (no log, no review)."""
    from faceguard import batch
    from faceguard.config import Settings
    from faceguard.pipeline import Engine
    from faceguard.registry import ModelStore

    settings = Settings.load()
    t0 = time.perf_counter()
    engine = Engine(settings, ModelStore.from_settings(settings), log=None, review=None, source="bench")
    jobs, _ = batch.plan([src], dst)
    report = batch.run(engine, jobs, version=version, workers=cores)
    wall = time.perf_counter() - t0
    engine.close()
    if report.failures:
        raise SystemExit(f"{version}: {len(report.failures)} image(s) failed, e.g. {report.failures[0]}")
    images = {job.source.name: {"ms": r.timings_ms["detect"], "xyxy": r.detections.xyxy.tolist(),
                                "scores": r.detections.confidence.tolist()} for job, r in report.results}
    out.write_text(json.dumps({"wall_s": wall, "images": images}))
    return 0


# -- scoring and the table -----------------------------------------------------------------------
def _score(label: str, dataset, results: list[dict]) -> dict:
    import statistics

    import numpy as np

    from faceguard.evaluate import EvaluationReport, match_image

    first = results[0]
    matches, ms = [], []
    for im in dataset.images:
        r = first["images"][im.name]
        ms.append(min(res["images"][im.name]["ms"] for res in results))
        matches.append(match_image(np.array(r["xyxy"], np.float32).reshape(-1, 4), np.array(r["scores"], np.float32),
                                   im.boxes, im.ignore))
    rep = EvaluationReport.from_matches(dataset, matches, latencies_ms=ms)
    return {
        "tool": label, "recall": rep.recall, "precision": rep.precision, "ap": rep.average_precision,
        "small": rep.recall_by_size["small"], "medium": rep.recall_by_size["medium"], "large": rep.recall_by_size["large"],
        "fp_per_100_negatives": rep.fp_per_100_negatives, "detect_ms_p50": rep.latency_ms_p50,
        "detect_ms_p95": rep.latency_ms_p95, "folder_s": min(r["wall_s"] for r in results),
        "folder_s_runs": [round(r["wall_s"], 2) for r in results],
        "cpu_s": statistics.median(r["cpu_s"] for r in results), "written": min(r["written"] for r in results),
    }


def _print(rows: list[dict], dataset, cores: int) -> None:
    head = ["tool", "recall", "precision", "AP", "small", "medium", "large", "FP/100 neg", "detect ms p50",
            "folder s", "CPU s", "vs deface"]
    base = next((r["folder_s"] for r in rows if r["tool"].startswith("deface")), None)
    lines = []
    for r in rows:
        pct = lambda k: f"{100 * r[k]:.1f}%"  # noqa: E731
        lines.append([r["tool"], pct("recall"), pct("precision"), pct("ap"), pct("small"), pct("medium"), pct("large"),
                      f"{r['fp_per_100_negatives']:.1f}", f"{r['detect_ms_p50']:.0f}", f"{r['folder_s']:.1f}",
                      f"{r['cpu_s']:.1f}", f"{r['folder_s'] / base:.2f}x" if base else "-"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = lambda row: "| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |"  # noqa: E731
    print(f"\n{dataset.root}: {len(dataset)} photos, {dataset.n_faces} faces, {dataset.n_negatives} without faces; "
          f"IoU 0.5; {cores} core(s) per tool; folder s = read + detect + anonymize + write, model load included "
          f"(best of {len(rows[0]['folder_s_runs']) if rows else 0} runs; CPU s = median CPU time of the process)\n")
    print(fmt(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print(fmt(line))
    for r in rows:
        if r["written"] != len(dataset):
            print(f"warning: {r['tool']} wrote {r['written']} of {len(dataset)} files")


if __name__ == "__main__":
    sys.exit(main())
