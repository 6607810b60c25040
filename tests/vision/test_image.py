"""Untrusted uploads: every rejection code, checked before decoding where possible."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from vision.image import ImageRejected, decode_image

LIMITS = dict(max_bytes=8 * 1024 * 1024, max_pixels=40_000_000)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(w: int, h: int) -> bytes:
    """A ~60-byte PNG whose header claims w x h pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
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
        assert e.code in {"empty", "too_large", "not_an_image", "unsupported_format", "too_many_pixels", "truncated"}
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
