"""Tests for faceguard.media: every colour mode and container in, upright RGB out; no metadata
out; errors that name the file."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from contextlib import nullcontext as DoesNotRaise
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps, PngImagePlugin
from skimage import data as skdata

from faceguard import media
from faceguard.errors import (
    InputError,
    NotAnImageError,
    OutputError,
    TooManyPixelsError,
    TruncatedImageError,
    UnsupportedFormatError,
)

SECRETS = (b"SECRET-GPS-48.8584N", b"SECRET-XMP-owner", b"SECRET-comment", b"Exif", b"http://ns.adobe.com/xap")


def photo(width: int = 64, height: int = 48) -> np.ndarray:
    """Real photo content, small and not symmetric (so every orientation is distinguishable)."""
    return np.ascontiguousarray(cv2.resize(skdata.astronaut()[40:300, 120:420], (width, height), interpolation=cv2.INTER_AREA))


def save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kwargs)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


RGB = photo()
GRAY = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
RAMP16 = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
RAMP16_AS_8 = np.rint(RAMP16 / 257.0).astype(np.uint8)  # exact 16 -> 8 bit scaling
HALF_ALPHA = np.dstack([np.zeros((48, 64, 3), np.uint8), np.full((48, 64), 128, np.uint8)])


def tiff(array: np.ndarray, **kwargs) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, array, **kwargs)
    return out.getvalue()


def gif_two_frames() -> bytes:
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    return save(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)


def transparent_palette() -> bytes:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    im.paste(1, (0, 0, 4, 8))
    return save(im, "PNG", transparency=0)


# (name, bytes, format, expected rgb, max mean abs error)
DECODE_CASES = [
    ("rgb-png", save(Image.fromarray(RGB), "PNG"), "PNG", RGB, 0),
    ("rgb-jpeg", save(Image.fromarray(RGB), "JPEG", quality=95), "JPEG", RGB, 3),
    ("progressive-jpeg", save(Image.fromarray(RGB), "JPEG", quality=95, progressive=True), "JPEG", RGB, 3),
    ("gray-jpeg", save(Image.fromarray(GRAY), "JPEG", quality=95), "JPEG", np.dstack([GRAY] * 3), 3),
    ("cmyk-adobe-jpeg", save(Image.fromarray(RGB).convert("CMYK"), "JPEG", quality=95), "JPEG", RGB, 4),
    ("mpo", save(Image.fromarray(RGB), "MPO", quality=95, save_all=True, append_images=[Image.fromarray(GRAY)]), "MPO", RGB, 3),
    ("L-png", save(Image.fromarray(GRAY), "PNG"), "PNG", np.dstack([GRAY] * 3), 0),
    ("1-png", save(Image.new("1", (64, 48), 1), "PNG"), "PNG", np.full((48, 64, 3), 255, np.uint8), 0),
    ("LA-png", save(Image.fromarray(np.dstack([GRAY, np.zeros_like(GRAY)]), "LA"), "PNG"), "PNG",
     np.full((48, 64, 3), 255, np.uint8), 0),  # fully transparent -> white
    ("RGBA-png-half", save(Image.fromarray(HALF_ALPHA, "RGBA"), "PNG"), "PNG", np.full((48, 64, 3), 127, np.uint8), 0),
    ("RGBA-png-opaque", save(Image.fromarray(RGB).convert("RGBA"), "PNG"), "PNG", RGB, 0),
    ("P-png", save(Image.fromarray(RGB).quantize(256), "PNG"), "PNG", np.asarray(Image.fromarray(RGB).quantize(256).convert("RGB")), 0),
    ("P-transparent-png", transparent_palette(), "PNG",
     np.concatenate([np.full((8, 4, 3), (200, 10, 10), np.uint8), np.full((8, 4, 3), 255, np.uint8)], axis=1), 0),
    ("I;16-png", save(Image.fromarray(RAMP16), "PNG"), "PNG", np.dstack([RAMP16_AS_8] * 3), 0),
    ("I;16B-tiff", save(Image.fromarray(RAMP16.astype(">u2")), "TIFF"), "TIFF", np.dstack([RAMP16_AS_8] * 3), 0),
    ("rgb16-png", cv2.imencode(".png", np.dstack([RAMP16] * 3))[1].tobytes(), "PNG", np.dstack([RAMP16_AS_8] * 3), 1),
    ("rgb16-tiff", tiff(np.dstack([RAMP16] * 3), photometric="rgb"), "TIFF", np.dstack([RAMP16_AS_8] * 3), 1),
    ("I32-tiff", tiff(RAMP16.astype(np.int32)), "TIFF", np.dstack([RAMP16_AS_8] * 3), 0),
    ("F32-tiff", tiff(RAMP16.astype(np.float32) / 65535), "TIFF", np.dstack([RAMP16_AS_8] * 3), 0.01),
    ("webp-lossless", save(Image.fromarray(RGB), "WEBP", lossless=True), "WEBP", RGB, 0),
    ("webp", save(Image.fromarray(RGB), "WEBP", quality=95), "WEBP", RGB, 4),
    ("bmp", save(Image.fromarray(RGB), "BMP"), "BMP", RGB, 0),
    ("tiff", save(Image.fromarray(RGB), "TIFF"), "TIFF", RGB, 0),
    ("tiff-deflate", save(Image.fromarray(RGB), "TIFF", compression="tiff_deflate"), "TIFF", RGB, 0),
    ("gif-first-frame", gif_two_frames(), "GIF", np.full((32, 32, 3), (255, 0, 0), np.uint8), 0),
    ("avif", save(Image.fromarray(RGB), "AVIF", quality=95), "AVIF", RGB, 5),
]


@pytest.mark.parametrize(("data", "fmt", "expected", "tolerance"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES])
def test_decode_modes_and_formats(data, fmt, expected, tolerance) -> None:
    decoded = media.decode(data, source="case")
    rgb = decoded.rgb
    assert decoded.format == fmt
    assert rgb.dtype == np.uint8 and rgb.shape == expected.shape and rgb.flags.c_contiguous and rgb.flags.writeable
    assert (decoded.width, decoded.height) == (expected.shape[1], expected.shape[0])
    assert np.abs(rgb.astype(float) - expected).mean() <= tolerance


@pytest.mark.parametrize("kwargs", [{}, {"progressive": True}, {"subsampling": 0}])
def test_jpeg_fast_path_is_taken_and_matches_pillow(monkeypatch, kwargs) -> None:
    data = save(Image.fromarray(photo(640, 360)), "JPEG", quality=90, **kwargs)
    calls = []
    real = media.cv2.imdecode
    monkeypatch.setattr(media.cv2, "imdecode", lambda *a: calls.append(1) or real(*a))
    assert np.array_equal(media.decode(data).rgb, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert calls == [1]


def stray_marker_jpeg() -> bytes:
    data = bytearray(save(Image.fromarray(photo(640, 360)), "JPEG", quality=90))
    middle = len(data) // 2
    data[middle : middle + 2] = b"\xff\x32"  # not a marker that may appear inside a scan
    return bytes(data)


# EXIF orientation -> the Pillow transpose that exif_transpose applies; the test stores the
# inverse so that the upright image is known exactly.
UPRIGHTING = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # fmt: skip
INVERSE = {**UPRIGHTING, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def with_orientation(upright: Image.Image, tag: int, fmt: str) -> bytes:
    stored = upright if tag == 1 else upright.transpose(INVERSE[tag])
    exif = Image.Exif()
    exif[0x0112] = tag
    return save(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("tag", range(1, 9))
def test_exif_orientation_is_applied(tag, fmt) -> None:
    upright = Image.fromarray(RGB)
    data = with_orientation(upright, tag, fmt)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    decoded = media.decode(data)
    assert (decoded.orientation, decoded.orientation_applied) == (tag, tag != 1)
    assert (decoded.width, decoded.height) == upright.size
    assert np.array_equal(decoded.rgb, reference)
    if fmt == "PNG":  # lossless: also exactly the image before it was turned
        assert np.array_equal(decoded.rgb, RGB)


@pytest.mark.parametrize("bad_tag", [0, 9, 300])
def test_invalid_orientation_tag_means_upright(bad_tag) -> None:
    exif = Image.Exif()
    exif[0x0112] = bad_tag
    decoded = media.decode(save(Image.fromarray(RGB), "PNG", exif=exif.tobytes()))
    assert (decoded.orientation, decoded.orientation_applied) == (1, False)
    assert np.array_equal(decoded.rgb, RGB)


def with_metadata(fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "SECRET-GPS-48.8584N"  # ImageDescription
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0), 27: b"ASCII\0\0\0SECRET-GPS-48.8584N"})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/xap/1.0/">SECRET-XMP-owner</rdf:RDF></x:xmpmeta>'
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.fromarray(RGB)
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "SECRET-comment")
        text.add_itxt("XML:com.adobe.xmp", xmp.decode())
        return save(im, "PNG", exif=exif.tobytes(), pnginfo=text, icc_profile=icc)
    return save(im, fmt, exif=exif.tobytes(), xmp=xmp, comment=b"SECRET-comment", icc_profile=icc)


@pytest.mark.parametrize("source_fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("out_fmt", media.WRITABLE_FORMATS)
def test_encode_strips_all_metadata(source_fmt, out_fmt) -> None:
    data = with_metadata(source_fmt)
    assert all(s in data for s in SECRETS[:3])  # the input really carries them
    decoded = media.decode(data)
    assert decoded.orientation == 6  # and the rotation survived as pixels
    out = media.encode(decoded.rgb, format=out_fmt)
    reopened = Image.open(io.BytesIO(out))
    reopened.load()
    assert reopened.format == out_fmt and reopened.size == (RGB.shape[0], RGB.shape[1])
    assert len(reopened.getexif()) == 0
    assert not {"exif", "xmp", "comment", "icc_profile", "XML:com.adobe.xmp", "Comment"} & set(reopened.info)
    assert [s for s in SECRETS if s in out] == []


@pytest.mark.parametrize(
    ("rgb", "kwargs", "expectation"),
    [
        (RGB, {"format": "JPEG"}, DoesNotRaise()),
        (RGB, {"format": "jpg", "quality": 1}, DoesNotRaise()),
        (RGB[:, ::-1], {"format": "PNG"}, DoesNotRaise()),  # non-contiguous views are fine
        (RGB, {"format": "BMP"}, pytest.raises(ValueError, match=r"expected one of JPEG, PNG, WEBP, got 'BMP'")),
        (RGB, {"quality": 0}, pytest.raises(ValueError, match=r"quality: expected 1..100, got 0")),
        (RGB, {"quality": 101}, pytest.raises(ValueError, match=r"got 101")),
        (RGB.astype(np.float32), {}, pytest.raises(ValueError, match=r"uint8 RGB array, got float32")),
        (GRAY, {}, pytest.raises(ValueError, match=r"got uint8 \(48, 64\)")),
        (np.dstack([RGB, GRAY]), {}, pytest.raises(ValueError, match=r"\(48, 64, 4\)")),
        (np.zeros((0, 5, 3), np.uint8), {}, pytest.raises(ValueError, match=r"non-empty")),
        (np.zeros((1, 70_000, 3), np.uint8), {"format": "JPEG"}, pytest.raises(OutputError, match=r"70000x1.*65,535")),
        (np.zeros((17_000, 1, 3), np.uint8), {"format": "WEBP"}, pytest.raises(OutputError, match=r"16,383")),
    ],
)
def test_encode_validates(rgb, kwargs, expectation) -> None:
    with expectation:
        out = media.encode(rgb, **kwargs)
        assert media.decode(out).rgb.shape == rgb.shape


@pytest.mark.parametrize(("fmt", "magic", "tolerance"), [("JPEG", b"\xff\xd8\xff", 3), ("PNG", b"\x89PNG", 0), ("WEBP", b"RIFF", 4)])
def test_encode_round_trip(fmt, magic, tolerance) -> None:
    out = media.encode(RGB, format=fmt, quality=95)
    assert out.startswith(magic)
    assert np.abs(media.decode(out).rgb.astype(float) - RGB).mean() <= tolerance


def test_jpeg_quality_is_honoured() -> None:
    big = photo(640, 480)
    assert len(media.encode(big, quality=30)) < 0.6 * len(media.encode(big, quality=95))


@pytest.mark.parametrize(
    ("path", "input_format", "expected"),
    [
        ("out/a.jpg", None, "JPEG"),
        ("out/a.JPEG", "PNG", "JPEG"),
        ("a.jfif", None, "JPEG"),
        ("a.png", "JPEG", "PNG"),
        ("a.webp", None, "WEBP"),
        ("a.gif", "GIF", "PNG"),
        ("a.tif", "TIFF", "PNG"),
        ("a.bmp", None, "PNG"),
        ("noext", "MPO", "JPEG"),
        ("noext", "WEBP", "WEBP"),
        ("a.heic", None, "PNG"),
    ],
)
def test_output_format_for(path, input_format, expected) -> None:
    assert media.output_format_for(path, input_format=input_format) == expected


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [("o/a.gif", "PNG", "o/a.png"), ("o/a.JPG", "JPEG", "o/a.JPG"), ("o/a.jfif", "JPEG", "o/a.jfif"), ("o/a.png", "WEBP", "o/a.webp")],
)
def test_path_for_format(path, fmt, expected) -> None:
    assert media.path_for_format(path, fmt) == Path(expected)


# -- refusals ----------------------------------------------------------------------------------


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


REFUSALS = [
    ("empty", b"", NotAnImageError, r"photo.jpg: file is empty"),
    ("random", np.random.default_rng(1).bytes(4096), NotAnImageError, r"not an image"),
    ("text", b"name,age\nalice,31\n" * 50, NotAnImageError, r"not an image"),
    ("svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', UnsupportedFormatError, r"SVG"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", UnsupportedFormatError, r"PDF"),
    ("heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, UnsupportedFormatError, r"HEIC"),
    ("ico", save(Image.fromarray(RGB), "ICO"), UnsupportedFormatError, r"ICO images are not supported"),
    ("ppm", save(Image.fromarray(RGB), "PPM"), UnsupportedFormatError, r"PPM images are not supported"),
    ("jpeg-half", half(save(Image.fromarray(photo(256, 256)), "JPEG")), TruncatedImageError, r"JPEG data is truncated"),
    ("jpeg-stray-marker", stray_marker_jpeg(), TruncatedImageError, r"JPEG data is truncated or corrupt"),
    ("jpeg-header-only", save(Image.fromarray(RGB), "JPEG")[:40], TruncatedImageError, r"JPEG data is truncated"),
    ("png-half", half(save(Image.fromarray(RGB), "PNG")), TruncatedImageError, r"PNG data is truncated"),
    ("webp-half", half(save(Image.fromarray(RGB), "WEBP")), TruncatedImageError, r"WEBP data is truncated"),
    ("gif-half", half(save(Image.fromarray(RGB), "GIF")), TruncatedImageError, r"GIF data is truncated"),
    ("bmp-half", half(save(Image.fromarray(RGB), "BMP")), TruncatedImageError, r"BMP data is truncated"),
    ("tiff-half", half(save(Image.fromarray(RGB), "TIFF")), TruncatedImageError, r"TIFF data is truncated"),
    ("avif-half", half(save(Image.fromarray(RGB), "AVIF")), TruncatedImageError, r"AVIF data is truncated"),
]


@pytest.mark.parametrize(("data", "error", "match"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_decode_refuses(data, error, match) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the engine never prints, so no warnings leak either
        with pytest.raises(error, match=match) as info:
            media.decode(data, source="photo.jpg")
    assert str(info.value).startswith("photo.jpg: ")
    assert not isinstance(info.value.__cause__, InputError)  # translated where it entered


@pytest.mark.parametrize(
    ("max_pixels", "expectation"),
    [
        (64 * 48, DoesNotRaise()),
        (64 * 48 - 1, pytest.raises(TooManyPixelsError, match=r"64x48 is 3,072 pixels, over the limit of 3,071")),
    ],
)
def test_pixel_limit(max_pixels, expectation) -> None:
    with expectation:
        assert media.decode(save(Image.fromarray(RGB), "PNG"), max_pixels=max_pixels).rgb.shape == RGB.shape


@pytest.mark.parametrize(
    ("side", "match"),
    [
        (60_000, r"3,600,000,000 pixels, over the limit of 100,000,000"),  # past Pillow's own bomb error
        (12_000, r"12000x12000 is 144,000,000 pixels"),  # between Pillow's warning and error
    ],
)
def test_pixel_bomb_header_is_refused_before_decoding(side, match) -> None:
    bomb = png_header_only(side, side)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TooManyPixelsError, match=match):
            media.decode(bomb, source="bomb.png")
    assert time.perf_counter() - start < 0.5


# -- properties --------------------------------------------------------------------------------

SEEDS = {
    fmt: save(Image.fromarray(photo(24, 16)), fmt, **kw)
    for fmt, kw in [("JPEG", {}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {})]
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
)
def test_property_corrupt_bytes_give_input_errors_only(fmt, edits, cut) -> None:
    data = bytearray(SEEDS[fmt])
    for position, value in edits:
        data[position % len(data)] = value
    data = bytes(data[: max(cut, 1)]) if cut < len(data) else bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            decoded = media.decode(data, source="fuzz", max_pixels=10_000_000)
        except InputError:
            return
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3


@settings(max_examples=50, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_property_png_round_trip_is_exact(height, width, seed) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    assert np.array_equal(media.decode(media.encode(rgb, format="PNG")).rgb, rgb)
