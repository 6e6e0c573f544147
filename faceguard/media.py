"""Image bytes in, upright RGB out; RGB in, metadata-free bytes out.

Decoding (:func:`decode`)

- Accepted: JPEG (and MPO, the multi-picture JPEG many cameras write), PNG, WebP, BMP, TIFF,
  GIF and AVIF. Animated or multi-page files give their first frame.
- The pixel count is read from the header and checked against ``max_pixels`` *before* any
  pixel is decoded, so a 50000x50000 "bomb" costs microseconds, not gigabytes.
- EXIF orientation is applied (the same eight cases as ``ImageOps.exif_transpose``); the tag
  is reported so callers can log it.
- Every colour mode becomes 8-bit RGB. Transparent pixels are composited over **white**: it
  is what viewers and browsers show for a transparent photo on a page, and a face behind
  a half-transparent layer stays visible to the detector. 16-bit samples are scaled
  (``round(v * 255 / 65535)``), never clipped. Embedded ICC profiles are not applied, and are
  not written back either (see encoding), so wide-gamut photos lose a little saturation.
- Truncated or corrupt data is an error, never a silently grey-padded image
  (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off).
- Structurally sound RGB/grey JPEGs (baseline or progressive) are decoded by OpenCV, 1.2-2x
  faster than Pillow here (both use libjpeg-turbo; the pixels are identical); everything
  else, including any JPEG with a stray marker or no end marker, by Pillow.

Encoding (:func:`encode`)

Output carries no metadata at all: no EXIF (so no GPS, camera serial or thumbnail, which
would show the un-blurred face), no XMP, no comments or text chunks, and no ICC profile
(a profile names the device that made it). Pixels are already upright, so no orientation
tag is needed. Only JPEG, PNG and WebP are written; :func:`output_format_for` picks one.

Files (:func:`read_bytes`, :func:`write_atomic`) live in :mod:`faceguard.files` and are
re-exported here: they translate ``OSError`` into ``InputError`` / ``OutputError`` naming the
file, and a write either replaces the target completely or leaves it as it was.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import ExifTags, Image

from faceguard.errors import NotAnImageError, OutputError, TooManyPixelsError, TruncatedImageError
from faceguard.errors import UnsupportedFormatError
from faceguard.files import read_bytes, write_atomic  # re-exported: callers use media.read_bytes / write_atomic

__all__ = [
    "ACCEPTED_FORMATS", "WRITABLE_FORMATS", "DecodedImage", "decode", "encode", "output_format_for",
    "output_format_for_input", "path_for_format", "read_bytes", "write_atomic",
]  # fmt: skip

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF", "AVIF"})
WRITABLE_FORMATS = ("JPEG", "PNG", "WEBP")

_EXTENSION_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_FORMAT_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_MAX_SIDE = {"JPEG": 65_535, "WEBP": 16_383, "PNG": 2**31 - 1}

# Magic numbers of the formats we accept: a file that starts like one of these but that
# Pillow cannot open is a broken image, not "not an image".
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)  # fmt: skip
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# Exceptions Pillow's plugins raise on malformed data (fuzzing finds all of these).
# RuntimeError: the AVIF plugin's way of saying the data is corrupt.
_PILLOW_DATA_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, RuntimeError)


@dataclass(frozen=True)
class DecodedImage:
    """An upright 8-bit RGB image and what was learned decoding it."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, upright
    format: str  # Pillow's name of the container: "JPEG", "PNG", "WEBP", ...
    orientation: int = 1  # the EXIF orientation tag as found (1..8), 1 when absent or invalid
    orientation_applied: bool = False

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode(data: bytes, *, source: str | Path | None = None, max_pixels: int = 100_000_000) -> DecodedImage:
    """Decode image bytes into an upright RGB array.

    ``source`` only names the file in error messages. Raises ``NotAnImageError``,
    ``UnsupportedFormatError``, ``TruncatedImageError`` or ``TooManyPixelsError``.

    >>> decode(encode(np.zeros((2, 3, 3), np.uint8), format="PNG")).rgb.shape
    (2, 3, 3)
    """
    if not data:
        raise NotAnImageError(source, "file is empty")
    _refuse_known_non_images(data, source)
    with _quiet_pillow(), _open(data, source, max_pixels) as im:
        if im.format not in ACCEPTED_FORMATS:
            accepted = ", ".join(sorted(ACCEPTED_FORMATS))
            raise UnsupportedFormatError(source, f"{im.format} images are not supported (accepted: {accepted})")
        width, height = im.size
        if width * height > max_pixels:
            reason = f"{width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,}"
            raise TooManyPixelsError(source, reason)
        rgb = _decode_jpeg_fast(data, im)
        if rgb is None:
            _load(im, source)
            rgb = _to_rgb(im, source)
        orientation = _orientation(im)
    rgb = _ORIENT[orientation](rgb)
    rgb = np.require(rgb, np.uint8, ["C", "W"])
    return DecodedImage(rgb=rgb, format=im.format, orientation=orientation, orientation_applied=orientation != 1)


def _refuse_known_non_images(data: bytes, source: str | Path | None) -> None:
    head = data[:4096].lstrip()
    if head.startswith(b"%PDF-"):
        raise UnsupportedFormatError(source, "PDF documents are not supported; export the page as PNG or JPEG")
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        raise UnsupportedFormatError(source, "SVG (vector) images are not supported; export as PNG or JPEG")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS and b"avif" not in data[8:64]:
        raise UnsupportedFormatError(source, "HEIC/HEIF images are not supported; convert to JPEG first")


def _open(data: bytes, source: str | Path | None, max_pixels: int) -> Image.ImageFile.ImageFile:
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow allows"
        raise TooManyPixelsError(source, f"{count}, over the limit of {max_pixels:,}") from exc
    except _PILLOW_DATA_ERRORS as exc:
        known = _sniff(data)
        if known is not None:
            raise TruncatedImageError(source, f"{known} data is truncated or corrupt (unreadable header)") from exc
        raise NotAnImageError(source, "not an image (no known image format recognised)") from exc


def _sniff(data: bytes) -> str | None:
    """The accepted format these bytes start like, if any."""
    known = next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
    if known is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        known = "WEBP"
    if known is None and data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        known = "AVIF"
    return known


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    # Pillow warns about corrupt EXIF or truncated reads before it raises, and about sizes
    # over its own bomb limit (89M..179M pixels) that max_pixels has already allowed; the
    # engine never prints, and the exception we raise says it all. Pillow's own bomb
    # *error* stays on as a second line behind max_pixels (we do not change that
    # process-wide setting). catch_warnings is not thread-safe on 3.11; the worst a race
    # can do is leave this one filter installed.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"PIL\.")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _load(im: Image.Image, source: str | Path | None) -> None:
    try:
        im.load()
    except _PILLOW_DATA_ERRORS as exc:
        raise TruncatedImageError(source, f"{im.format} data is truncated or corrupt ({exc})") from exc


def _decode_jpeg_fast(data: bytes, im: Image.Image) -> np.ndarray | None:
    """OpenCV's JPEG decode, or None when the file is not a case it handles identically."""
    if im.format not in ("JPEG", "MPO") or im.mode not in ("RGB", "L"):
        return None  # CMYK (Adobe inversion) and friends: Pillow's conversion is the reference
    # OpenCV returns whatever libjpeg produced even when a stray marker or a missing end cut
    # the scan short (the rest padded grey); Pillow raises. So only structurally sound files
    # take this path, and everything else goes to Pillow, which decides.
    if not _jpeg_scan_is_clean(data):
        return None
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if rgb is None or rgb.shape[:2] != (im.height, im.width):
        return None
    return rgb


# Bytes that may follow 0xFF between the first SOS and EOI: stuffing, fill, restart markers,
# and the tables/headers that sit between the scans of a progressive JPEG.
_JPEG_IN_SCAN = np.zeros(256, bool)
_JPEG_IN_SCAN[[0x00, 0xFF, 0xC4, 0xCC, 0xDA, 0xDB, 0xDD, 0xFE, *range(0xD0, 0xD8), *range(0xE0, 0xF0)]] = True


def _jpeg_scan_is_clean(data: bytes) -> bool:
    """True when the headers walk cleanly to a scan and the scans end with EOI, with no
    stray markers in between (bit errors inside entropy data are not detectable, by either
    decoder, and are decoded the same way by both)."""
    pos, end = 2, len(data)
    while True:  # header segments: FF xx + big-endian length, up to the first SOS
        if pos + 4 > end or data[pos] != 0xFF:
            return False
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xFF:
            pos += 1
            continue
        pos += 2 + length
        if marker == 0xDA:
            break
    scan = np.frombuffer(data, np.uint8, offset=min(pos, end))
    following = scan[1:][scan[:-1] == 0xFF]
    eoi = np.flatnonzero(following == 0xD9)
    return bool(len(eoi)) and bool(_JPEG_IN_SCAN[following[: eoi[0]]].all())


def _to_rgb(im: Image.Image, source: str | Path | None) -> np.ndarray:
    mode = im.mode
    if mode in _ALPHA_MODES or (mode in ("1", "L", "P", "RGB") and "transparency" in im.info):
        return _composite_on_white(np.asarray(im.convert("RGBA")))
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("I;16"):
        return _gray_to_rgb(_scale_to_8bit(np.asarray(im), 65_535.0))
    if mode in ("I", "F"):
        return _gray_to_rgb(_wide_gray_to_8bit(np.asarray(im), mode))
    try:
        return np.asarray(im.convert("RGB"))
    except ValueError as exc:
        raise UnsupportedFormatError(source, f"colour mode {mode} is not supported") from exc


def _scale_to_8bit(values: np.ndarray, full_scale: float) -> np.ndarray:
    scaled = np.rint(values.astype(np.float32) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _wide_gray_to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    # Pillow opens 16-bit greyscale from some writers as 32-bit "I", and scientific TIFFs as
    # "F" in 0..1; anything outside those ranges has no defined white, so it is stretched.
    values = np.nan_to_num(values.astype(np.float32))
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if mode == "I" and lo >= 0 and hi <= 65_535:
        return _scale_to_8bit(values, 65_535.0)
    if mode == "F" and lo >= 0 and hi <= 1.0:
        return _scale_to_8bit(values, 1.0)
    return _scale_to_8bit(values - lo, max(hi - lo, 1e-12))


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    rgb = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:].astype(np.uint16)
    # Exact rounding of rgb * a/255 + 255 * (1 - a/255); fits uint16 (max 65025 + 127).
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _PILLOW_DATA_ERRORS:
        return 1  # unreadable EXIF: the pixels are still good, treat them as upright
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# EXIF orientation -> the transform that makes the image upright (ImageOps.exif_transpose).
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


# -- encoding ----------------------------------------------------------------------------------


def encode(rgb: np.ndarray, *, format: str = "JPEG", quality: int = 90) -> bytes:
    """Encode an (H, W, 3) uint8 RGB array as JPEG, PNG or WebP with no metadata at all.

    ``quality`` (1..100) applies to JPEG and WebP. Raises ``ValueError`` for a bad array,
    format or quality (programming errors) and ``OutputError`` when the format cannot hold
    the image (JPEG sides stop at 65,535 px, WebP at 16,383 px).
    """
    _check_rgb(rgb)
    fmt = "JPEG" if format.upper() == "JPG" else format.upper()
    if fmt not in _ENCODERS:
        raise ValueError(f"format: expected one of {', '.join(WRITABLE_FORMATS)}, got {format!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality: expected 1..100, got {quality}")
    height, width = rgb.shape[:2]
    if max(height, width) > _MAX_SIDE[fmt]:
        raise OutputError(f"<{fmt} image>", f"{width}x{height} is too large for {fmt} (max side {_MAX_SIDE[fmt]:,} px)")
    return _ENCODERS[fmt](np.ascontiguousarray(rgb), quality)


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {got}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected a non-empty image, got shape {rgb.shape}")


def _cv2_encode(ext: str, rgb: np.ndarray, params: list[int]) -> bytes:
    # OpenCV writes only the bare container (a JFIF APP0 header for JPEG, no PNG text chunks).
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"<{ext[1:].upper()} image>", "OpenCV could not encode the image")
    return buf.tobytes()


def _encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    # Same libjpeg-turbo and defaults (4:2:0) as Pillow, identical bytes, ~20 % faster.
    return _cv2_encode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _encode_png(rgb: np.ndarray, quality: int) -> bytes:
    # zlib level 1: photos barely compress further (-5 %) while level 6 takes 4x as long.
    return _cv2_encode(".png", rgb, [cv2.IMWRITE_PNG_COMPRESSION, 1])


def _encode_webp(rgb: np.ndarray, quality: int) -> bytes:
    # method=2 halves the time of the default (4) for ~2 % larger files. Pillow writes EXIF,
    # XMP or ICC into WebP only when passed explicitly; a fresh fromarray image has none.
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, "WEBP", quality=quality, method=2)
    return out.getvalue()


_ENCODERS: dict[str, Callable[[np.ndarray, int], bytes]] = {"JPEG": _encode_jpeg, "PNG": _encode_png, "WEBP": _encode_webp}


def output_format_for(path: str | Path, *, input_format: str | None = None) -> str:
    """The format to write ``path`` in: from its extension when that is .jpg/.jpeg/.png/.webp;
    otherwise the input's format when we can write it (MPO counts as JPEG), else PNG, which
    is lossless, so a BMP, TIFF or GIF input loses nothing.

    >>> output_format_for("out/a.webp"), output_format_for("a.tif", input_format="TIFF")
    ('WEBP', 'PNG')
    """
    by_extension = _EXTENSION_FORMATS.get(Path(path).suffix.lower())
    if by_extension is not None:
        return by_extension
    return output_format_for_input(input_format)


def output_format_for_input(input_format: str | None) -> str:
    """The format an image decoded as ``input_format`` is written in when nothing else says:
    lossy inputs stay JPEG (MPO included) or WebP, everything else becomes PNG so no further
    quality is lost.

    >>> output_format_for_input("MPO"), output_format_for_input("GIF")
    ('JPEG', 'PNG')
    """
    fmt = "JPEG" if input_format in ("MPO", "JPEG") else input_format
    return fmt if fmt in WRITABLE_FORMATS else "PNG"


def path_for_format(path: str | Path, fmt: str) -> Path:
    """``path`` if its extension already names ``fmt``, else ``path`` with ``fmt``'s usual
    extension, so a GIF input written as PNG ends in ``.png``, not ``.gif``.

    >>> str(path_for_format("out/cat.gif", "PNG")), str(path_for_format("out/cat.JPEG", "JPEG"))
    ('out/cat.png', 'out/cat.JPEG')
    """
    path = Path(path)
    if _EXTENSION_FORMATS.get(path.suffix.lower()) == fmt:
        return path
    return path.with_suffix(_FORMAT_SUFFIXES[fmt])
