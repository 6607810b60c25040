"""A perceptual hash of a whole image: the DCT pHash (Zauner 2010, the one of pHash.org and ImageHash).

Written here because neither ImageHash nor OpenCV's ``img_hash`` (opencv-contrib) is installed; it is
the usual recipe: 32x32 grey (area-averaged), 2-D DCT, the 8x8 lowest frequencies, each bit = that
coefficient above their median. The image is first brought to 256x256 bilinearly so the area average
is OpenCV's integer-factor path: 0.6 ms instead of 6 ms for a 1200x626 capture, with the same
distances on the test portraits (bench/capture_replay.py). Re-encoding (JPEG quality) and slight resizing move a few of the 64
bits; a different photo of the same person moves about half of them.
"""
from __future__ import annotations

import cv2
import numpy as np

BITS = 64


def phash(img_bgr: np.ndarray) -> int:
    """64-bit pHash of a decoded BGR (or grey) image."""
    mid = cv2.resize(img_bgr, (256, 256), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(mid, (32, 32), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    small = small.astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    # the median of the 63 AC terms (the DC term is the mean brightness, far above the others)
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def distance(a: int, b: int) -> int:
    """Hamming distance of two hashes: bits that differ, 0-64."""
    return (a ^ b).bit_count()


def to_hex(h: int) -> str:
    return f"{h:016x}"


def from_hex(s: str) -> int:
    return int(s, 16)
