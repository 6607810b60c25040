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
yields ``inconclusive`` (a reminder), never a false ``ghost_visit`` accusation. Each sample is first
scaled to the window's brightness (the median of its pixel-wise ratio to the window's median frame:
the camera's auto exposure and lights dimming change the whole picture, a person only a part of it),
so that a lighting change alone does not make an empty counter look occupied.

Not every change is a customer (correlate/check.py, correlate/zones.py): the changed pixels of each
sample are kept (``fg_mask``, ``motion_mask``, at the analysis size) so the checker can ask what is
left once ignored areas, the staff side and the staff's own head and body are taken out
(:func:`residual`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
    fg_mask: np.ndarray | None = field(default=None, repr=False)  # changed pixels (analysis size, 0/1)
    motion_mask: np.ndarray | None = field(default=None, repr=False)
    scale: float = 1.0  # full-frame pixels per analysis pixel

    def present(self, min_area: float) -> bool:
        return self.fg_area >= min_area or self.motion_area >= min_area


def small_size(shape) -> tuple[int, int]:
    """(width, height) of the analysis image of a frame of ``shape`` (for masks given to analyze)."""
    h, w = shape[:2]
    return WIDTH, max(2, int(round(h * WIDTH / w)))


def grey_small(img: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """The analysis image: grey, ``WIDTH`` px wide (or ``size``), blurred against noise and compression."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    g = cv2.resize(g, size or small_size(img.shape), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (5, 5), 0)



def level_to(s: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``s`` scaled to ``ref``'s brightness (the median of their pixel-wise ratio: exposure and lights
    change the whole picture, a person only part of it)."""
    ok = ref > 10
    if not ok.any():
        return s
    g = float(np.clip(np.median(s.astype(np.float32)[ok] / ref[ok].astype(np.float32)), 0.5, 2.0))
    return s if abs(g - 1.0) < 0.01 else np.clip(s.astype(np.float32) / g, 0, 255).astype(np.uint8)


def _levelled(smalls: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """Each sample scaled to the window's brightness: the median over pixels of its ratio to the
    window's median frame is the exposure/lighting gain (a person changes fewer than half the pixels)."""
    seen = [s for s in smalls if s is not None]
    ref = np.median(np.stack(seen), axis=0).astype(np.float32)
    ok = ref > 10
    if not ok.any():
        return smalls
    out = []
    for s in smalls:
        if s is None:
            out.append(None)
            continue
        g = float(np.clip(np.median(s.astype(np.float32)[ok] / ref[ok]), 0.5, 2.0))
        out.append(s if abs(g - 1.0) < 0.01 else np.clip(s.astype(np.float32) / g, 0, 255).astype(np.uint8))
    return out


_KERNEL = np.ones((3, 3), np.uint8)


def _changed(diff: np.ndarray, thr: int, keep: np.ndarray | None) -> np.ndarray:
    m = (diff > thr).astype(np.uint8)
    if keep is not None:
        m &= keep
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _KERNEL)
    return cv2.dilate(m, _KERNEL)  # join the pieces of one silhouette


def _largest(m: np.ndarray) -> tuple[float, tuple[int, int, int, int] | None]:
    n, _, stats, _ = cv2.connectedComponentsWithStats(m)
    if n <= 1:
        return 0.0, None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, a = (int(v) for v in stats[i])
    return a / float(m.size), (x, y, w, h)


def analyze(images: list[np.ndarray], blind: list[bool] | None = None,
            keep: np.ndarray | None = None) -> list[Presence]:
    """One Presence per image (blind frames get zeros and are left out of the background). ``keep``:
    0/1 mask of the analysis size (:func:`small_size`) where changes count at all (ignored areas 0)."""
    blind = blind or [False] * len(images)
    smalls = [None if b else grey_small(img) for img, b in zip(images, blind)]
    seen = sum(s is not None for s in smalls)
    if not seen:
        return [Presence(0.0, 0.0, None) for _ in images]
    smalls = _levelled(smalls)
    bg = np.median(np.stack([s for s in smalls if s is not None]), axis=0).astype(np.uint8)
    out: list[Presence] = []
    prev = None
    for img, s in zip(images, smalls):
        if s is None:
            out.append(Presence(0.0, 0.0, None))
            prev = None
            continue
        fm = _changed(cv2.absdiff(s, bg), DIFF, keep)
        mm = _changed(cv2.absdiff(s, prev), MOTION, keep) if prev is not None else np.zeros_like(fm)
        fg, box = _largest(fm)
        mo, mbox = _largest(mm)
        scale = img.shape[1] / WIDTH
        b = box if fg >= mo else mbox
        out.append(Presence(fg, mo, tuple(int(v * scale) for v in b) if b else None, fm, mm, scale))
        prev = s
    return out


def against(images: list[np.ndarray], picture: np.ndarray, keep: np.ndarray | None = None) -> list[Presence]:
    """Like :func:`analyze`, but the background is ``picture`` (correlate/reference.py: the counter
    empty) instead of the window's median; no motion. Each image is levelled to the picture first."""
    out = []
    ref = None
    for img in images:
        s = grey_small(img)
        if ref is None:
            ref = grey_small(picture, s.shape[::-1])
        fm = _changed(cv2.absdiff(level_to(s, ref), ref), DIFF, keep)
        fg, box = _largest(fm)
        scale = img.shape[1] / WIDTH
        out.append(Presence(fg, 0.0, tuple(int(v * scale) for v in box) if box else None, fm, np.zeros_like(fm),
                            scale))
    return out


def residual(p: Presence, keep: np.ndarray | None = None, exclude=()) -> float:
    """The largest changed region of ``p`` (background difference or motion, as a fraction of the
    frame) once ``keep`` (0/1 mask, analysis size) is applied and the ``exclude`` boxes (full-frame
    pixels x, y, w, h: e.g. a staff member's head and body) are taken out."""
    if p.fg_mask is None:
        return 0.0
    best = 0.0
    for m in (p.fg_mask, p.motion_mask):
        m = m.copy() if keep is None else m & keep
        for x, y, w, h in exclude:
            x0, y0 = max(0, int(x / p.scale)), max(0, int(y / p.scale))
            x1, y1 = int(np.ceil((x + w) / p.scale)), int(np.ceil((y + h) / p.scale))
            m[y0:max(y0, y1), x0:max(x0, x1)] = 0
        best = max(best, _largest(m)[0])
    return best
