"""A perceptual hash of a whole image: the DCT pHash (Zauner 2010, the one of pHash.org and ImageHash).

Written here because neither ImageHash nor OpenCV's ``img_hash`` (opencv-contrib) is installed; it is
the usual recipe: grey, 32x32 (area-averaged), 2-D DCT, the 8x8 lowest frequencies, each bit = that
coefficient above their median. Re-encoding (JPEG quality) and slight resizing move a few of the 64
bits; a different photo of the same person moves about half of them.
"""
from __future__ import annotations

import cv2
import numpy as np

BITS = 64


def phash(img_bgr: np.ndarray) -> int:
    """64-bit pHash of a decoded BGR (or grey) image."""
    grey = img_bgr if img_bgr.ndim == 2 else cv2.cvtColor(img_bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
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
