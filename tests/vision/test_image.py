"""Untrusted uploads: every rejection code, checked before decoding where possible."""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from vision.image import ImageRejected, decode_image

LIMITS = dict(max_bytes=8 * 1024 * 1024, max_pixels=40_000_000)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(w: int, h: int, depth: int = 8, colour: int = 2) -> bytes:
    """A ~60-byte PNG whose header claims w x h pixels (of that bit depth and colour type)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))


def _jpeg_bomb(w: int, h: int) -> bytes:
    """A tiny real JPEG with its SOF0 frame header patched to claim w x h."""
    data = bytearray(_encode(Image.new("RGB", (16, 16), "gray"), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5: i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def test_decodes_jpeg_to_bgr(testdata):
    data = (testdata / "faces" / "obama.jpg").read_bytes()
    img = decode_image(data, **LIMITS)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[:2] == (1137, 910)


def test_decodes_png_bgr_channel_order():
    data = _encode(Image.new("RGB", (8, 4), (255, 0, 0)), "PNG")  # pure red
    img = decode_image(data, **LIMITS)
    assert img.shape == (4, 8, 3) and tuple(img[0, 0]) == (0, 0, 255)


def test_applies_exif_orientation():
    # Phones store portrait shots as landscape pixels + "rotate 90" in EXIF.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.new("RGB", (60, 20), "white"), "JPEG", exif=exif)
    assert decode_image(data, **LIMITS).shape[:2] == (60, 20)


@pytest.mark.parametrize(
    "data, limits, code",
    [
        (b"", {}, "empty"),
        (b"\xff\xd8" + b"\x00" * 100, {"max_bytes": 50}, "too_large"),
        (b"hello, this is text and not a picture at all" * 3, {}, "not_an_image"),
        (_encode(Image.new("RGB", (8, 8)), "GIF"), {}, "unsupported_format"),
        (_encode(Image.new("RGB", (8, 8)), "BMP"), {}, "unsupported_format"),
        (_encode(Image.new("RGB", (8, 8)), "WEBP"), {}, "unsupported_format"),
        (_png_bomb(60000, 60000), {}, "too_many_pixels"),
        (_jpeg_bomb(60000, 60000), {}, "too_many_pixels"),
        (_png_bomb(8000, 6000), {}, "too_many_pixels"),  # below Pillow's own guard, above ours
        (_jpeg_bomb(1000, 1000), {"max_pixels": 999_999}, "too_many_pixels"),
    ],
    ids=["empty", "too_large", "text", "gif", "bmp", "webp", "png_bomb", "jpeg_bomb", "png_48mp", "jpeg_limit"],
)
def test_rejections(data, limits, code):
    assert len(data) < 2000 or code == "too_large" or code == "unsupported_format"
    with pytest.raises(ImageRejected) as e:
        decode_image(data, **{**LIMITS, **limits})
    assert e.value.code == code and e.value.reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(fmt, testdata):
    if fmt == "JPEG":
        data = (testdata / "faces" / "obama.jpg").read_bytes()
    else:
        rng = np.random.default_rng(0)
        data = _encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), "PNG")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageRejected) as e:
        decode_image(data[: len(data) // 2], **LIMITS)
    assert e.value.code == "truncated"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@hsettings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_arbitrary_bytes_only_ever_raise_imagerejected(data):
    try:
        img = decode_image(data, max_bytes=10_000, max_pixels=1_000_000)
    except ImageRejected as e:
        assert e.code in {"empty", "too_large", "not_an_image", "unsupported_format", "too_many_pixels",
                          "too_much_memory", "truncated"}
    else:
        assert img.dtype == np.uint8 and img.ndim == 3


@hsettings(max_examples=40, deadline=None)
@given(st.sampled_from(["JPEG", "PNG"]), st.integers(0, 2000))
def test_mangled_real_images_only_raise_imagerejected(fmt, cut):
    data = _encode(Image.new("RGB", (40, 30), (10, 200, 30)), fmt)
    mangled = data[:cut] + bytes(reversed(data[cut:cut + 7])) + data[cut + 7:]
    try:
        decode_image(mangled, **LIMITS)
    except ImageRejected:
        pass


# --- memory: what decoding needs, not only how many pixels (issue 17) ------------------------------


@pytest.mark.parametrize("depth, colour, need_mb", [(16, 6, 396), (16, 2, 324), (8, 6, 252)])
def test_png_needing_more_memory_than_the_budget_is_refused_from_its_header(depth, colour, need_mb):
    # 6000x6000 is under the pixel limit; 16-bit RGBA would take ~400 MB to decode
    data = _png_bomb(6000, 6000, depth, colour)
    with pytest.raises(ImageRejected) as e:
        decode_image(data, **LIMITS)
    assert e.value.code == "too_much_memory"
    assert f"about {need_mb} MB" in e.value.reason and "limit is 100 MB" in e.value.reason


def test_png_within_the_budget_decodes_to_8_bit_bgr():
    rgba16 = np.zeros((30, 40, 4), np.uint16)
    rgba16[..., 2], rgba16[..., 3] = 65535, 65535  # opaque red (cv2 writes BGRA order)
    data = cv2.imencode(".png", rgba16)[1].tobytes()  # Pillow cannot write 16-bit RGBA
    img = decode_image(data, **LIMITS, max_decoded_bytes=30 * 40 * 11)
    assert img.dtype == np.uint8 and img.shape == (30, 40, 3) and tuple(img[0, 0]) == (0, 0, 255)
    with pytest.raises(ImageRejected):
        decode_image(data, **LIMITS, max_decoded_bytes=30 * 40 * 11 - 1)


def test_jpeg_over_the_budget_is_decoded_reduced():
    data = _encode(Image.new("RGB", (2000, 1000), (0, 0, 200)), "JPEG")
    full = 2000 * 1000 * 6  # 3 samples + the 3-byte BGR result per pixel
    assert decode_image(data, **LIMITS, max_decoded_bytes=full).shape == (1000, 2000, 3)
    half = decode_image(data, **LIMITS, max_decoded_bytes=full - 1)
    assert half.shape == (500, 1000, 3) and abs(int(half[10, 10, 0]) - 200) < 4
    assert decode_image(data, **LIMITS, max_decoded_bytes=full // 16).shape == (250, 500, 3)
    with pytest.raises(ImageRejected) as e:  # even 1/8 does not fit
        decode_image(data, **LIMITS, max_decoded_bytes=full // 100)
    assert e.value.code == "too_much_memory"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows(orientation):
    rng = np.random.default_rng(orientation)
    src = Image.fromarray(rng.integers(0, 255, (7, 5, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(src, "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB")))[..., ::-1]
    assert np.array_equal(decode_image(data, **LIMITS), expected)
