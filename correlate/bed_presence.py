"""Is somebody in (or at) this bed? One check's frames against the bed's empty picture.

Why a picture of the empty bed and not the frames alone: a patient lying still for hours is part of any
background made of the ward's own frames, and a bed is empty for days in exactly the case that matters.
The operator's empty picture (correlate/beds.py) is the bed as it looks with nobody there, in its light.

Per check:
* the sampled frames (a few seconds around the check time) are combined by their per-pixel median (grey,
  blurred) — in infrared that also takes out most of the sensor noise, which is what makes night frames
  hard;
* the light: grey frames (the colour channels agree everywhere) are infrared; the picture of that light is
  used; without it the outcome is ``unknown`` (``no_reference``), never a guess;
* too dark to judge (the mean grey of the bed's region under ``dark_limit``) is ``unknown`` (``too_dark``);
* illumination: the median is scaled to the picture's brightness by the median ratio of the two outside
  the bed (the ward's lights, the camera's exposure and its infrared lamp change the whole picture; a
  patient changes only the bed), then locally normalised (each pixel against its neighbourhood's mean) so
  that a gradient of light across the room does not read as a change;
* the bed's region, widened by ``MARGIN`` of the frame (a patient sitting on the edge of the bed, a chair
  beside it) is compared: the share of its pixels unlike the picture, after an opening that removes noise
  and compression speckle, is ``changed``; at least ``occupied_share`` is somebody there.

A patient whose face is found in the bed's region and matches the enrolled templates is present whatever
the picture says (a patient sitting up in a bed never pictured empty).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WIDTH = 320  # analysis width: a ward camera sees several beds, each a fraction of the frame
MARGIN = 0.03  # the bed's surroundings, as a share of the frame's width
DIFF_SHARE = 0.16  # a change: this share of the bed's own brightness in its empty picture (contrast
# scales with the light: an infrared night picture has a third of the day's)
DIFF_FLOOR = 8  # grey levels: below this it is the sensor noise the median leaves, day or night
INNER = 0.6  # the occupied share is measured on the bed's outline shrunk to this about its centre: a
# person lying or sitting in the bed changes its middle; one standing beside it (a nurse, a visitor) only its edge
GREY_SPREAD = 6.0  # mean |B-G| + |G-R| under which a frame is infrared (grey)


@dataclass
class Judgement:
    outcome: str  # present | absent | unknown
    why: str  # occupied | face_seen | bed_empty | no_footage | too_dark | no_reference
    light: str | None = None
    changed: float | None = None
    brightness: float | None = None


def is_infrared(img: np.ndarray) -> bool:
    small = img[::8, ::8].astype(np.int16)
    spread = np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean()
    return float(spread) < GREY_SPREAD


def region_mask(region, width: int, height: int, margin: float = 0.0) -> np.ndarray:
    """0/1 mask of the polygon (fractions) at ``width`` x ``height``, widened by ``margin`` x width."""
    mask = np.zeros((height, width), np.uint8)
    pts = np.round(np.asarray(region, np.float32).reshape(-1, 2) * [width, height]).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1)
    grow = int(round(margin * width))
    if grow > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask


def inner_region(region, scale: float = INNER) -> list[list[float]]:
    """The bed's outline shrunk to ``scale`` about its centroid (fractions)."""
    pts = np.asarray(region, np.float32).reshape(-1, 2)
    c = pts.mean(axis=0)
    return ((pts - c) * scale + c).tolist()


def _size(shape) -> tuple[int, int]:
    h, w = shape[:2]
    return WIDTH, max(2, int(round(h * WIDTH / w)))


def _grey(img: np.ndarray, size: tuple[int, int], night: bool) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    k = 7 if night else 5
    return cv2.GaussianBlur(g, (k, k), 0)


def _local(g: np.ndarray) -> np.ndarray:
    """Each pixel against its neighbourhood's mean (a gradient of light is not a change)."""
    f = g.astype(np.float32)
    mean = cv2.blur(f, (41, 41))
    return f - mean + 128.0


def judge(frames: list[np.ndarray], region, picture: dict[str, np.ndarray | None], *, occupied_share: float,
          dark_limit: float, insured_face: bool = False) -> Judgement:
    """The outcome of one check. ``frames``: the sampled frames (not blind); ``picture``: the bed's empty
    pictures by light (``day``, ``night``; None where there is none); ``insured_face``: the insured person's
    face was found in the bed's region."""
    if not frames:
        return Judgement("unknown", "no_footage")
    night = is_infrared(frames[len(frames) // 2])
    light = "night" if night else "day"
    size = _size(frames[0].shape)
    med = np.median(np.stack([_grey(f, size, night) for f in frames]), axis=0).astype(np.uint8)
    near = region_mask(region, size[0], size[1], margin=MARGIN).astype(bool)
    brightness = float(med[near].mean()) if near.any() else 0.0
    if insured_face:
        return Judgement("present", "face_seen", light, None, brightness)
    if brightness < dark_limit:
        return Judgement("unknown", "too_dark", light, None, brightness)
    ref_img = picture.get(light)
    if ref_img is None:
        return Judgement("unknown", "no_reference", light, None, brightness)
    ref = _grey(ref_img, size, night)
    outside = ~near & (ref > 10)
    if outside.any():  # the whole picture's gain (lights, exposure, the infrared lamp)
        gain = float(np.clip(np.median(med[outside].astype(np.float32) / ref[outside].astype(np.float32)), 0.4, 2.5))
        if abs(gain - 1.0) > 0.01:
            med = np.clip(med.astype(np.float32) / gain, 0, 255).astype(np.uint8)
    level = float(ref[near].mean()) if near.any() else brightness
    diff = np.abs(_local(med) - _local(ref)) > max(DIFF_FLOOR, DIFF_SHARE * level)
    diff = cv2.morphologyEx(diff.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    # INNER None: the whole outline and its margin (the measure before the nurse decoy; bench/ward.py --before)
    inner = near if INNER is None else region_mask(inner_region(region), size[0], size[1]).astype(bool)
    changed = float(diff[inner].mean()) if inner.any() else 0.0
    if changed >= occupied_share:
        return Judgement("present", "occupied", light, changed, brightness)
    return Judgement("absent", "bed_empty", light, changed, brightness)
