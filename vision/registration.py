"""Is a picture a light edit of another one? Geometric registration, then the photometric residual.

A replayer's copy of an earlier capture (cropped, shifted, scaled, rotated a few degrees, brighter or darker,
another gamma or contrast, re-encoded) is the same pixels moved by one similarity transform and passed
through one monotone tone curve. A live recapture of the same person, even seconds later at the same
terminal, is not: the head and eyes and mouth move against the background, the light and the sensor noise
are new. So:

1. both pictures in grey at ``WORK_SIDE`` pixels on their longest side; ORB features matched (ratio test)
   and a similarity transform (rotation, scale, shift) fitted by RANSAC, then refitted by least squares on the
   matches that agree with it (deterministic, and a tenth of a degree off leaves residual on every edge);
2. the later picture warped onto the earlier one, both blurred a little (resampling and JPEG noise), and the
   later one's grey levels mapped through the tone curve that best predicts the earlier one's (the mean
   earlier level per later level: any gain, offset, gamma or contrast change);
3. the absolute residual averaged per cell of a ``GRID`` x ``GRID`` grid over the overlap (the face and the
   background alike); ``residual`` is the 95th percentile of the cells: one moving face or hand spoils it.

Measured (bench/capture_replay.py, docs/benchmarks.md): edited copies of the test portraits leave 0.2-5.5
grey levels, live frames of a real video 0.17 s or more apart 8.8 or more. Pixels in, numbers out: no
decision here beyond :meth:`Registration.same_picture`'s bounds.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 320  # longest side registered: enough ORB features on a portrait, ~10 ms
DECODE_SIDE = 2 * WORK_SIDE  # a stored JPEG need not be decoded larger than this (libjpeg's reduced decode)
FEATURES = 600
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 2.0  # reprojection error of an inlier, at WORK_SIDE
REFINE_PX = (1.5, 1.0)  # then refitted on the matches this close, twice
BLUR_SIGMA = 1.2  # before the residual: resampling and JPEG blocking are finer than a moving eyelid
GRID = 8
MIN_CELLS = 8  # of GRID * GRID with a residual (most of their pixels known): fewer say too little
LEVELS = 32  # tone-curve bins
CLIPPED = (16, 240)  # grey levels at or beyond which a pixel is taken as clipped
MIN_INLIERS = 40
MIN_INLIER_RATIO = 0.6  # of the ratio-test matches; live pairs seen 0.27-0.57, edited copies 0.75-1
MIN_OVERLAP = 0.6  # of the earlier picture covered by the later one
SCALE_RANGE = (0.75, 1.33)
MAX_ROTATION_DEG = 10.0


@dataclass(frozen=True)
class Registration:
    inliers: int
    inlier_ratio: float
    overlap: float
    scale: float
    rotation_deg: float
    residual: float  # grey levels (0-255), 95th percentile of the grid cells; inf when nothing registered

    def same_picture(self, max_residual: float) -> bool:
        """One picture moved and retoned, not a new capture of the same scene."""
        return (self.inliers >= MIN_INLIERS and self.inlier_ratio >= MIN_INLIER_RATIO
                and self.overlap >= MIN_OVERLAP and SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1]
                and abs(self.rotation_deg) <= MAX_ROTATION_DEG and self.residual <= max_residual)

    def to_dict(self) -> dict:
        return {"inliers": self.inliers, "inlier_ratio": round(self.inlier_ratio, 3),
                "overlap": round(self.overlap, 3), "scale": round(self.scale, 4),
                "rotation_deg": round(self.rotation_deg, 2),
                "residual": None if not np.isfinite(self.residual) else round(self.residual, 2)}


UNREGISTERED = Registration(0, 0.0, 0.0, 0.0, 0.0, float("inf"))


def _small(img: np.ndarray) -> np.ndarray:
    f = WORK_SIDE / max(img.shape[:2])
    if f >= 1:
        return img
    return cv2.resize(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))),
                      interpolation=cv2.INTER_AREA)


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img


def _clipped(img: np.ndarray) -> np.ndarray:
    """255 where a channel is at (or, after JPEG, near) black or white: a retoned copy loses those levels, and
    in colour before grey (a brightened red saturates while the grey level does not)."""
    lo, hi = (CLIPPED[0] + 1,) * 3, (CLIPPED[1] - 1,) * 3
    return cv2.bitwise_not(cv2.inRange(img, lo[:img.shape[2]] if img.ndim == 3 else lo[0],
                                       hi[:img.shape[2]] if img.ndim == 3 else hi[0]))


def register(earlier: np.ndarray, later: np.ndarray) -> Registration:
    """How well ``later`` (BGR or grey) is ``earlier`` moved by a similarity transform and retoned."""
    small_b = _small(later)
    a, b = _grey(_small(earlier)), _grey(small_b)
    orb = cv2.ORB_create(FEATURES, fastThreshold=10, edgeThreshold=15, patchSize=15)  # per call: not thread-safe
    ka, da = orb.detectAndCompute(a, None)
    kb, db = orb.detectAndCompute(b, None)
    if da is None or db is None or len(ka) < MIN_INLIERS or len(kb) < MIN_INLIERS:
        return UNREGISTERED
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(db, da, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return UNREGISTERED
    pb = np.float32([kb[m.queryIdx].pt for m in good])
    pa = np.float32([ka[m.trainIdx].pt for m in good])
    m, inl = cv2.estimateAffinePartial2D(pb, pa, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                         maxIters=2000, confidence=0.995)
    if m is None:
        return UNREGISTERED
    inliers = int(inl.sum())
    for px in REFINE_PX:  # RANSAC's model is one random sample's: refit on all that agree with it, tighter
        agree = np.linalg.norm(pb @ m[:, :2].T + m[:, 2] - pa, axis=1) < px
        if agree.sum() < MIN_INLIERS:
            break
        m = _similarity(pb[agree], pa[agree])
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    rotation = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    h, w = a.shape
    warped = cv2.warpAffine(b, m, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.full(b.shape, 255, np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    mask = cv2.erode(cover, np.ones((7, 7), np.uint8)) > 0  # the warped border is interpolated with black
    overlap = float(mask.mean())
    clipped = cv2.warpAffine(_clipped(small_b), m, (w, h), flags=cv2.INTER_NEAREST)
    known = mask & (cv2.dilate(clipped, np.ones((5, 5), np.uint8)) == 0)
    return Registration(inliers, inliers / len(good), overlap, scale, rotation, _residual(a, warped, known))


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) taking ``src`` points to ``dst``."""
    x, y = src[:, 0].astype(np.float64), src[:, 1].astype(np.float64)
    one, zero = np.ones_like(x), np.zeros_like(x)
    a = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    (c, s, tx, ty), *_ = np.linalg.lstsq(a, np.concatenate([dst[:, 0], dst[:, 1]]).astype(np.float64), rcond=None)
    return np.array([[c, -s, tx], [s, c, ty]])


def _residual(a: np.ndarray, b: np.ndarray, known: np.ndarray) -> float:
    """95th percentile of the per-cell mean residual over the ``known`` pixels (in the overlap, not clipped)."""
    if known.mean() < 0.05:
        return float("inf")
    fa = cv2.GaussianBlur(a.astype(np.float32), (0, 0), BLUR_SIGMA)
    fb = cv2.GaussianBlur(b.astype(np.float32), (0, 0), BLUR_SIGMA)
    # the tone curve: the mean earlier level of the pixels at each later level (bins), interpolated
    step = 256 / LEVELS
    bins = np.minimum((fb[known] / step).astype(np.int32), LEVELS - 1)
    count = np.bincount(bins, minlength=LEVELS)
    totals = np.bincount(bins, fa[known], LEVELS)
    seen = count > 0
    centres = (np.arange(LEVELS) + 0.5) * step
    curve = np.interp(centres, centres[seen], totals[seen] / count[seen])
    r = np.abs(fa - np.interp(fb, centres, curve).astype(np.float32))
    # per cell: the mean residual over its known pixels, and how much of it is known (area averages)
    k = known.astype(np.float32)
    known_part = cv2.resize(k, (GRID, GRID), interpolation=cv2.INTER_AREA)
    sums = cv2.resize(r * k, (GRID, GRID), interpolation=cv2.INTER_AREA)
    usable = known_part > 0.5  # cells mostly outside the overlap (or clipped) say nothing
    if usable.sum() < MIN_CELLS:
        return float("inf")
    return float(np.percentile(sums[usable] / known_part[usable], 95))
