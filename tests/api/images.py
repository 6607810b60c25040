"""Test images made at test time from ../shared/testdata (nothing is committed)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read(path: Path) -> bytes:
    return Path(path).read_bytes()


def jpeg(img: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def id_card_photo(portrait: bytes, pipeline) -> bytes:
    """An ID-card-like photo: head and shoulders, about 102x126 px, light background."""
    img = decode(portrait)
    face = pipeline.analyze(img)[0].face
    x1, y1, x2, y2 = face.bbox
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w = w * 0.85
    top, bottom = cy - h * 1.05, cy + h * 1.05
    crop = img[max(0, int(top)):int(bottom), max(0, int(cx - half_w)):int(cx + half_w)]
    return jpeg(cv2.resize(crop, (102, 126), interpolation=cv2.INTER_AREA), 90)


def blurred(portrait: bytes, sigma: float = 9.0) -> bytes:
    return jpeg(cv2.GaussianBlur(decode(portrait), (0, 0), sigma))


def empty_room(w: int = 800, h: int = 600) -> bytes:
    """A faceless scene: wall, counter, some texture."""
    rng = np.random.default_rng(7)
    img = np.full((h, w, 3), (200, 210, 215), np.uint8)
    cv2.rectangle(img, (0, int(h * 0.65)), (w, h), (90, 110, 140), -1)
    cv2.rectangle(img, (int(w * 0.6), int(h * 0.2)), (int(w * 0.85), int(h * 0.5)), (40, 60, 40), -1)
    noise = rng.integers(0, 12, img.shape, dtype=np.uint8)
    return jpeg(cv2.add(img, noise))


def decompression_bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG whose header declares a huge image (the bytes stay small)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # a few compressed rows of zeros; the declared size is what matters
    idat = zlib.compress(b"\x00" * (1 + width * 3) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif() -> bytes:
    """A valid GIF: an image, but not a format terminals may send."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 30, 30)).save(buf, format="GIF")
    return buf.getvalue()
