"""Evaluation: the data set's greedy matching rule, AP, per-size recall, the report, the CLI."""

from __future__ import annotations

import json
from contextlib import nullcontext as does_not_raise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceguard.detections import Detections
from faceguard.detectors.base import FakeDetector
from faceguard.errors import EvaluationError
from faceguard.evaluate import (
    Dataset, EvaluationReport, LabelledImage, Outcome, average_precision, evaluate, load_dataset, match_image,
)
from tests.conftest import ASTRONAUT_FACE, EVAL_SET, jpeg_bytes

TP, FP, IGN = Outcome.TP, Outcome.FP, Outcome.IGNORED


# -- matching ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dets, scores, gts, ignore, expected, gt_found",
    [
        # one exact hit
        ([[0, 0, 10, 10]], [0.9], [[0, 0, 10, 10]], [0], [TP], [True]),
        # a duplicate of a matched face is a false positive
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [[0, 0, 10, 10]], [0], [TP, FP], [True]),
        # IoU below 0.5 (a box twice the size) is a miss plus a false positive
        ([[0, 0, 20, 10]], [0.9], [[0, 0, 9, 10]], [0], [FP], [False]),
        # on an ignored face: neither TP nor FP
        ([[0, 0, 10, 10]], [0.9], [[0, 0, 10, 10]], [1], [IGN], [False]),
        # a real face beats an ignored one covering the same spot
        ([[0, 0, 10, 10]], [0.9], [[0, 0, 10, 10], [0, 0, 10, 10]], [1, 0], [TP], [False, True]),
        # the higher score matches first and takes the better-overlapping face; the second
        # detection then takes the other face
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.9], [[0, 0, 10, 10], [0, 0, 10, 12]], [0, 0], [TP, TP], [True, True]),
        # any detection on a negative image is a false positive
        ([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.2], [], [], [FP, FP], []),
        # nothing found: every face is missed
        ([], [], [[0, 0, 10, 10]], [0], [], [False]),
    ],
)
def test_match_image_follows_the_greedy_rule(dets, scores, gts, ignore, expected, gt_found):
    m = match_image(np.array(dets, np.float32), np.array(scores), np.array(gts, np.float32), np.array(ignore, bool))
    assert [Outcome(o) for o in m.outcomes] == expected
    assert (~np.isnan(m.gt_score)).tolist() == gt_found


def test_higher_score_gets_the_face_when_two_detections_compete():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    m = match_image(np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32), np.array([0.3, 0.7]), gt, np.array([False]))
    assert [Outcome(o) for o in m.outcomes] == [FP, TP]
    assert m.gt_score[0] == pytest.approx(0.7)


# -- AP ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "is_tp, n_faces, expected",
    [
        ([1, 1], 2, 1.0),  # perfect
        ([1, 0, 1], 2, 0.5 * 1.0 + 0.5 * (2 / 3)),  # hand computed: precision envelope 1, then 2/3
        ([0, 1], 2, 0.5 * 0.5),  # half the faces, found at precision 1/2
        ([0, 0], 2, 0.0),
    ],
)
def test_average_precision_is_the_area_under_the_interpolated_curve(is_tp, n_faces, expected):
    tp = np.cumsum(is_tp)
    fp = np.cumsum(1 - np.array(is_tp))
    assert average_precision(tp / n_faces, tp / (tp + fp)) == pytest.approx(expected)


# -- the report ---------------------------------------------------------------------------------
def _image(name: str, boxes, ignore=None) -> LabelledImage:
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    ign = np.zeros(len(boxes), bool) if ignore is None else np.array(ignore, bool)
    return LabelledImage(name, Path(name), 200, 200, boxes, ign)


def _dataset() -> Dataset:
    return Dataset(Path("tiny"), (
        _image("a", [[0, 0, 20, 20], [50, 50, 100, 100], [0, 100, 120, 220]]),  # small, medium, large
        _image("b", [[10, 10, 50, 50], [100, 100, 110, 110]], ignore=[0, 1]),  # medium + an ignored box
        _image("neg1", []),
        _image("neg2", []),
    ))


def _report(dets_by_image: dict[str, tuple[list, list]], ds: Dataset | None = None) -> EvaluationReport:
    ds = ds or _dataset()
    matches = []
    for im in ds.images:
        boxes, scores = dets_by_image.get(im.name, ([], []))
        matches.append(match_image(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), im.boxes, im.ignore))
    return EvaluationReport.from_matches(ds, matches, latencies_ms=[1.0, 2.0, 3.0, 10.0])


def test_report_counts_recall_by_size_and_false_positives_per_100_negatives():
    r = _report({
        "a": ([[0, 0, 20, 20], [50, 50, 100, 100]], [0.9, 0.8]),  # small and medium found, large missed
        "b": ([[100, 100, 110, 110], [150, 150, 190, 190]], [0.9, 0.4]),  # ignored hit + a false positive
        "neg1": ([[0, 0, 30, 30]], [0.6]),
    })
    assert (r.n_faces, r.tp, r.fp, r.fp_negatives) == (4, 2, 2, 1)
    assert r.recall == pytest.approx(0.5)
    assert r.precision == pytest.approx(0.5)
    assert r.recall_by_size == {"small": 1.0, "medium": 0.5, "large": 0.0}
    assert r.faces_by_size == {"small": 1, "medium": 2, "large": 1}
    assert r.fp_per_100_negatives == pytest.approx(50.0)
    assert r.latency_ms_p50 == pytest.approx(2.5)
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["recall_small"] == 1.0 and d["fp_per_100_negatives"] == 50.0
    assert all(len(p) == 3 for p in d["pr_curve"]) and d["pr_curve"][0][1] == 1.0


def test_at_threshold_drops_low_scores_everywhere():
    r = _report({"a": ([[0, 0, 20, 20], [50, 50, 100, 100]], [0.9, 0.3]), "neg1": ([[0, 0, 30, 30]], [0.2])})
    strict = r.at_threshold(0.5)
    assert (r.tp, r.fp_negatives) == (2, 1)
    assert (strict.tp, strict.fp_negatives, strict.recall_by_size["medium"]) == (1, 0, 0.0)


_box = st.tuples(st.integers(0, 150), st.integers(0, 150), st.integers(5, 60), st.integers(5, 60)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)


@settings(max_examples=60, deadline=None)
@given(
    dets=st.dictionaries(st.sampled_from(["a", "b", "neg1"]),
                         st.lists(st.tuples(_box, st.floats(0.01, 1.0)), max_size=6)),
    threshold=st.floats(0.0, 1.0),
)
def test_at_threshold_equals_scoring_only_the_kept_detections(dets, threshold):
    as_lists = {k: ([b for b, _ in v], [s for _, s in v]) for k, v in dets.items()}
    kept = {k: ([b for b, s in v if s >= threshold], [s for _, s in v if s >= threshold]) for k, v in dets.items()}
    a, b = _report(as_lists).at_threshold(threshold), _report(kept)
    assert (a.tp, a.fp, a.fp_negatives, a.recall_by_size) == (b.tp, b.fp, b.fp_negatives, b.recall_by_size)
    assert a.average_precision == pytest.approx(b.average_precision)


# -- loading a data set folder --------------------------------------------------------------------
def _write_set(root: Path, images: dict[str, np.ndarray], rows: list[str], *, n_faces: dict[str, int] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    lines = ["image,width,height,n_faces,source,license"]
    for name, rgb in images.items():
        (root / "images" / name).write_bytes(jpeg_bytes(rgb))
        n = (n_faces or {}).get(name, sum(1 for r in rows if r.startswith(name + ",") and r.endswith(",0")))
        lines.append(f"{name},{rgb.shape[1]},{rgb.shape[0]},{n},test,CC0")
    (root / "images.csv").write_text("\n".join(lines) + "\n")
    (root / "annotations.csv").write_text("\n".join(["image,x,y,w,h,ignore", *rows]) + "\n")
    return root


@pytest.fixture
def photo_set(tmp_path, astronaut) -> Path:
    """The astronaut (one face, box written by hand) and two photos without faces."""
    import skimage.data

    x1, y1, x2, y2 = ASTRONAUT_FACE
    return _write_set(
        tmp_path / "set",
        {"astronaut.jpg": astronaut, "chelsea.jpg": skimage.data.chelsea(), "coffee.jpg": skimage.data.coffee()},
        [f"astronaut.jpg,{x1},{y1},{x2 - x1},{y2 - y1},0"],
    )


def test_load_dataset_reads_boxes_as_xyxy(photo_set):
    ds = load_dataset(photo_set)
    assert (len(ds), ds.n_faces, ds.n_negatives) == (3, 1, 2)
    assert ds.images[0].boxes.tolist() == [list(map(float, ASTRONAUT_FACE))]
    assert ds.images[0].read().shape == (512, 512, 3)
    assert len(ds.fingerprint) == 16


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda r: (r / "annotations.csv").write_text("image,x,y,w\n"), "annotations.csv:1: missing column"),
        (lambda r: _append(r / "annotations.csv", "astronaut.jpg,1,2,abc,4,0"), "annotations.csv:3: w must be a number"),
        (lambda r: _append(r / "annotations.csv", "astronaut.jpg,1,2,-3,4,0"), "annotations.csv:3: box width"),
        (lambda r: _append(r / "annotations.csv", "astronaut.jpg,1,2,3,4,2"), "annotations.csv:3: ignore must be 0 or 1"),
        (lambda r: _append(r / "annotations.csv", "ghost.jpg,1,2,3,4,0"), "annotations.csv:3: image 'ghost.jpg' is not in images.csv"),
        (lambda r: _append(r / "annotations.csv", "astronaut.jpg,1,2,3,4,0"), "n_faces=1 but annotations.csv has 2"),
        (lambda r: (r / "images" / "coffee.jpg").unlink(), "image 'coffee.jpg' has no file"),
        (lambda r: _append(r / "images.csv", "coffee.jpg,10,10,0,x,y"), "images.csv:5: image 'coffee.jpg' listed twice"),
        (lambda r: (r / "images.csv").unlink(), "images.csv: cannot read"),
        (lambda r: None, None),
    ],
)
def test_load_dataset_names_file_and_line_of_bad_input(photo_set, break_it, message):
    break_it(photo_set)
    with pytest.raises(EvaluationError, match=message) if message else does_not_raise():
        load_dataset(photo_set)


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def test_reading_an_image_whose_size_disagrees_with_images_csv_fails(photo_set):
    text = (photo_set / "images.csv").read_text().replace("coffee.jpg,600,400", "coffee.jpg,601,400")
    (photo_set / "images.csv").write_text(text)
    coffee = [im for im in load_dataset(photo_set).images if im.name == "coffee.jpg"][0]
    with pytest.raises(EvaluationError, match="images.csv says 601x400, the file is 600x400"):
        coffee.read()


# -- running detectors --------------------------------------------------------------------------
def test_evaluate_runs_a_detector_on_every_image(photo_set):
    face = Detections.from_xywh([[175, 70, 100, 110]], [0.9])
    det = FakeDetector(lambda img: face if img.shape == (512, 512, 3) else Detections.empty())
    r = evaluate(det, load_dataset(photo_set), progress=False)
    assert det.calls == 3
    assert (r.recall, r.fp, r.fp_per_100_negatives) == (1.0, 0, 0.0)
    assert r.latency_ms_p50 is not None and r.latency_ms_p50 >= 0


def test_a_real_model_finds_the_astronaut_and_nothing_on_the_cat_or_the_coffee(photo_set, models_dir):
    from faceguard.detectors import build_detector
    from faceguard.registry import ModelStore

    store = ModelStore(models_dir)
    det = build_detector(*store.load("v2.0.0-prod"))
    r = evaluate(det, load_dataset(photo_set), progress=False)
    assert (r.recall, r.fp_negatives, r.precision) == (1.0, 0, 1.0)


def test_eval_command_records_the_figures_in_manifest_and_log(photo_set, fg_env):
    from typer.testing import CliRunner

    from faceguard.cli import app
    from faceguard.log import ingest, queries
    from faceguard.registry import ModelStore

    result = CliRunner().invoke(app, ["eval", str(photo_set), "--model", "v2.0.0-prod", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["recall"] == 1.0 and printed["recorded"] is True
    bench = ModelStore.from_settings(fg_env).manifest("v2.0.0-prod").performance_benchmarks
    assert bench.evaluation["recall"] == 1.0 and bench.evaluation["fp_per_100_negatives"] == 0.0
    assert bench.avg_inference_time_ms > 0 and bench.memory_peak_mb > 0
    ingest(fg_env)
    rows = queries.evaluations(fg_env, version="v2.0.0-prod")
    assert len(rows) == 1 and rows.iloc[0]["metrics"]["recall"] == 1.0 and rows.iloc[0]["pr_curve"]


def test_eval_command_with_limit_records_nothing(photo_set, fg_env):
    from typer.testing import CliRunner

    from faceguard.cli import app
    from faceguard.registry import ModelStore

    store = ModelStore.from_settings(fg_env)
    before = store.manifest("v2.0.0-prod")
    result = CliRunner().invoke(app, ["eval", str(photo_set), "--model", "v2.0.0-prod", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "not recorded" in result.stderr
    assert store.manifest("v2.0.0-prod") == before


def test_eval_command_turns_a_bad_folder_into_one_line(tmp_path, fg_env):
    from typer.testing import CliRunner

    from faceguard.cli import app

    result = CliRunner().invoke(app, ["eval", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: data set folder does not exist"]


@pytest.mark.skipif(not EVAL_SET.is_dir(), reason=f"the dev evaluation set {EVAL_SET} is not present")
def test_the_shared_dev_set_loads_with_its_documented_counts():
    ds = load_dataset(EVAL_SET)
    sizes = np.concatenate([np.sqrt((im.boxes[~im.ignore, 2] - im.boxes[~im.ignore, 0])
                                    * (im.boxes[~im.ignore, 3] - im.boxes[~im.ignore, 1])) for im in ds.images])
    assert (len(ds), ds.n_faces, ds.n_negatives, int((sizes < 32).sum())) == (199, 1299, 34, 698)
