"""Realistic counter scenes: a cashier in view all day, queues, passers-by, light and noise, with truth.

The scripted scenes of :mod:`camsim.footage` show one person alone at an empty counter. A real
pharmacy counter has a cashier on the staff side all day (now and then looking down at the till),
customers who queue behind the payer and partly hide each other, the previous customer still
walking off when the next one pays, someone who turns away at payment, people passing behind a
window, lights that change, sensor noise and a low-bitrate encoder. This module renders such scenes.

Layout of the picture (normalised coordinates, see :data:`ZONES`): the staff booth on the left
(cashier at a desk with a till, behind a glass partition), the customer side on the right (payer
at the counter, queue places further back), a window band along the top where people pass.

    scene = random_scene("genuine", seed=3, window_s=(24, 8))    # or CounterScene(...) by hand
    footage = render_counter(scene)                              # cached by hash, like footage.render
    footage.people_at(12.0)          # who is where: label, role, side, face box, view, occlusion
    footage.zones                    # suggested customer / staff / ignore polygons in [0, 1]
    footage.settlements              # [{"at_s", "insured", "payer", "expected", "staff"}, ...]
    SimulatedCamera(footage)         # serve it over RTSP (same files as camsim.footage)
    make_segments(..., footage, ...) # tests/replay/segmenter.py writes recorder-like segments

Roles: ``staff`` (the cashier), ``customer``, ``passer`` (behind the window; not at the counter).
Sides: ``staff``, ``customer``, ``background``. Views: ``front`` (face visible), ``down`` (looking at
the till), ``away`` (back to the camera). Boxes are face boxes in output pixels, for every frame.

Scene kinds of :func:`random_scene` and the outcome a correct checker should give:

* ``genuine``        the insured person pays, a queue behind (and the previous customer leaving)  verified_present
* ``ghost``          only the cashier (and passers-by) in the whole window                       ghost_visit
* ``impersonation``  someone else pays with the insured person's card; the insured never comes    impersonation
* ``turned_away``    the insured person pays with their back to the camera                        inconclusive
* ``busy``           a long stretch of customers and quiet spells, one settlement per payer,
                     ghost settlements in the quiet spells and one impersonation (for RTSP demos)

``python -m camsim.counter --kind genuine --seed 1`` renders one scene and prints its directory.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import identities as ids
from .footage import Footage, default_cache_dir, default_testdata
from .h264 import H264Writer, cached_render
from .realfootage import HallFrames

RENDER_VERSION = 2  # bump when the composition changes: invalidates cached renders

# Places (face centre x, y as fractions of the frame; face width in px at 720p, scaled with height).
STAFF = (0.175, 0.42, 118)
PAY = (0.565, 0.45, 150)
QUEUE = [(0.705, 0.385, 112), (0.815, 0.345, 94), (0.905, 0.315, 82)]
OUT = (1.14, 0.42, 112)  # off the right edge: where customers come from and go to
PASS_Y, PASS_W = 0.19, 80  # passers-by behind the window
WALK_S = 2.0  # seconds to walk from one place to the next

STAFF_DESK_Y = 0.70  # staff desk top (the cashier is hidden below it)
COUNTER_Y = 0.74  # customer counter top
PARTITION_X = (0.375, 0.392)
WINDOW = (0.405, 0.06, 0.985, 0.31)  # x0, y0, x1, y1 of the window band

# Suggested zones for tests and demos (polygons in normalised image coordinates, clockwise).
ZONES = {
    "customer": [[0.40, 0.29], [1.0, 0.29], [1.0, 0.86], [0.40, 0.86]],
    "staff": [[0.0, 0.12], [0.37, 0.12], [0.37, 0.80], [0.0, 0.80]],
    "ignore": [[WINDOW[0], WINDOW[1]], [WINDOW[2], WINDOW[1]], [WINDOW[2], 0.285], [WINDOW[0], 0.285]],
}

SHIRTS = [(120, 80, 50), (60, 60, 150), (70, 130, 70), (140, 140, 140), (40, 40, 40), (150, 110, 170),
          (60, 150, 200), (180, 170, 90), (90, 60, 40)]
STAFF_SHIRT = (235, 235, 230)  # a white coat
VIEW_CODES = {"front": 0, "down": 1, "away": 2}
ROLE_SIDE = {"staff": "staff", "customer": "customer", "passer": "background"}


@dataclass
class Visit:
    """A customer: arrives, queues while someone is ahead, stays ``service_s`` at the counter, leaves."""

    identity: str
    arrive_s: float
    service_s: float
    turn_away: bool = False  # back to the camera all the visit (so also at payment)
    shirt: tuple = (120, 80, 50)
    settle_for: str | None = None  # insured label of the settlement made at this visit ("" = no settlement)


@dataclass
class Passer:
    identity: str
    start_s: float
    dur_s: float
    direction: int = 1  # +1 left to right
    shirt: tuple = (60, 60, 150)


@dataclass
class CounterScene:
    duration_s: float
    cashier: str = "astronaut"
    cashier_down: list = field(default_factory=list)  # [(a, b)]: cashier looks down at the till
    visits: list = field(default_factory=list)
    passers: list = field(default_factory=list)
    dims: list = field(default_factory=list)  # [(a, b, gain)]: lights dimmed (or brighter) meanwhile
    ghost_settlements: list = field(default_factory=list)  # [(at_s, insured)] with nobody paying
    kind: str = "custom"
    seed: int = 0
    window_s: tuple = (24.0, 8.0)  # the checker's window (before, after) the expected outcomes assume
    width: int = 960
    height: int = 540
    fps: int = 8
    bitrate: int = 600_000
    keyint_s: float = 2.0
    noise: float = 3.0  # sensor noise sigma (grey levels)
    hall_window: bool = False  # show real footage (OpenCV's vtest.avi) in the window instead of a street
    # the counter itself (shelves, counter front, texture); None: the scene's seed. One camera's scenes
    # share it, as one physical counter does
    background_seed: int | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["visits"] = [asdict(v) if not isinstance(v, dict) else v for v in self.visits]
        d["passers"] = [asdict(p) if not isinstance(p, dict) else p for p in self.passers]
        return json.loads(json.dumps(d))

    @classmethod
    def from_json(cls, d: dict) -> "CounterScene":
        d = dict(d)
        d["visits"] = [Visit(**v) for v in d.get("visits", [])]
        d["passers"] = [Passer(**p) for p in d.get("passers", [])]
        d["window_s"] = tuple(d.get("window_s", (24.0, 8.0)))
        return cls(**d)


# ----------------------------------------------------------------------------------------------
# timeline: who is where at time t


@dataclass
class _Plan:
    visit: Visit
    pay_start: float
    leave: float
    changes: list  # [(t, place_index)] place -1 = OUT, 0 = PAY, 1.. = queue places

    @property
    def pay_at(self) -> float:
        """The settlement second: most of the way through the time at the counter."""
        return self.pay_start + 0.6 * (self.leave - self.pay_start)


def plan_queue(visits: list[Visit]) -> list[_Plan]:
    """First come, first served: a customer reaches the counter when the one before has left."""
    vs = sorted(visits, key=lambda v: v.arrive_s)
    plans: list[_Plan] = []
    prev_leave = -1e9
    for v in vs:
        pay_start = max(v.arrive_s + WALK_S, prev_leave)
        leave = pay_start + v.service_s
        prev_leave = leave
        plans.append(_Plan(v, pay_start, leave, []))
    for i, p in enumerate(plans):
        ahead = [q.leave for q in plans[:i]]
        times = sorted({p.visit.arrive_s} | {t for t in ahead if p.visit.arrive_s < t < p.pay_start + 1e-9})
        for t in times:
            n = sum(1 for lt in ahead if lt > t + 1e-9)
            p.changes.append((t, min(n, len(QUEUE))))
        p.changes.append((p.leave, -1))
    return plans


def _place(i: int) -> tuple[float, float, float]:
    return OUT if i < 0 else PAY if i == 0 else QUEUE[i - 1]


def _lerp(a, b, u):
    return tuple(x + (y - x) * u for x, y in zip(a, b))


def _customer_state(p: _Plan, t: float):
    """(x, y, face_w at 720p, view) or None when off screen."""
    if t < p.visit.arrive_s or t >= p.leave + WALK_S:
        return None
    prev, cur, tc = -1, -1, p.visit.arrive_s
    for (ct, place) in p.changes:
        if ct <= t:
            prev, cur, tc = cur, place, ct
    u = min(1.0, (t - tc) / WALK_S)
    u = u * u * (3 - 2 * u)  # ease in and out
    x, y, w = _lerp(_place(prev), _place(cur), u)
    if cur < 0:
        view = "away"  # walking off
    elif p.visit.turn_away:  # faces away the whole visit (talking to someone behind, on the phone)
        view = "away"
    else:
        view = "front"
    return x, y, w, view


def _sway(t: float, phase: float, amp: float) -> tuple[float, float]:
    return (amp * math.sin(2 * math.pi * t / 4.7 + phase) + 0.3 * amp * math.sin(2 * math.pi * t / 1.9 + phase),
            0.35 * amp * math.sin(2 * math.pi * t / 3.1 + phase))


def _gain(scene: CounterScene, t: float) -> float:
    g = 1.0 + 0.05 * math.sin(2 * math.pi * t / 23.0) + 0.02 * math.sin(2 * math.pi * t / 7.0)
    for a, b, k in scene.dims:
        if a - 1.5 <= t < b + 1.5:  # 1.5 s ramps, like auto exposure catching up
            u = min(1.0, (t - (a - 1.5)) / 1.5, ((b + 1.5) - t) / 1.5)
            g *= 1.0 + (k - 1.0) * max(0.0, u)
    return g


# ----------------------------------------------------------------------------------------------
# picture


def _background(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = h / 720.0
    img = np.zeros((h, w, 3), np.float32)
    img[:] = np.array([170, 188, 196], np.float32) * np.linspace(1.08, 0.84, h, dtype=np.float32)[:, None, None]
    img += cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2 * s + 0.5)[..., None] * 8
    # staff booth: darker panel with medicine shelves
    bx1 = int(PARTITION_X[0] * w)
    img[: int(STAFF_DESK_Y * h), :bx1] *= 0.82
    for i in range(3):
        y = int(h * (0.12 + i * 0.09))
        img[y:y + int(5 * s) + 1, int(0.01 * w):bx1 - int(0.01 * w)] = (80, 95, 115)
        x = int(0.015 * w)
        while x < bx1 - int(26 * s):
            bw_, bh_ = int(rng.integers(12, 30) * s) + 2, int(rng.integers(22, 48) * s) + 2
            img[max(0, y - bh_):y, x:x + bw_] = rng.integers(60, 230, 3).astype(np.float32)
            x += bw_ + int(rng.integers(2, 6) * s)
    # window band: a bright corridor/street with a floor line, in a frame
    x0, y0, x1, y1 = (int(WINDOW[0] * w), int(WINDOW[1] * h), int(WINDOW[2] * w), int(WINDOW[3] * h))
    band = np.array([215, 222, 226], np.float32) * np.linspace(1.1, 0.9, y1 - y0, dtype=np.float32)[:, None, None]
    img[y0:y1, x0:x1] = band
    img[int(y0 + 0.78 * (y1 - y0)):y1, x0:x1] = (150, 160, 165)
    f = max(2, int(7 * s))
    cv2.rectangle(img, (x0 - f, y0 - f), (x1 + f, y1 + f), (70, 70, 75), f)
    for xm in np.linspace(x0, x1, 4)[1:-1]:
        cv2.line(img, (int(xm), y0), (int(xm), y1), (70, 70, 75), max(1, f // 2))
    # staff desk and customer counter
    dy, cy = int(STAFF_DESK_Y * h), int(COUNTER_Y * h)
    img[dy:, :bx1] = np.array([150, 150, 145], np.float32) * np.linspace(1.0, 0.7, h - dy, dtype=np.float32)[:, None, None]
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h - cy, w - bx1)).astype(np.float32), (0, 0), sigmaX=25 * s + 1, sigmaY=0.7)
    img[cy:, bx1:] = (np.array([62, 108, 160], np.float32)[None, None, :] * (1 + 0.8 * grain[..., None])
                      * np.linspace(1.0, 0.75, h - cy, dtype=np.float32)[:, None, None])
    top = int(18 * s) + 2
    img[cy:cy + top, bx1:] = (200, 205, 210)
    out = np.clip(img, 0, 255).astype(np.uint8)
    cv2.putText(out, "PAYMENT COUNTER 2", (int(0.56 * w), int(0.83 * h)), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * s,
                (235, 235, 235), max(1, int(2 * s)), cv2.LINE_AA)
    return out


def _foreground(bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What stands in front of the people: desk with till, counter, glass partition (bgr, alpha)."""
    h, w = bg.shape[:2]
    s = h / 720.0
    fg = bg.copy()
    a = np.zeros((h, w), np.float32)
    bx1 = int(PARTITION_X[0] * w)
    a[int(STAFF_DESK_Y * h):, :bx1] = 1.0
    a[int(COUNTER_Y * h):, bx1:] = 1.0
    # till monitor on the desk, its back to the camera
    tx0, tx1, ty0 = int(0.215 * w), int(0.335 * w), int(0.585 * h)
    cv2.rectangle(fg, (tx0, ty0), (tx1, int(STAFF_DESK_Y * h)), (45, 45, 50), -1)
    cv2.rectangle(fg, (int((tx0 + tx1) / 2 - 8 * s), int(STAFF_DESK_Y * h) - 2), (int((tx0 + tx1) / 2 + 8 * s), int(0.74 * h)), (40, 40, 40), -1)
    a[ty0:int(0.74 * h), tx0:tx1] = 1.0
    # glass partition: a frame and a faint tint
    px0, px1 = int(PARTITION_X[0] * w), int(PARTITION_X[1] * w)
    fg[int(0.22 * h):, px0:px1] = (120, 120, 125)
    a[int(0.22 * h):, px0:px1] = 0.85
    return fg, a[..., None]


def _paste(frame: np.ndarray, sp: ids.Sprite, x: float, y: float) -> None:
    x0, y0 = int(round(x - sp.anchor[0])), int(round(y - sp.anchor[1]))
    h, w = sp.bgr.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(frame.shape[1], x0 + w), min(frame.shape[0], y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    a = sp.alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    roi += (sp.bgr[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0].astype(np.float32) - roi) * a
    frame[fy0:fy1, fx0:fx1] = roi.astype(np.uint8)


def _covered(sp: ids.Sprite, x: float, y: float, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Where the sprite at (x, y) is opaque inside ``box`` (bool array over the box) or None."""
    bx, by, bw, bh = box
    x0, y0 = int(round(x - sp.anchor[0])), int(round(y - sp.anchor[1]))
    h, w = sp.alpha.shape[:2]
    ix0, iy0, ix1, iy1 = max(bx, x0), max(by, y0), min(bx + bw, x0 + w), min(by + bh, y0 + h)
    out = np.zeros((max(1, bh), max(1, bw)), bool)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    out[iy0 - by:iy1 - by, ix0 - bx:ix1 - bx] = sp.alpha[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0, 0] > 0.5
    return out


class _Composer:
    def __init__(self, scene: CounterScene, testdata: Path):
        self.sc, self.w, self.h, self.s = scene, scene.width, scene.height, scene.height / 720.0
        self.testdata = str(testdata)
        self.bg = _background(self.w, self.h, scene.seed if scene.background_seed is None else scene.background_seed)
        self.fg, self.fg_a = _foreground(self.bg)
        rng = np.random.default_rng(scene.seed + 1)
        self.noise = [rng.normal(0, scene.noise, (self.h, self.w, 1)).astype(np.int16) for _ in range(8)]
        self.plans = plan_queue(scene.visits)
        self.hall = None
        if scene.hall_window:

            x0, y0, x1, y1 = self._window_px()
            self.hall = HallFrames(x1 - x0, y1 - y0)

    def _window_px(self):
        return int(WINDOW[0] * self.w), int(WINDOW[1] * self.h), int(WINDOW[2] * self.w), int(WINDOW[3] * self.h)

    def _sprite(self, label: str, face_w_720: float, view: str, shirt) -> ids.Sprite:
        fw = max(8, int(round(face_w_720 * self.s / 4.0)) * 4)  # 4 px steps: few sprite sizes to cache
        return ids.sprite(ids.get(label, self.testdata), fw, view, tuple(int(c) for c in shirt))

    def people(self, t: float) -> list[dict]:
        """Everyone on screen at t, far to near (drawing order)."""
        sc, out = self.sc, []
        for i, p in enumerate(sc.passers):
            u = (t - p.start_s) / p.dur_s
            if 0 <= u < 1:
                xa, xb = (WINDOW[0] - 0.05, WINDOW[2] + 0.05)
                x = xa + (xb - xa) * (u if p.direction > 0 else 1 - u)
                out.append(dict(label=p.identity, role="passer", x=x, y=PASS_Y + 0.004 * math.sin(t * 6 + i),
                                fw=PASS_W, view="front", shirt=p.shirt, phase=0.0, amp=0.0))
        cust = []
        for j, p in enumerate(self.plans):
            st = _customer_state(p, t)
            if st:
                x, y, fw, view = st
                cust.append(dict(label=p.visit.identity, role="customer", x=x, y=y, fw=fw, view=view,
                                 shirt=p.visit.shirt, phase=j * 1.7, amp=5.0))
        out += sorted(cust, key=lambda d: d["fw"])
        view = "down" if any(a <= t < b for a, b in sc.cashier_down) else "front"
        out.append(dict(label=sc.cashier, role="staff", x=STAFF[0], y=STAFF[1] + (0.02 if view == "down" else 0.0),
                        fw=STAFF[2], view=view, shirt=STAFF_SHIRT, phase=0.4, amp=3.0))
        return out

    def frame(self, n: int, t: float) -> tuple[np.ndarray, list[list]]:
        f = self.bg.copy()
        if self.hall is not None:
            x0, y0, x1, y1 = self._window_px()
            f[y0:y1, x0:x1] = self.hall.at(t)
        placed = []
        for d in self.people(t):
            sp = self._sprite(d["label"], d["fw"], d["view"], d["shirt"])
            dx, dy = _sway(t, d["phase"], d["amp"] * self.s)
            x, y = d["x"] * self.w + dx, d["y"] * self.h + dy
            fx, fy, fw, fh = sp.face
            box = (int(round(x - sp.anchor[0] + fx)), int(round(y - sp.anchor[1] + fy)), int(round(fw)), int(round(fh)))
            if d["role"] == "passer":  # only seen through the window, through glass (a little washed out)
                x0, y0, x1, y1 = self._window_px()
                _paste(f[y0:y1, x0:x1], sp, x - x0, y - y0)
                f[y0:y1, x0:x1] = cv2.addWeighted(f[y0:y1, x0:x1], 0.85, self.bg[y0:y1, x0:x1], 0.15, 8)
                clip = (x0, y0, x1, y1)
            else:  # people end at the desk/counter: the foreground covers them below
                _paste(f, sp, x, y)
                clip = (0, 0, self.w, self.h)
            placed.append((d, sp, x, y, box, clip))
        # desk, till, counter and partition in front of everyone
        f = (f.astype(np.float32) * (1 - self.fg_a) + self.fg.astype(np.float32) * self.fg_a).astype(np.uint8)
        rows = []
        fg_mask = self.fg_a[..., 0] > 0.5
        for k, (d, sp, x, y, box, clip) in enumerate(placed):
            bx, by, bw, bh = box
            cov = np.zeros((max(1, bh), max(1, bw)), bool)
            for (d2, sp2, x2, y2, _, _) in placed[k + 1:]:
                if d2["role"] != "passer":
                    cov |= _covered(sp2, x2, y2, box)
            cx0, cy0, cx1, cy1 = clip  # outside the frame (or the window, for passers) counts as hidden
            ys = slice(max(cy0, by), max(cy0, min(cy1, by + bh)))
            xs = slice(max(cx0, bx), max(cx0, min(cx1, bx + bw)))
            fm = np.zeros_like(cov)
            sub = fg_mask[ys, xs]
            fm[ys.start - by:ys.start - by + sub.shape[0], xs.start - bx:xs.start - bx + sub.shape[1]] = sub
            inside = np.zeros_like(cov)
            inside[ys.start - by:ys.start - by + sub.shape[0], xs.start - bx:xs.start - bx + sub.shape[1]] = True
            occ = 1.0 - float((inside & ~cov & ~fm).sum()) / float(cov.size)  # off-frame counts as hidden
            rows.append([d["label"], d["role"], bx, by, bw, bh, VIEW_CODES[d["view"]], round(occ, 3)])
        g = _gain(self.sc, t)
        if abs(g - 1.0) > 1e-3:
            f = cv2.convertScaleAbs(f, alpha=g)
        f = np.clip(f.astype(np.int16) + self.noise[n % len(self.noise)], 0, 255).astype(np.uint8)
        _osd(f, t, self.s)
        return f, rows


def _osd(frame: np.ndarray, t: float, s: float) -> None:
    txt = f"CH02 COUNTER  {int(t // 3600):02d}:{int(t // 60) % 60:02d}:{t % 60:05.2f}"
    org = (int(12 * s) + 2, frame.shape[0] - int(16 * s) - 4)
    cv2.putText(frame, txt, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * s, (20, 20, 20), max(1, int(3 * s)), cv2.LINE_AA)
    cv2.putText(frame, txt, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * s, (240, 240, 240), max(1, int(1.5 * s)), cv2.LINE_AA)


# ----------------------------------------------------------------------------------------------
# truth


class CounterFootage(Footage):
    """A rendered counter scene: a :class:`camsim.footage.Footage` (same files, so the RTSP camera and
    the segmenter take it as is) plus who is where (``truth["counter"]``)."""

    @property
    def counter(self) -> dict:
        return self.truth["counter"]

    @property
    def scene(self) -> CounterScene:
        return CounterScene.from_json(self.counter["scene"])

    @property
    def zones(self) -> dict:
        return self.counter["zones"]

    @property
    def settlements(self) -> list[dict]:
        return self.counter["settlements"]

    def people_in_frame(self, n: int) -> list[dict]:
        rows = self.counter["frames"][n % self.n_frames]
        inv = {v: k for k, v in VIEW_CODES.items()}
        return [dict(label=r[0], role=r[1], side=ROLE_SIDE[r[1]], box=r[2:6], view=inv[r[6]], occluded=r[7],
                     face_visible=r[6] == 0 and r[7] < 0.5) for r in rows]

    def people_at(self, t: float) -> list[dict]:
        return self.people_in_frame(int(round((t % self.duration_s) * self.fps)))

    def payer_at(self, t: float) -> str | None:
        for p in self.counter["plans"]:
            if p["pay_start"] <= t % self.duration_s < p["leave"]:
                return p["identity"]
        return None

    def visible_seconds(self, label: str, a: float, b: float, role: str | None = None) -> float:
        """Seconds in [a, b) when ``label``'s face is visible (front, at most half hidden)."""
        n0, n1 = max(0, int(math.ceil(a * self.fps))), min(self.n_frames, int(math.ceil(b * self.fps)))
        k = 0
        for n in range(n0, n1):
            k += any(p["label"] == label and p["face_visible"] and (role is None or p["role"] == role)
                     for p in self.people_in_frame(n))
        return k / self.fps

    def expected_outcome(self, at_s: float, insured: str, window_s: tuple[float, float] | None = None) -> str:
        return expected_outcome(self, at_s, insured, window_s or tuple(self.counter["scene"]["window_s"]))


def expected_outcome(fp: CounterFootage, at_s: float, insured: str, window_s: tuple[float, float]) -> str:
    """What a correct checker says for a settlement at ``at_s`` for ``insured``, from the truth alone:
    no customer in the window -> ghost_visit; the insured person's face seen -> verified_present; the
    payer's face seen and not theirs -> impersonation; otherwise inconclusive."""
    a, b = max(0.0, at_s - window_s[0]), min(fp.duration_s, at_s + window_s[1])
    n0, n1 = int(math.ceil(a * fp.fps)), int(math.ceil(b * fp.fps))
    customers = set()
    for n in range(n0, min(n1, fp.n_frames)):
        customers |= {p["label"] for p in fp.people_in_frame(n) if p["role"] == "customer"}
    if not customers:
        return "ghost_visit"
    if fp.visible_seconds(insured, a, b, role="customer") >= 1.0:
        return "verified_present"
    payer = fp.payer_at(at_s)
    if payer and payer != insured and fp.visible_seconds(payer, a, b, role="customer") >= 1.0:
        return "impersonation"
    return "inconclusive"


# ----------------------------------------------------------------------------------------------
# render


def _scene_key(scene: CounterScene, testdata: Path) -> str:
    used = {scene.cashier} | {v.identity for v in scene.visits} | {p.identity for p in scene.passers}
    srcs = sorted({str(ids.get(u, str(testdata)).path) for u in used})
    sizes = {s: os.path.getsize(s) for s in srcs}  # a changed photo changes the key
    d = scene.to_json()
    if d.get("background_seed") is None:  # the scene's own seed, as before the field existed: same renders
        d.pop("background_seed", None)
    blob = json.dumps({"v": RENDER_VERSION, "scene": d, "src": sizes}, sort_keys=True, default=str)
    return "counter-" + hashlib.sha256(blob.encode()).hexdigest()[:20]


def render_counter(scene: CounterScene, *, cache_dir: str | os.PathLike | None = None,
                   testdata: str | os.PathLike | None = None, force: bool = False) -> CounterFootage:
    """Compose and encode ``scene`` (or return the cached render): see the module docstring."""
    td = Path(testdata).resolve() if testdata else default_testdata()
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = _scene_key(scene, td)

    def make(tmp: Path) -> dict:
        t0 = time.perf_counter()
        comp = _Composer(scene, td)
        cv2.imwrite(str(tmp / "background.png"), comp.bg)
        keyint = max(1, int(round(scene.keyint_s * scene.fps)))
        wr = H264Writer(tmp, width=scene.width, height=scene.height, fps=scene.fps, bitrate=scene.bitrate,
                        keyint_frames=keyint)
        frames = []
        for n in range(int(round(scene.duration_s * scene.fps))):
            img, rows = comp.frame(n, n / scene.fps)
            wr.add(img)
            frames.append(rows)
        facts = wr.close()
        plans = [dict(identity=p.visit.identity, arrive=p.visit.arrive_s, pay_start=round(p.pay_start, 3),
                      leave=round(p.leave, 3), pay_at=round(p.pay_at, 3), turn_away=p.visit.turn_away,
                      settle_for=p.visit.settle_for) for p in comp.plans]
        truth = {"version": RENDER_VERSION, **facts, "counter_top": int(COUNTER_Y * scene.height),
                 "encode_seconds": round(time.perf_counter() - t0, 2), "events": _events(scene, comp.plans),
                 "counter": {"scene": scene.to_json(), "zones": ZONES, "plans": plans, "frames": frames,
                             "settlements": [], "row": ["label", "role", "x", "y", "w", "h", "view", "occluded"]}}
        return truth

    d = cached_render(root, key, make, force=force)
    fp = CounterFootage.load(d)
    if not fp.counter["settlements"]:  # computed from the rendered truth, once
        fp.counter["settlements"] = _settlements(fp)
        # written aside and renamed: another process (a test worker, a bench) may be loading the same render
        part = fp.truth_path.with_name(f".truth.{os.getpid()}.json")
        part.write_text(json.dumps(fp.truth, separators=(",", ":")))
        os.replace(part, fp.truth_path)
    return fp


def _events(scene: CounterScene, plans: list[_Plan]) -> list[dict]:
    """Truth as camsim.footage events (customers first, then passers, the cashier last), so that
    ``SimulatedCamera.truth_at`` names the customer when there is one."""
    ev = []
    for p in plans:
        kind = "back_turned" if p.visit.turn_away else "face"
        ev.append({"start_s": p.visit.arrive_s, "end_s": min(scene.duration_s, p.leave + WALK_S), "kind": kind,
                   "params": {"image": p.visit.identity, "role": "customer", "pay_at": round(p.pay_at, 3)}})
    for q in scene.passers:
        ev.append({"start_s": q.start_s, "end_s": min(scene.duration_s, q.start_s + q.dur_s), "kind": "face",
                   "params": {"image": q.identity, "role": "passer"}})
    ev.append({"start_s": 0.0, "end_s": scene.duration_s, "kind": "face",
               "params": {"image": scene.cashier, "role": "staff"}})
    return [e for e in ev if e["end_s"] > e["start_s"] >= 0 and e["start_s"] < scene.duration_s]


def _settlements(fp: CounterFootage) -> list[dict]:
    sc = fp.counter["scene"]
    win = tuple(sc["window_s"])
    out = []
    for p in fp.counter["plans"]:
        if p["settle_for"] == "" or not (win[0] <= p["pay_at"] <= fp.duration_s - win[1]):
            continue  # no settlement, or its window does not fit in the footage
        insured = p["settle_for"] or p["identity"]
        out.append(dict(at_s=p["pay_at"], insured=insured, payer=p["identity"], staff=[sc["cashier"]],
                        expected=expected_outcome(fp, p["pay_at"], insured, win)))
    for at_s, insured in sc["ghost_settlements"]:
        out.append(dict(at_s=at_s, insured=insured, payer=None, staff=[sc["cashier"]],
                        expected=expected_outcome(fp, at_s, insured, win)))
    return sorted(out, key=lambda s: s["at_s"])


# ----------------------------------------------------------------------------------------------
# random scenes (tests, benchmarks)

KINDS = ("genuine", "ghost", "impersonation", "turned_away", "busy")
EXPECTED = {"genuine": "verified_present", "ghost": "ghost_visit", "impersonation": "impersonation",
            "turned_away": "inconclusive"}


def crowd(exclude=()) -> list[str]:
    """Labels available as cashiers, other customers and passers-by (not the test faces)."""
    return [k for k in ids.identities() if k not in ("obama", "biden") and k not in exclude]


def random_scene(kind: str, seed: int, *, window_s: tuple[float, float] = (24.0, 8.0), duration_s: float | None = None,
                 insured: str = "obama", impostor: str = "biden", cashier: str | None = None,
                 width: int = 960, height: int = 540, fps: int = 8, hall_window: bool = False,
                 bitrate: int | None = None) -> CounterScene:
    """A scene of ``kind`` (see the module docstring) whose main settlement, at about
    ``window_s[0] + 4`` s, has its whole checking window inside the footage. Same seed, same scene."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {KINDS}")
    rng = random.Random(f"{kind}/{seed}")
    before, after = window_s
    dur = float(duration_s or (before + after + 8 if kind != "busy" else max(180.0, before + after + 120)))
    settle = before + 4.0
    people = crowd()
    rng.shuffle(people)
    cashier = cashier or people.pop()
    people = [p for p in people if p != cashier]
    shirts = SHIRTS[:]
    rng.shuffle(shirts)

    def shirt():
        shirts.append(shirts.pop(0))
        return shirts[-1]

    def other():
        people.append(people.pop(0))
        return people[-1]

    visits: list[Visit] = []
    ghosts: list = []
    if kind in ("genuine", "impersonation", "turned_away"):
        payer = impostor if kind == "impersonation" else insured
        service = min(rng.uniform(22, 34), (settle - WALK_S - 1.0) / 0.6)  # short windows: shorter stays
        pay_start = settle - 0.6 * service
        if rng.random() < 0.7 and pay_start - WALK_S >= 6:  # the previous customer is just leaving
            s0 = min(rng.uniform(20, 30), pay_start - WALK_S)
            visits.append(Visit(other(), max(0.0, pay_start - s0 - WALK_S), s0, shirt=shirt(), settle_for=""))
        visits.append(Visit(payer, max(0.5, pay_start - rng.uniform(4, 12)), service,
                            turn_away=kind == "turned_away", shirt=shirt(),
                            settle_for=insured if kind == "impersonation" else None))
        for _ in range(rng.choice([0, 1, 1, 2] if kind != "turned_away" else [0, 1])):
            visits.append(Visit(other(), pay_start + rng.uniform(-2, 10), rng.uniform(25, 40), shirt=shirt(),
                                settle_for=""))
    elif kind == "ghost":
        a = settle - before - 3
        if rng.random() < 0.5 and a > 14:
            visits.append(Visit(other(), 0.0, a - WALK_S - 2, shirt=shirt(), settle_for=""))
        ghosts.append((settle, insured))
    else:  # busy: Poisson-ish arrivals with quiet spells; everyone settles for themselves
        t, i = 2.0, 0
        while t < dur - 40:
            if rng.random() < 0.25:  # a quiet spell: only the cashier
                q = rng.uniform(before + after + 10, before + after + 30)
                ghosts.append((t + before + 5, insured))
                t += q
                continue
            ident = insured if i % 4 == 1 else impostor if i == 2 else other()
            settle_for = insured if ident == impostor else None
            visits.append(Visit(ident, t, rng.uniform(20, 40), turn_away=rng.random() < 0.1, shirt=shirt(),
                                settle_for=settle_for))
            t += rng.uniform(8, 30)
            i += 1
        ghosts = [g for g in ghosts if g[0] + after < dur]
    n_pass = max(1, int(dur / 25))
    passers = [Passer(other(), rng.uniform(0, dur - 8), rng.uniform(5, 9), rng.choice([-1, 1]), shirt())
               for _ in range(n_pass)]
    down, t = [], rng.uniform(2, 8)
    while t < dur:  # the cashier looks down at the till every so often, a few seconds each time
        d = rng.uniform(2, 5)
        down.append((round(t, 2), round(min(dur, t + d), 2)))
        t += d + rng.uniform(6, 16)
    dims = []
    if rng.random() < 0.7:
        a = rng.uniform(0, dur - 10)
        dims.append((round(a, 2), round(a + rng.uniform(4, 10), 2), round(rng.choice([0.7, 0.8, 1.2]), 2)))
    rnd = lambda v: [round(x, 2) if isinstance(x, float) else x for x in v]  # noqa: E731
    visits = [Visit(v.identity, round(v.arrive_s, 2), round(v.service_s, 2), v.turn_away, tuple(v.shirt), v.settle_for)
              for v in visits]
    passers = [Passer(p.identity, round(p.start_s, 2), round(p.dur_s, 2), p.direction, tuple(p.shirt)) for p in passers]
    return CounterScene(duration_s=dur, cashier=cashier, cashier_down=down, visits=visits, passers=passers, dims=dims,
                        ghost_settlements=[rnd(g) for g in ghosts], kind=kind, seed=seed, window_s=tuple(window_s),
                        width=width, height=height, fps=fps,
                        bitrate=bitrate or int(600_000 * (width * height) / (960 * 540)), hall_window=hall_window)


def consulting_scene(doctor: str, patient: str | None, *, seed: int = 0, duration_s: float = 40.0,
                     fps: int = 5, turn_away: bool = False) -> CounterScene:
    """A consulting room (诊室): the doctor at the desk on the staff side all the time, and ``patient``
    (None: nobody) sitting across from them the whole consultation (``turn_away``: back to the camera),
    no passers-by. The layout is the counter's (the desk for the staff booth, the patient's chair where a
    payer stands)."""
    visits = [Visit(patient, 0.5, duration_s + 60.0, turn_away=turn_away, shirt=SHIRTS[seed % len(SHIRTS)],
                    settle_for="")] if patient else []
    return CounterScene(duration_s=duration_s, cashier=doctor, visits=visits, passers=[], kind="consulting",
                        seed=seed, fps=fps, window_s=(duration_s / 2, duration_s / 2))


def bench_scenes(n: int, seed: int = 0, kinds=("genuine", "ghost", "impersonation", "turned_away"),
                 **kw) -> list[CounterScene]:
    """``n`` scenes cycling through ``kinds`` with seeds from ``seed`` (decoys included: ghost visits
    with the cashier in view, genuine payers with a queue behind, impostors, payers turned away)."""
    return [random_scene(kinds[i % len(kinds)], seed + i, **kw) for i in range(n)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m camsim.counter", description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="genuine", choices=KINDS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--before", type=float, default=24.0)
    ap.add_argument("--after", type=float, default=8.0)
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--hall-window", action="store_true")
    a = ap.parse_args(argv)
    fp = render_counter(random_scene(a.kind, a.seed, window_s=(a.before, a.after), fps=a.fps, hall_window=a.hall_window))
    print(fp.directory)
    print(json.dumps(fp.settlements, indent=1))


if __name__ == "__main__":
    main()
