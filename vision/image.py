"""Untrusted image bytes -> BGR array, with every check that can be done BEFORE decoding.

Terminals and the data exchange send us JPEG/PNG. Anything else, oversized uploads, headers that
declare decompression bombs and truncated files are refused with a stable ``code`` the API can
return and a human ``reason``.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG")
# Truncated uploads must fail, not be silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageRejected(ValueError):
    def __init__(self, code: str, reason: str):
        self.code, self.reason = code, reason
        super().__init__(f"{code}: {reason}")


def image_kind(data: bytes) -> tuple[str, str]:
    """(file extension, content type) of bytes ``decode_image`` accepted: PNG or else JPEG."""
    return (".png", "image/png") if data[:8] == b"\x89PNG\r\n\x1a\n" else (".jpg", "image/jpeg")


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """BGR uint8 (h, w, 3), EXIF orientation applied. Raises ImageRejected with code
    empty | too_large | not_an_image | unsupported_format | too_many_pixels | truncated."""
    if not data:
        raise ImageRejected("empty", "the upload is empty")
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"the upload is {len(data)} bytes; the limit is {max_bytes}")
    try:
        # open() only parses the header: format and declared size, no pixel data yet.
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        # Pillow's own guard (2x its MAX_IMAGE_PIXELS) fires inside open(), before ours below.
        raise ImageRejected("too_many_pixels", f"the declared image size is far too large ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageRejected("not_an_image", "the data is not a recognisable image") from None
    if img.format not in ALLOWED_FORMATS:
        raise ImageRejected("unsupported_format", f"{img.format} images are not accepted; send JPEG or PNG")
    w, h = img.size
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise ImageRejected(
            "too_many_pixels", f"the image declares {w}x{h} = {w * h} pixels; the limit is {max_pixels}"
        )
    try:
        img.load()
        # Phone captures are often stored sideways plus an EXIF orientation flag.
        ImageOps.exif_transpose(img, in_place=True)
        rgb = img if img.mode == "RGB" else img.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageRejected("truncated", f"the image data is incomplete or corrupt ({e})") from None
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
