"""Per-face quality gate: is this face good enough to enroll or to verify against?

Calibrated on ../shared/testdata (see docs/face-accuracy.md): the five portraits, a 102x126 ID-size crop
and their faces at 60-160 px after H.264 at CCTV bitrates pass; faces blurred by Gaussian sigma 3-5 or
15 px of motion at CCTV sizes, a 20-px face and implausible/turned landmarks are refused.
All landmark measures are in a frame rotated so the eye line is horizontal and scaled by the
inter-eye distance, so they do not depend on image size or head roll.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .base import Face

FACE_TOO_SMALL = "face_too_small"
BLURRY = "blurry"
LOW_DETECTOR_SCORE = "low_detector_score"
POSE_OUT_OF_RANGE = "pose_out_of_range"
LANDMARKS_IMPLAUSIBLE = "landmarks_implausible"


@dataclass(frozen=True)
class QualityThresholds:
    min_face_px: int = 40
    min_det_score: float = 0.9
    min_sharpness: float = 47.0
    max_yaw: float = 0.45
    max_roll_deg: float = 45.0

    @classmethod
    def from_settings(cls, settings, detector_min_score: float) -> "QualityThresholds":
        return cls(
            min_face_px=settings.quality_min_face_px,
            min_det_score=(settings.quality_min_det_score
                           if settings.quality_min_det_score is not None else detector_min_score),
            min_sharpness=settings.quality_min_sharpness,
            max_yaw=settings.quality_max_yaw,
            max_roll_deg=settings.quality_max_roll_deg,
        )


@dataclass
class Quality:
    usable: bool
    reasons: list[str] = field(default_factory=list)
    face_px: float = 0.0  # min side of the bbox, original image pixels
    det_score: float = 0.0
    sharpness: float = 0.0
    yaw: float = 0.0  # nose offset from the eye midpoint / inter-eye distance; 0 = frontal
    roll_deg: float = 0.0  # angle of the eye line

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("face_px", "det_score", "sharpness", "yaw", "roll_deg"):
            d[k] = round(float(d[k]), 3)
        return d


# Re-blur window of the sharpness measure, in pixels of the 112x112 aligned crop (~1/3 of the eye distance).
REBLUR_PX = 11


def sharpness(aligned_bgr: np.ndarray) -> float:
    """How much detail the face has at the scale recognition uses, 0 (none) to 100, measured on the
    centre of the aligned crop: 100 x (1 - the Crete-Roffet blur metric, "The blur effect", 2007).

    The crop is blurred again with a REBLUR_PX box filter along each axis; a sharp face loses most
    of its gradients to that, a blurred one has little left to lose. The result is the share lost,
    on the worse axis (so one-directional motion blur counts). Being a ratio of the face's own
    gradients, it does not depend on contrast or on how detailed a face is; unlike the variance of
    the Laplacian used before, it does not fall when a 40-80 px face is upsampled to 112x112 or
    when H.264 at CCTV bitrates smooths it (measured in docs/face-accuracy.md, bench/sharpness.py)."""
    g = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    n = g.shape[0]
    c = g[n // 7: n - n // 14, n // 7: n - n // 7]  # skip the background corners of the template
    if float(c.std()) < 1.0:  # flat crop: nothing to recognise
        return 0.0
    kept = 0.0
    for dx, dy, k in ((1, 0, (REBLUR_PX, 1)), (0, 1, (1, REBLUR_PX))):
        sharp = np.abs(cv2.Sobel(c, cv2.CV_32F, dx, dy, ksize=3))
        soft = np.abs(cv2.Sobel(cv2.blur(c, k, borderType=cv2.BORDER_REFLECT), cv2.CV_32F, dx, dy, ksize=3))
        inner = (slice(2, -1), slice(2, -1))  # the borders are the filters' guesses
        total = float(sharp[inner].sum())
        if total <= 0.0:
            return 0.0
        lost = float(np.maximum(0.0, sharp - soft)[inner].sum())
        kept = max(kept, 1.0 - lost / total)  # the blur metric on this axis
    return float(100.0 * (1.0 - kept))


def landmark_geometry(kps: np.ndarray) -> tuple[float, float, np.ndarray, float]:
    """(roll_deg, inter-eye distance, landmarks in the eye-aligned unit frame, yaw)."""
    k = np.asarray(kps, np.float64)
    le, re = k[0], k[1]
    v = re - le
    iod = float(np.hypot(*v))
    roll = float(np.degrees(np.arctan2(v[1], v[0])))
    if iod < 1e-6:
        return roll, iod, np.zeros_like(k), 0.0
    c, s = v / iod
    rot = np.array([[c, s], [-s, c]])  # rotates the eye line onto +x
    unit = (k - (le + re) / 2) @ rot.T / iod
    return roll, iod, unit, float(unit[2, 0])


def assess_quality(face: Face, aligned_bgr: np.ndarray, th: QualityThresholds) -> Quality:
    reasons: list[str] = []
    face_px = min(face.width, face.height)
    if face_px < th.min_face_px:
        reasons.append(FACE_TOO_SMALL)
    if face.det_score < th.min_det_score:
        reasons.append(LOW_DETECTOR_SCORE)
    sharp = sharpness(aligned_bgr)
    if sharp < th.min_sharpness:
        reasons.append(BLURRY)

    roll, iod, u, yaw = landmark_geometry(face.kps)
    # Upright human face in the unit frame: nose below the eye line, mouth below the nose, left mouth
    # corner left of the right one, eyes a plausible share of the face width, points near the box.
    nose_y, mouth_y = u[2, 1], (u[3, 1] + u[4, 1]) / 2
    mouth_w = u[4, 0] - u[3, 0]
    margin = 0.25 * max(face.width, face.height)
    inside = np.all((face.kps[:, 0] > face.x1 - margin) & (face.kps[:, 0] < face.x2 + margin)
                    & (face.kps[:, 1] > face.y1 - margin) & (face.kps[:, 1] < face.y2 + margin))
    plausible = (
        iod >= 2.0
        and 0.1 < nose_y < 1.3
        and nose_y + 0.1 < mouth_y < 2.0
        and 0.3 < mouth_w < 2.0
        and 0.2 < iod / max(face.width, 1e-6) < 0.85
        and bool(inside)
    )
    if not plausible:
        reasons.append(LANDMARKS_IMPLAUSIBLE)
    elif abs(yaw) > th.max_yaw or abs(roll) > th.max_roll_deg:
        reasons.append(POSE_OUT_OF_RANGE)
    return Quality(not reasons, reasons, face_px, float(face.det_score), sharp, yaw, roll)
