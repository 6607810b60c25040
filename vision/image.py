"""Untrusted image bytes -> BGR array, with every check that can be done BEFORE decoding.

Terminals and the data exchange send us JPEG/PNG. Anything else, oversized uploads, headers that
declare decompression bombs (in pixels or in the memory their decoding needs) and truncated files
are refused with a stable ``code`` the API can return and a human ``reason``.
"""
from __future__ import annotations

import io
import struct
import threading
from contextlib import contextmanager

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG")
# Truncated uploads must fail, not be silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# The default decoding budgets (Settings.max_decoded_bytes, decode_memory_bytes): a 12 Mpx photo
# fits at full size; one of the largest decodes at a time beside small captures, the others wait.
DEFAULT_MAX_DECODED_BYTES = 100_000_000
DEFAULT_DECODE_MEMORY_BYTES = 150_000_000
# Longest side of a decoded image (Settings.max_decoded_side): faces need far less, and the face
# pipeline's memory grows with the image it is given.
DEFAULT_MAX_DECODED_SIDE = 2048
# How long a decode waits for memory held by others before the upload is refused as busy.
DECODE_WAIT_S = 10.0
# PNG colour type -> samples per pixel (grey, RGB, palette index, grey+alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Rows converted to BGR at a time: the only full-size copy made is the result itself.
_STRIP_ROWS = 256
# EXIF orientation -> the numpy/OpenCV steps that undo it (ImageOps.exif_transpose's table).
_ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


class ImageRejected(ValueError):
    def __init__(self, code: str, reason: str):
        self.code, self.reason = code, reason
        super().__init__(f"{code}: {reason}")

    def __reduce__(self):  # raised in a model process, re-raised in the API's (vision/workers.py)
        return type(self), (self.code, self.reason)


class _InFlight:
    """Estimated decoding bytes held at once by all the threads of this process: a per-image
    budget alone would still let forty request threads each decode an image at the budget."""

    def __init__(self):
        self.used = 0
        self.cv = threading.Condition()

    @contextmanager
    def hold(self, need: int, total: int):
        with self.cv:
            # one image alone always goes (its own budget was checked); otherwise wait for room
            if not self.cv.wait_for(lambda: self.used == 0 or self.used + need <= total, DECODE_WAIT_S):
                raise ImageRejected("busy", "other images are being decoded; try again in a few seconds")
            self.used += need
        try:
            yield
        finally:
            with self.cv:
                self.used -= need
                self.cv.notify_all()


IN_FLIGHT = _InFlight()


def image_kind(data: bytes) -> tuple[str, str]:
    """(file extension, content type) of bytes ``decode_image`` accepted: PNG or else JPEG."""
    return (".png", "image/png") if data[:8] == b"\x89PNG\r\n\x1a\n" else (".jpg", "image/jpeg")


def sample_layout(img: Image.Image, data: bytes) -> tuple[int, int]:
    """(channels, bytes per sample) the file's header declares: PNG IHDR bit depth and colour
    type, JPEG SOF components and precision."""
    if img.format == "PNG" and data[12:16] == b"IHDR" and len(data) >= 26:
        depth, colour = struct.unpack(">BB", data[24:26])
        return _PNG_CHANNELS.get(colour, 4), 2 if depth > 8 else 1
    layers = getattr(img, "layers", None) or len(img.getbands())
    return layers, 2 if getattr(img, "bits", 8) > 8 else 1


def decoding_bytes(w: int, h: int, channels: int, sample_bytes: int) -> int:
    """Memory one decode holds at its peak, estimated from the header: the decoder's samples plus
    the 8-bit BGR result."""
    return w * h * (channels * sample_bytes + 3)


def _reduce_jpeg(img: Image.Image, per_pixel: int, budget: int, max_side: int) -> None:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale (DCT scaling, no full-size buffer): enough to
    fit the budget, and as far as the result still has ``max_side`` (it is scaled down to it after)."""
    w, h = img.size
    scales = (1, 2, 4, 8)
    fits = next((s for s in scales if -(-w // s) * -(-h // s) * per_pixel <= budget), 8)
    big_enough = max(s for s in scales if s == 1 or max(-(-w // s), -(-h // s)) >= max_side)
    scale = max(fits, big_enough)
    if scale > 1:
        # draft() picks the largest scale whose result is at least the size asked for
        img.draft(img.mode, (max(1, w // scale), max(1, h // scale)))


def _to_bgr(img: Image.Image) -> np.ndarray:
    """8-bit BGR of a loaded image, converted a strip of rows at a time into the result."""
    w, h = img.size
    out = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, _STRIP_ROWS):
        strip = img.crop((0, y, w, min(h, y + _STRIP_ROWS)))
        rgb = strip if strip.mode == "RGB" else strip.convert("RGB")
        cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR, dst=out[y:y + rgb.height])
    return out


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int,
                 max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                 decode_memory_bytes: int = DEFAULT_DECODE_MEMORY_BYTES,
                 max_side: int = DEFAULT_MAX_DECODED_SIDE) -> np.ndarray:
    """BGR uint8 (h, w, 3), EXIF orientation applied, longest side at most ``max_side``. Raises ImageRejected with code
    empty | too_large | not_an_image | unsupported_format | too_many_pixels | too_much_memory | truncated | busy.

    A JPEG whose full-size decode would exceed ``max_decoded_bytes`` is decoded reduced (1/2 to
    1/8) to fit; a PNG (which cannot be) or a JPEG still too big is refused, before any pixel data
    is decoded. Decodes of the process together hold at most ``decode_memory_bytes`` (estimated);
    one that finds no room within DECODE_WAIT_S is refused as ``busy``."""
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
    channels, sample_bytes = sample_layout(img, data)
    per_pixel = channels * sample_bytes + 3
    if img.format == "JPEG":
        _reduce_jpeg(img, per_pixel, max_decoded_bytes, max_side)
    dw, dh = img.size
    need = decoding_bytes(dw, dh, channels, sample_bytes)
    if need > max_decoded_bytes:
        raise ImageRejected(
            "too_much_memory", f"decoding this {w}x{h} image ({channels} channel(s) of {8 * sample_bytes} bits) "
            f"would need about {need // 1_000_000} MB; the limit is {max_decoded_bytes // 1_000_000} MB: "
            "send a smaller or 8-bit image")
    with IN_FLIGHT.hold(need, decode_memory_bytes):
        try:
            img.load()
            orientation = img.getexif().get(0x0112, 1)
            out = _to_bgr(img)
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageRejected("truncated", f"the image data is incomplete or corrupt ({e})") from None
        finally:
            img.close()  # the decoder's buffer goes before the rotated copy is made
        # Phone captures are often stored sideways plus an EXIF orientation flag.
        step = _ORIENT.get(orientation)
        out = np.ascontiguousarray(step(out)) if step else out
        oh, ow = out.shape[:2]
        if max(oh, ow) <= max_side:
            return out
        f = max_side / max(oh, ow)
        return cv2.resize(out, (max(1, round(ow * f)), max(1, round(oh * f))), interpolation=cv2.INTER_AREA)
