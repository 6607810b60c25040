"""A hospital ward seen by its ceiling camera: several beds, patients in them or not, day or infrared night.

Rendered at test time (nothing committed as an image); people are the counter scenes' sprites
(camsim/identities.py: heads from ../shared/testdata and installed packages' photos). One render is one
short clip of a *moment* of the ward — who lies in which bed, sitting up (face to the camera) or turned
away, in daylight or in infrared — encoded in H.264 as a camera sends it, with the truth beside it.

* Four beds. ``01``-``03`` along the far wall, seen from the front; ``04`` along the side wall near the
  camera, seen from a steep angle (a narrow, slanted outline, the patient's face small).
* A patient in bed: head and shoulders on the pillow, the blanket over the body (raised over it); out of
  bed, the blanket lies turned back (not quite as the empty bed's picture shows it).
* Night: the camera's infrared: grey, dark (an infrared lamp near the camera lights the middle), grainy
  (sensor noise different in every frame), softer.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import identities as ids
from .footage import Footage, default_cache_dir, default_testdata
from .h264 import H264Writer, cached_render

RENDER_VERSION = 1  # the key hashes the moment's json: scenes without standers keep their cache
W, H = 640, 360


@dataclass(frozen=True)
class BedSpec:
    bed_no: str
    region: tuple[tuple[float, float], ...]  # the bed's outline as an operator draws it (fractions)
    head: tuple[float, float]  # where the patient's face is when in bed (fractions)
    face_w: int  # the face's width in pixels there
    pillow_w: float  # fractions of width


BEDS: tuple[BedSpec, ...] = (
    BedSpec("01", ((0.05, 0.40), (0.27, 0.40), (0.30, 0.86), (0.02, 0.86)), (0.16, 0.46), 40, 0.12),
    BedSpec("02", ((0.33, 0.40), (0.55, 0.40), (0.57, 0.86), (0.31, 0.86)), (0.44, 0.46), 40, 0.12),
    BedSpec("03", ((0.60, 0.40), (0.80, 0.40), (0.83, 0.86), (0.59, 0.86)), (0.70, 0.46), 40, 0.12),
    # the steep one: along the side wall, close under the camera
    BedSpec("04", ((0.86, 0.22), (0.95, 0.20), (1.0, 0.98), (0.88, 0.98)), (0.91, 0.30), 28, 0.07),
)


@dataclass(frozen=True)
class Moment:
    """Who is in which bed: ``beds`` maps bed_no -> (identity label, view: 'front' | 'away') for occupied
    beds; ``light`` 'day' | 'night'."""

    beds: tuple[tuple[str, str, str], ...] = ()
    light: str = "day"
    seed: int = 0
    duration_s: float = 8.0
    fps: int = 4
    keyint_s: float = 1.0
    turned_back: tuple[str, ...] = field(default=())  # empty beds whose blanket lies turned back
    # people standing beside a bed, not in it (a nurse, a visitor): (bed_no, identity label); drawn upright on
    # the floor at the bed's right-hand side, their coat over the bed's edge — a decoy for the occupancy test
    standing: tuple[tuple[str, str], ...] = field(default=())

    def occupant(self, bed_no: str) -> tuple[str, str] | None:
        for b, who, view in self.beds:
            if b == bed_no:
                return who, view
        return None

    def to_json(self) -> dict:
        return {"beds": [list(b) for b in self.beds], "light": self.light, "seed": self.seed,
                "duration_s": self.duration_s, "fps": self.fps, "keyint_s": self.keyint_s,
                "turned_back": list(self.turned_back),
                **({"standing": [list(p) for p in self.standing]} if self.standing else {})}


class WardFootage(Footage):
    @property
    def ward(self) -> dict:
        return self.truth["ward"]


def _px(p) -> tuple[int, int]:
    return int(round(p[0] * W)), int(round(p[1] * H))


def _room(seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    img = np.zeros((H, W, 3), np.float32)
    wall = np.array([196, 206, 212], np.float32)  # pale green-grey
    floor = np.array([150, 160, 170], np.float32)
    img[: int(0.42 * H)] = wall
    img[int(0.42 * H):] = floor
    # floor tiles and the skirting line
    for x in range(-W, 2 * W, 48):
        cv2.line(img, (W // 2 + (x - W // 2) // 3, int(0.42 * H)), (x, H), (135, 146, 156), 1, cv2.LINE_AA)
    cv2.line(img, (0, int(0.42 * H)), (W, int(0.42 * H)), (120, 128, 135), 2)
    # a window and a cabinet between the beds, a curtain rail
    cv2.rectangle(img, (int(0.40 * W), int(0.06 * H)), (int(0.50 * W), int(0.28 * H)), (235, 225, 200), -1)
    cv2.rectangle(img, (int(0.40 * W), int(0.06 * H)), (int(0.50 * W), int(0.28 * H)), (120, 120, 120), 2)
    for x0 in (0.28, 0.56):
        cv2.rectangle(img, (int(x0 * W), int(0.30 * H)), (int((x0 + 0.035) * W), int(0.46 * H)), (90, 120, 150), -1)
    cv2.line(img, (0, int(0.05 * H)), (W, int(0.05 * H)), (150, 150, 150), 2)
    # light falls off to the sides; a little texture
    xs = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    img *= (1.0 - 0.12 * xs ** 2)[..., None]
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def _bed(img: np.ndarray, b: BedSpec) -> None:
    pts = np.array([_px(p) for p in b.region], np.int32)
    cv2.fillPoly(img, [pts + [0, 6]], (70, 75, 80))  # the frame under the mattress
    cv2.fillPoly(img, [pts], (236, 238, 240))  # sheet
    top = (pts[0] + pts[1]) / 2
    hx, hy = _px(b.head)
    cv2.line(img, tuple(pts[0]), tuple(pts[1]), (110, 120, 130), 5)  # head board
    pw = int(b.pillow_w * W)
    cv2.ellipse(img, (hx, int(max(top[1] + 8, hy + 2))), (pw // 2, max(5, pw // 5)), 0, 0, 360, (250, 250, 252), -1)


def _blanket_poly(b: BedSpec, start: float) -> np.ndarray:
    """The blanket from ``start`` (0 = head end, 1 = foot end) of the bed to its foot."""
    p = [np.array(q, np.float32) for q in b.region]
    left = p[0] + (p[3] - p[0]) * start
    right = p[1] + (p[2] - p[1]) * start
    return np.array([_px(left), _px(right), _px(p[2]), _px(p[3])], np.int32)


def _blanket(img: np.ndarray, b: BedSpec, start: float, raised: bool, colour=(170, 135, 95)) -> None:
    poly = _blanket_poly(b, start)
    cv2.fillPoly(img, [poly], colour)
    if raised:  # the body under it: a lit ridge and its shadow
        c = poly.mean(axis=0)
        ax = (max(4, int(np.linalg.norm(poly[1] - poly[0]) * 0.22)), max(6, int(np.linalg.norm(poly[3] - poly[0]) * 0.40)))
        cv2.ellipse(img, (int(c[0]), int(c[1])), ax, 0, 0, 360, tuple(min(255, int(v * 1.25)) for v in colour), -1)
        cv2.ellipse(img, (int(c[0] + ax[0] * 0.9), int(c[1])), (max(2, ax[0] // 3), ax[1]), 0, 0, 360,
                    tuple(int(v * 0.6) for v in colour), -1)


def _paste(frame: np.ndarray, sp: ids.Sprite, x: float, y: float) -> None:
    h, w = sp.bgr.shape[:2]
    x0, y0 = int(round(x - sp.anchor[0])), int(round(y - sp.anchor[1]))
    a0, b0 = max(0, x0), max(0, y0)
    a1, b1 = min(frame.shape[1], x0 + w), min(frame.shape[0], y0 + h)
    if a1 <= a0 or b1 <= b0:
        return
    src = sp.bgr[b0 - y0:b1 - y0, a0 - x0:a1 - x0].astype(np.float32)
    al = sp.alpha[b0 - y0:b1 - y0, a0 - x0:a1 - x0]
    frame[b0:b1, a0:a1] = frame[b0:b1, a0:a1] * (1 - al) + src * al


def _stander(img: np.ndarray, b: BedSpec, who: str, n: int, testdata: Path) -> None:
    """Someone standing on the floor beside the bed's right-hand long side, facing the camera: a white coat
    from the shoulders to the floor, half of it over the bed's edge, the head above the bed's head end."""
    p = [np.array(q, np.float32) for q in b.region]
    foot_x, foot_y = _px((p[1] + p[2] * 2) / 3)  # a third of the way from the head end along the right side
    fw = int(round(b.face_w * 0.7))
    body_w, body_h = int(fw * 2.0), int(fw * 4.0)
    x = foot_x - int(0.3 * body_w) + int(np.sin(n * 0.5) * 1.5)  # shifting from foot to foot
    top = foot_y - body_h
    coat = np.array([[x - body_w // 2, top], [x + body_w // 2, top], [x + body_w // 2 + 3, foot_y],
                     [x - body_w // 2 - 3, foot_y]], np.int32)
    cv2.fillPoly(img, [coat + [3, 2]], (95, 100, 105))  # its shadow on the floor and the bed
    cv2.fillPoly(img, [coat], (228, 232, 236))
    cv2.line(img, (x, top + 4), (x, foot_y), (190, 196, 204), 2)  # the coat's front
    sp = ids.sprite(ids.get(who, str(testdata)), fw, "front", shirt=(228, 232, 236))
    _paste(img, sp, x, top - int(fw * 0.9))


def compose(m: Moment, n: int, testdata: Path, room: np.ndarray) -> np.ndarray:
    img = room.copy()
    rng = np.random.default_rng(m.seed * 7919 + n)
    for b in BEDS:
        _bed(img, b)
        occ = m.occupant(b.bed_no)
        if occ is None:
            # the empty bed's blanket: folded at the foot; turned back (as a patient leaves it) when asked
            _blanket(img, b, 0.55 if b.bed_no not in m.turned_back else 0.45, False)
            continue
        who, view = occ
        sp = ids.sprite(ids.get(who, str(testdata)), b.face_w, view, shirt=(150, 170, 190))
        hx, hy = _px(b.head)
        sway = np.sin(n * 0.7 + len(who)) * 1.2  # breathing, shifting
        _paste(img, sp, hx + sway, hy + rng.normal(0, 0.3))
        _blanket(img, b, 0.34, True)
    for bed_no, who in m.standing:
        _stander(img, next(b for b in BEDS if b.bed_no == bed_no), who, n, testdata)
    frame = img
    if m.light == "night":
        g = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        xs = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
        ys = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
        lamp = 0.42 * (1.0 - 0.45 * (xs ** 2 + 0.6 * ys ** 2))  # the infrared lamp near the camera
        g = cv2.GaussianBlur(g * lamp, (0, 0), 1.1) + rng.normal(0, 6.0, g.shape).astype(np.float32)
        frame = np.repeat(np.clip(g, 0, 255)[..., None], 3, axis=2)
    else:
        frame = frame + rng.normal(0, 1.5, frame.shape).astype(np.float32)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    txt = f"CH05 WARD {'IR' if m.light == 'night' else ''}"
    cv2.putText(out, txt, (8, H - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (240, 240, 240), 1, cv2.LINE_AA)
    return out


def _key(ms: list[Moment], testdata: Path) -> str:
    srcs = sorted({str(ids.get(who, str(testdata)).path) for m in ms for _, who, _ in m.beds})
    blob = json.dumps({"v": RENDER_VERSION, "m": [m.to_json() for m in ms] if len(ms) > 1 else ms[0].to_json(),
                       "src": {s: os.path.getsize(s) for s in srcs}}, sort_keys=True)
    return "ward-" + hashlib.sha256(blob.encode()).hexdigest()[:20]


def render_ward(m: Moment | list[Moment], *, cache_dir: str | os.PathLike | None = None,
                testdata: str | os.PathLike | None = None) -> WardFootage:
    """One moment's clip, or several moments one after another in one clip (a camera serving them in a
    loop: ``truth["ward"]["moments"]`` gives each one's start second). Same fps and keyframe interval."""
    ms = list(m) if isinstance(m, (list, tuple)) else [m]
    td = Path(testdata).resolve() if testdata else default_testdata()
    root = Path(cache_dir) if cache_dir else default_cache_dir()

    def make(tmp: Path) -> dict:
        room = _room(0)
        wr = H264Writer(tmp, width=W, height=H, fps=ms[0].fps, bitrate=600_000,
                        keyint_frames=max(1, int(round(ms[0].keyint_s * ms[0].fps))))
        starts, t = [], 0.0
        for mo in ms:
            starts.append(t)
            for n in range(int(round(mo.duration_s * mo.fps))):
                wr.add(compose(mo, n, td, room))
            t += mo.duration_s
        facts = wr.close()
        return {"version": RENDER_VERSION, **facts, "events": [],
                "ward": {"moment": ms[0].to_json(), "moments": [{"start_s": a, **mo.to_json()} for a, mo in zip(starts, ms)],
                         "beds": [{"bed_no": b.bed_no, "region": [list(p) for p in b.region]} for b in BEDS]}}

    return WardFootage.load(cached_render(root, _key(ms, td), make))


def region(bed_no: str) -> list[list[float]]:
    return [list(p) for p in next(b for b in BEDS if b.bed_no == bed_no).region]
