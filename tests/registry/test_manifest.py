import json

import pytest

from faceguard.errors import InvalidVersionError, ManifestError
from faceguard.registry import Manifest, Version
from tests.conftest import MODELS


@pytest.mark.parametrize("name", ["v1.0.0-prod", "v0.1.12-beta", "v10.2.3-alpha"])
def test_valid_version_names(name):
    assert str(Version.parse(name)) == name


@pytest.mark.parametrize("name", ["1.0.0-prod", "v1.0-prod", "v1.0.0", "v1.0.0-rc", "v01.0.0-prod", "latest", ""])
def test_invalid_version_names_are_refused_with_the_rule(name):
    with pytest.raises(InvalidVersionError, match=r"v\{major\}"):
        Version.parse(name)


def test_versions_order_by_number_then_channel():
    names = ["v1.10.0-prod", "v1.2.0-beta", "v1.2.0-prod", "v1.2.0-alpha", "v0.9.9-prod"]
    assert [str(v) for v in sorted(map(Version.parse, names))] == [
        "v0.9.9-prod", "v1.2.0-alpha", "v1.2.0-beta", "v1.2.0-prod", "v1.10.0-prod"]
    assert Version.parse("v1.2.0-prod").is_stable and not Version.parse("v1.2.0-beta").is_stable


def test_shipped_manifests_round_trip():
    for d in sorted(p for p in MODELS.iterdir() if p.is_dir() and not p.is_symlink()):
        m = Manifest.read(d)
        assert Manifest.from_dict(json.loads(m.to_json())) == m
        assert m.source and m.license and m.changelog


def _manifest_dict():
    return json.loads((MODELS / "v1.1.0-prod" / "model_manifest.json").read_text())


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.pop("sha256"), "sha256"),
        (lambda d: d.update(sha256="abc"), "sha256"),
        (lambda d: d.update(confidence_threshold=1.5), "confidence_threshold"),
        (lambda d: d.update(iou_threshold="high"), "iou_threshold"),
        (lambda d: d.update(input_size=[0, 192]), "input_size"),
        (lambda d: d.update(base_architecture="yolo"), "base_architecture"),
        (lambda d: d.update(created_at="yesterday"), "created_at"),
        (lambda d: d.update(performance_benchmarks=3), "performance_benchmarks"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d.update(model_file="../x.tflite"), "model_file"),
    ],
)
def test_invalid_manifest_names_the_field(change, field):
    d = _manifest_dict()
    change(d)
    with pytest.raises(ManifestError) as err:
        Manifest.from_dict(d)
    assert err.value.field == field
    assert field in str(err.value) and "v1.1.0-prod" in str(err.value)


def test_manifest_must_match_its_folder(tmp_path):
    d = tmp_path / "v9.9.9-beta"
    d.mkdir()
    (d / "model_manifest.json").write_text(json.dumps(_manifest_dict()))
    with pytest.raises(ManifestError, match="folder name"):
        Manifest.read(d)


def test_unreadable_manifest_is_a_manifest_error(tmp_path):
    d = tmp_path / "v1.0.0-prod"
    d.mkdir()
    (d / "model_manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(d)
