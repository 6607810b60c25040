"""Is anybody there? People, not only faces: someone with their back to the camera is present.

OpenCV 5 has no built-in people detector any more (``cv2.HOGDescriptor`` is gone; checked on 5.0.0),
and a HOG pedestrian model would not fit a counter camera anyway (head and shoulders above a
counter, never a full body). Presence in a frame is therefore decided from three cheap signals,
any of which suffices:

* a face detection (any quality: a blurred or turned face is still a person);
* **background difference**: the window's own background is the per-pixel median of its frames
  (grey, 160 px wide, blurred); a region that differs from it by more than ``DIFF`` grey levels and
  covers at least ``min_area`` of the frame after a morphological opening (which removes on-screen
  timestamps and sensor noise) is somebody;
* **motion**: the same test between consecutive samples, which catches a person who stays for most
  of the window (the median then contains them) since people are never perfectly still.

All three err towards "present": a lighting change may make an empty counter look occupied, which
yields ``inconclusive`` (a reminder), never a false ``ghost_visit`` accusation.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WIDTH = 160
DIFF = 22
MOTION = 18


@dataclass
class Presence:
    fg_area: float  # fraction of the frame that differs from the window background
    motion_area: float  # fraction that changed since the previous sample
    box: tuple[int, int, int, int] | None  # largest changed region, full-frame pixels (x, y, w, h)

    def present(self, min_area: float) -> bool:
        return self.fg_area >= min_area or self.motion_area >= min_area


def _small(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    g = cv2.resize(g, (WIDTH, max(2, int(round(h * WIDTH / w)))), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (5, 5), 0)


_KERNEL = np.ones((3, 3), np.uint8)


def _largest(diff: np.ndarray, thr: int) -> tuple[float, tuple[int, int, int, int] | None]:
    m = (diff > thr).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _KERNEL)
    m = cv2.dilate(m, _KERNEL)  # join the pieces of one silhouette
    n, _, stats, _ = cv2.connectedComponentsWithStats(m)
    if n <= 1:
        return 0.0, None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, a = (int(v) for v in stats[i])
    return a / float(m.size), (x, y, w, h)


def analyze(images: list[np.ndarray], blind: list[bool] | None = None) -> list[Presence]:
    """One Presence per image (blind frames get zeros and are left out of the background)."""
    blind = blind or [False] * len(images)
    smalls = [None if b else _small(img) for img, b in zip(images, blind)]
    seen = [s for s in smalls if s is not None]
    if not seen:
        return [Presence(0.0, 0.0, None) for _ in images]
    bg = np.median(np.stack(seen), axis=0).astype(np.uint8)
    out: list[Presence] = []
    prev = None
    for img, s in zip(images, smalls):
        if s is None:
            out.append(Presence(0.0, 0.0, None))
            prev = None
            continue
        fg, box = _largest(cv2.absdiff(s, bg), DIFF)
        mo, mbox = _largest(cv2.absdiff(s, prev), MOTION) if prev is not None else (0.0, None)
        scale = img.shape[1] / WIDTH
        b = box if fg >= mo else mbox
        out.append(Presence(fg, mo, tuple(int(v * scale) for v in b) if b else None))
        prev = s
    return out
