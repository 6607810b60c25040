"""Synthetic clinic-counter footage with known truth, pre-encoded to H.264 for the RTSP simulator.

A *script* is a list of :class:`Event` ``(start_s, end_s, kind, params)``:

``face``        a portrait from ``testdata/faces`` (head and shoulders, cut out of the photo) standing
                behind the counter and swaying a little. params: ``image`` (file name in faces/),
                ``x``/``y`` (face centre, fraction of width/height; default 0.5/0.40), ``face_w``
                (face width in px at 720p, scaled with the output height; default 150), ``sway`` (px).
``back_turned`` a person seen from behind (hair, neck, shoulders, torso in clothing colours), swaying.
                params: ``x``, ``y`` (head centre), ``head_w`` (px at 720p, default 150), ``shirt``
                and ``hair`` (BGR tuples), ``sway``.
``blur_face``   like ``face`` but heavily pixelated and blurred: a detector may still find a face
                blob, but there is no detail left to recognise anyone.
                params as ``face`` plus ``pixels`` (width the face is reduced to, default 9).
``empty``       nobody (the background only). Gaps between events are empty too.
``camera_off``  black frames in the file; the RTSP server sends nothing during these seconds
                (a stalled camera). Put its boundaries on keyframe times (multiples of ``keyint_s``):
                the server resumes at the first keyframe at or after ``end_s``.

Events may overlap (two people at once); overlapping people are drawn in list order.

:func:`render` composes the frames (numpy/OpenCV), encodes them with PyAV's libx264 (Main profile,
yuv420p, no B-frames, a keyframe exactly every ``keyint_s``, SPS/PPS repeated before every keyframe,
an AUD per access unit) and writes, in a cache directory keyed by a hash of script and parameters::

    footage.h264   Annex-B elementary stream, one access unit per frame
    frames.json    {"frames": [[offset, size, is_key], ...]} (one row per frame, in order)
    truth.json     timeline, fps, duration, resolution, keyframe interval, face boxes
    background.png the empty scene (for pixel-difference checks)

Nothing here writes into the git tree except under ``var/`` (git-ignored).
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import cv2
import numpy as np

from camsim.h264 import DECODERS, H264Writer, cached_render
from camsim.signs import draw_sign

RENDER_VERSION = 5  # bump when the composition changes: invalidates the cache
KINDS = ("face", "back_turned", "empty", "blur_face", "camera_off")
PERSON_KINDS = ("face", "back_turned", "blur_face")

REPO = Path(__file__).resolve().parents[1]


def default_testdata() -> Path:
    shared = Path(os.environ.get("DUALCHECK_SHARED", REPO.parent / "shared"))
    return (shared / "testdata").resolve()


def default_cache_dir() -> Path:
    """``$DUALCHECK_SIM_CACHE`` or ``<repo>/var/simulator`` (git-ignored)."""
    env = os.environ.get("DUALCHECK_SIM_CACHE")
    return Path(env).resolve() if env else REPO / "var" / "simulator"


@dataclass(frozen=True)
class Event:
    start_s: float
    end_s: float
    kind: str
    params: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; expected one of {KINDS}")
        if not self.end_s > self.start_s >= 0:
            raise ValueError(f"bad event interval {self.start_s}..{self.end_s}")

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    def to_json(self) -> dict:
        return {"start_s": self.start_s, "end_s": self.end_s, "kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_json(cls, d: dict) -> "Event":
        return cls(float(d["start_s"]), float(d["end_s"]), d["kind"], dict(d.get("params") or {}))


def _ev(a: float, b: float, kind: str, **params) -> Event:
    return Event(float(a), float(b), kind, params)


# ----------------------------------------------------------------------------------------------
# ready-made scripts


def scenario_counter(insured: str = "obama.jpg", other: str = "biden.jpg") -> list[Event]:
    """90 s at a pharmacy counter: nobody, the insured person, nobody, someone with their back
    turned, another person (impersonation), a blurred face."""
    return [
        _ev(0, 10, "empty"),
        _ev(10, 40, "face", image=insured),
        _ev(40, 55, "empty"),
        _ev(55, 75, "back_turned"),
        _ev(75, 90, "face", image=other),
    ]


def scenario_ghost_visit(insured: str = "obama.jpg") -> list[Event]:
    """60 s: the counter stays empty except for a short visit; a settlement at 30 s has nobody."""
    return [_ev(0, 20, "empty"), _ev(20, 26, "face", image=insured), _ev(26, 60, "empty")]


def scenario_impersonation(insured: str = "obama.jpg", impostor: str = "biden.jpg") -> list[Event]:
    """40 s: the insured person, then someone else at the counter, then a blurred face."""
    return [
        _ev(0, 4, "empty"),
        _ev(4, 16, "face", image=insured),
        _ev(16, 20, "empty"),
        _ev(20, 32, "face", image=impostor),
        _ev(32, 40, "blur_face", image=impostor),
    ]


def scenario_short(insured: str = "obama.jpg") -> list[Event]:
    """12 s for fast tests (boundaries on 2 s keyframes): empty, face, back turned."""
    return [_ev(0, 4, "empty"), _ev(4, 8, "face", image=insured), _ev(8, 12, "back_turned")]


def scenario_outage(insured: str = "obama.jpg") -> list[Event]:
    """20 s with a 6 s camera_off (stalled stream) in the middle."""
    return [_ev(0, 6, "face", image=insured), _ev(6, 12, "camera_off"), _ev(12, 20, "empty")]


SCENARIOS = {
    "counter": scenario_counter,
    "ghost_visit": scenario_ghost_visit,
    "impersonation": scenario_impersonation,
    "short": scenario_short,
    "outage": scenario_outage,
}


# ----------------------------------------------------------------------------------------------
# footage on disk


@dataclass
class Footage:
    """A rendered, encoded clip and its truth (see module docstring for the files)."""

    directory: Path
    truth: dict

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Footage":
        d = Path(directory)
        if d.is_file():
            d = d.parent
        return cls(d, json.loads((d / "truth.json").read_text()))

    # files
    @property
    def h264_path(self) -> Path:
        return self.directory / self.truth["file"]

    @property
    def index_path(self) -> Path:
        return self.directory / self.truth["index"]

    @property
    def truth_path(self) -> Path:
        return self.directory / "truth.json"

    # parameters
    width = property(lambda self: int(self.truth["width"]))
    height = property(lambda self: int(self.truth["height"]))
    fps = property(lambda self: float(self.truth["fps"]))
    duration_s = property(lambda self: float(self.truth["duration_s"]))
    keyint_s = property(lambda self: float(self.truth["keyint_s"]))
    n_frames = property(lambda self: int(self.truth["frames"]))

    @property
    def events(self) -> list[Event]:
        return [Event.from_json(e) for e in self.truth["events"]]

    def events_at(self, t: float) -> list[Event]:
        """All events covering footage time ``t`` (taken modulo the loop duration)."""
        t = t % self.duration_s
        return [e for e in self.events if e.covers(t)]

    def event_at(self, t: float) -> Event:
        """The event at footage time ``t`` (modulo duration); a person event wins over ``empty``;
        a gap in the script is reported as an ``empty`` event spanning the gap."""
        t = t % self.duration_s
        evs = self.events_at(t)
        for kind in ("camera_off",) + PERSON_KINDS:
            for e in evs:
                if e.kind == kind:
                    return e
        if evs:
            return evs[0]
        starts = [e.end_s for e in self.events if e.end_s <= t] + [0.0]
        ends = [e.start_s for e in self.events if e.start_s > t] + [self.duration_s]
        return Event(max(starts), min(ends), "empty", {"gap": True})

    codec = property(lambda self: self.truth.get("codec", "h264"))  # h264 | h265

    @property
    def decoder(self) -> str:
        """FFmpeg's decoder (and elementary-stream demuxer) name for this footage."""
        return DECODERS[self.codec]

    def frame_index(self) -> list[tuple[int, int, bool]]:
        """``(offset, size, is_key)`` of each access unit, in decode order."""
        return [(int(r[0]), int(r[1]), bool(r[2])) for r in json.loads(self.index_path.read_text())["frames"]]

    def frame_delays(self) -> list[int]:
        """pts - dts of each access unit in frames (0 without B-frames), in decode order."""
        return [int(r[3]) if len(r) > 3 else 0 for r in json.loads(self.index_path.read_text())["frames"]]

    def background(self) -> np.ndarray:
        """The empty scene (BGR) as rendered before encoding."""
        return cv2.imread(str(self.directory / "background.png"), cv2.IMREAD_COLOR)

    def decode_at(self, t: float) -> np.ndarray:
        """Decode the frame at footage time ``t`` from the encoded file (BGR ndarray)."""

        idx = self.frame_index()
        n = int(round((t % self.duration_s) * self.fps)) % len(idx)
        k = max(i for i in range(n + 1) if idx[i][2])
        data = self.h264_path.read_bytes()
        ctx = av.CodecContext.create(self.decoder, "r")
        out = None
        for i in range(k, n + 1):
            o, s, _ = idx[i]
            for fr in ctx.decode(av.Packet(data[o : o + s])):
                out = fr
        for fr in ctx.decode(None):
            out = fr
        return out.to_ndarray(format="bgr24")

    def write_mp4(self, path: str | os.PathLike) -> Path:
        """Remux (no re-encoding) the elementary stream into an MP4 at ``path``."""

        path = Path(path)
        with av.open(str(self.h264_path), format=self.decoder) as src, av.open(str(path), "w") as dst:
            ist = src.streams.video[0]
            ost = dst.add_stream_from_template(ist)
            ost.time_base = Fraction(1, int(round(self.fps * 1000)))
            step = 1000
            delays = self.frame_delays()
            for i, pkt in enumerate(src.demux(ist)):
                if pkt.size == 0:
                    continue
                pkt.dts = i * step
                pkt.pts = (i + delays[i]) * step
                pkt.time_base = ost.time_base
                pkt.stream = ost
                dst.mux(pkt)
        return path


# ----------------------------------------------------------------------------------------------
# composition


_KNOWN_FACES = {  # face boxes (x, y, w, h) in the shared test portraits, measured with YuNet
    "obama.jpg": (373, 94, 231, 321),
    "obama2.jpg": (195, 223, 275, 390),
    "obama3.jpg": (639, 245, 270, 367),
    "obama_partial_face.jpg": (0, 86, 191, 337),
    "biden.jpg": (429, 175, 276, 382),
}


def _file_digest(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _face_box(path: Path, img: np.ndarray) -> tuple[int, int, int, int]:
    if path.name in _KNOWN_FACES:
        return _KNOWN_FACES[path.name]
    model = Path(os.environ.get("DUALCHECK_TEST_MODELS", REPO / "var" / "models")) / "face_detection_yunet_2023mar.onnx"
    if model.exists():
        det = cv2.FaceDetectorYN.create(str(model), "", (img.shape[1], img.shape[0]), 0.7)
        _, faces = det.detect(img)
        if faces is not None and len(faces):
            x, y, w, h = (int(v) for v in max(faces, key=lambda f: f[2] * f[3])[:4])
            return x, y, w, h
    h, w = img.shape[:2]  # portrait heuristic
    return int(w * 0.33), int(h * 0.15), int(w * 0.34), int(w * 0.45)


@functools.lru_cache(maxsize=16)
def _portrait_cutout(path_str: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Head-and-shoulders crop of a portrait with a soft person mask.

    Returns (bgr uint8, alpha float32 0..1, face box in crop coordinates)."""
    path = Path(path_str)
    img = cv2.imread(path_str, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    fx, fy, fw, fh = _face_box(path, img)
    cx = fx + fw / 2
    x0, x1 = int(cx - 1.7 * fw), int(cx + 1.7 * fw)
    y0, y1 = int(fy - 0.45 * fh), int(fy + 2.0 * fh)
    H, W = img.shape[:2]
    pad = ((max(0, -y0), max(0, y1 - H)), (max(0, -x0), max(0, x1 - W)), (0, 0))
    if any(v for p in pad[:2] for v in p):
        img = np.pad(img, pad, mode="edge")
        fx, fy = fx + pad[1][0], fy + pad[0][0]
        x0, x1, y0, y1 = x0 + pad[1][0], x1 + pad[1][0], y0 + pad[0][0], y1 + pad[0][0]
    crop = img[y0:y1, x0:x1].copy()
    fx, fy = fx - x0, fy - y0
    ch, cw = crop.shape[:2]
    # shape prior: head ellipse + shoulders/torso
    prior = np.zeros((ch, cw), np.uint8)
    hc = (int(fx + fw / 2), int(fy + fh * 0.45))
    cv2.ellipse(prior, hc, (int(fw * 0.62), int(fh * 0.72)), 0, 0, 360, 255, -1)
    sh_y = int(fy + fh * 1.15)
    torso = np.array([[hc[0] - fw * 0.35, fy + fh * 0.9], [hc[0] + fw * 0.35, fy + fh * 0.9],
                      [hc[0] + fw * 1.55, sh_y + fh * 0.35], [hc[0] + fw * 1.65, ch],
                      [hc[0] - fw * 1.65, ch], [hc[0] - fw * 1.55, sh_y + fh * 0.35]], np.int32)
    cv2.fillPoly(prior, [torso], 255)
    mask = prior.copy()
    # refine with GrabCut on a reduced copy (person vs. portrait backdrop)
    try:
        s = 200.0 / cw
        small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        pr = cv2.resize(prior, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
        gc = np.where(pr > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        core = np.zeros_like(pr)
        cv2.ellipse(core, (int(hc[0] * s), int(hc[1] * s)), (int(fw * 0.3 * s), int(fh * 0.4 * s)), 0, 0, 360, 1, -1)
        gc[core > 0] = cv2.GC_FGD
        gc[: max(2, int(fy * s * 0.5)), : int(cw * s * 0.2)] = cv2.GC_BGD
        gc[: max(2, int(fy * s * 0.5)), int(cw * s * 0.8):] = cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(small, gc, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
        fg = np.where((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        fg = cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR)
        ratio = (fg > 127).sum() / max(1, (prior > 0).sum())
        if 0.5 < ratio < 1.3:
            mask = cv2.bitwise_and(fg, prior)
            # keep the face itself solid whatever GrabCut thought
            cv2.ellipse(mask, hc, (int(fw * 0.48), int(fh * 0.58)), 0, 0, 360, 255, -1)
    except cv2.error:
        pass
    k = max(3, int(fw * 0.06) | 1)
    alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32) / 255.0
    return crop, alpha, (float(fx), float(fy), float(fw), float(fh))


@dataclass
class _Sprite:
    bgr: np.ndarray  # float32
    alpha: np.ndarray  # float32 HxWx1
    anchor: tuple[float, float]  # sprite pixel that goes to the event's (x, y)
    box: tuple[float, float, float, float]  # face/head box in sprite coordinates


def _face_sprite(testdata: Path, params: dict, scale: float, blurred: bool) -> _Sprite:
    crop, alpha, (fx, fy, fw, fh) = _portrait_cutout(str(testdata / "faces" / params.get("image", "obama.jpg")))
    target = float(params.get("face_w", 150)) * scale
    k = target / fw
    bgr = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_LINEAR)
    box = (fx * k, fy * k, fw * k, fh * k)
    if blurred:
        px = max(4, int(params.get("pixels", 9)))
        r = px / box[2]
        tiny = cv2.resize(bgr, None, fx=r, fy=r, interpolation=cv2.INTER_AREA)
        bgr = cv2.resize(tiny, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_LINEAR)
        kk = int(box[2] * 0.25) | 1
        bgr = cv2.GaussianBlur(bgr, (kk, kk), 0)
    anchor = (box[0] + box[2] / 2, box[1] + box[3] / 2)
    return _Sprite(bgr.astype(np.float32), a[..., None].astype(np.float32), anchor, box)


def _back_sprite(params: dict, scale: float, seed: int) -> _Sprite:
    rng = np.random.default_rng(seed)
    hw = float(params.get("head_w", 150)) * scale  # head width
    hh = hw * 1.22
    shirt = np.array(params.get("shirt", (120, 72, 38)), np.float32)  # BGR: navy-ish jacket
    hair = np.array(params.get("hair", (28, 32, 40)), np.float32)
    skin = np.array(params.get("skin", (120, 150, 190)), np.float32)
    W, H = int(hw * 3.6), int(hh * 3.2)
    cx, hcy = W / 2, hh * 0.62
    canvas = np.zeros((H, W, 3), np.float32)
    mask = np.zeros((H, W), np.uint8)
    # torso + shoulders
    sh_y = hcy + hh * 0.78
    torso = np.array([[cx - hw * 0.55, sh_y - hh * 0.08], [cx + hw * 0.55, sh_y - hh * 0.08],
                      [cx + hw * 1.55, sh_y + hh * 0.30], [cx + hw * 1.72, H], [cx - hw * 1.72, H],
                      [cx - hw * 1.55, sh_y + hh * 0.30]], np.int32)
    tm = np.zeros((H, W), np.uint8)
    cv2.fillPoly(tm, [torso], 255)
    for sx in (-1, 1):
        cv2.ellipse(tm, (int(cx + sx * hw * 1.2), int(sh_y + hh * 0.35)), (int(hw * 0.5), int(hh * 0.32)), 0, 0, 360, 255, -1)
    shade = np.linspace(1.15, 0.8, H, dtype=np.float32)[:, None] * (
        1.0 - 0.25 * np.abs(np.linspace(-1, 1, W, dtype=np.float32))[None, :] ** 2)
    fabric = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 1.2) * 0.05
    canvas[tm > 0] = (shirt[None, None, :] * (shade + fabric)[..., None])[tm > 0]
    cv2.line(canvas, (int(cx), int(sh_y)), (int(cx), H), tuple(float(v) * 0.7 for v in shirt), max(1, int(hw * 0.02)))
    cv2.ellipse(canvas, (int(cx), int(sh_y - hh * 0.06)), (int(hw * 0.42), int(hh * 0.12)), 0, 0, 180,
                tuple(float(v) * 0.85 for v in shirt), -1)  # collar
    mask |= tm
    # neck and ears
    cv2.rectangle(canvas, (int(cx - hw * 0.24), int(hcy + hh * 0.3)), (int(cx + hw * 0.24), int(sh_y)), skin.tolist(), -1)
    cv2.rectangle(mask, (int(cx - hw * 0.24), int(hcy + hh * 0.3)), (int(cx + hw * 0.24), int(sh_y)), 255, -1)
    for sx in (-1, 1):
        c = (int(cx + sx * hw * 0.49), int(hcy + hh * 0.05))
        cv2.ellipse(canvas, c, (int(hw * 0.09), int(hh * 0.13)), 0, 0, 360, (skin * 0.9).tolist(), -1)
        cv2.ellipse(mask, c, (int(hw * 0.09), int(hh * 0.13)), 0, 0, 360, 255, -1)
    # head: all hair from behind, with strand texture
    hm = np.zeros((H, W), np.uint8)
    cv2.ellipse(hm, (int(cx), int(hcy)), (int(hw * 0.5), int(hh * 0.5)), 0, 0, 360, 255, -1)
    strands = rng.normal(0, 1, (H, W)).astype(np.float32)
    strands = cv2.GaussianBlur(strands, (0, 0), sigmaX=0.8, sigmaY=hh * 0.08)
    strands = strands / (np.abs(strands).max() + 1e-6)
    lum = 1.0 + 0.6 * strands + 0.25 * np.clip((hcy - np.arange(H, dtype=np.float32)[:, None]) / hh, -1, 1)
    canvas[hm > 0] = (hair[None, None, :] * lum[..., None])[hm > 0]
    mask |= hm
    k = max(3, int(hw * 0.05) | 1)
    alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255.0
    box = (cx - hw / 2, hcy - hh / 2, hw, hh)
    return _Sprite(np.clip(canvas, 0, 255), alpha, (cx, hcy), box)


def _terminal_xy(width: int, height: int) -> tuple[int, int]:
    s = height / 720.0
    return int(width * 0.64), _layout(height)["counter_top"] - int(70 * s)


def _layout(height: int) -> dict:
    return {"counter_top": int(height * 0.70)}


def _background(width: int, height: int, testdata: Path, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = height / 720.0
    ct = _layout(height)["counter_top"]
    img = np.zeros((height, width, 3), np.float32)
    # wall: pale green-grey with a vertical light falloff and plaster texture
    grad = np.linspace(1.06, 0.86, height, dtype=np.float32)[:, None, None]
    img[:] = np.array([186, 204, 196], np.float32) * grad
    tex = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 2.0 * s + 0.5)
    img += (tex * 9.0)[..., None]
    # skirting/wainscot band
    img[int(height * 0.50) : ct] *= 0.88
    cv2.line(img, (0, int(height * 0.50)), (width, int(height * 0.50)), (140, 150, 150), max(1, int(3 * s)))
    # poster: a heavily blurred scene photo in a white frame (no resolvable faces)
    poster = cv2.imread(str(testdata / "scenes" / "2008_004176.jpg"), cv2.IMREAD_COLOR)
    pw, ph = int(width * 0.17), int(height * 0.30)
    px, py = int(width * 0.06), int(height * 0.10)
    if poster is not None:
        p = cv2.resize(poster, (max(8, pw // 12), max(8, ph // 12)), interpolation=cv2.INTER_AREA)
        p = cv2.resize(p, (pw, ph), interpolation=cv2.INTER_LINEAR)
        p = cv2.GaussianBlur(p, (0, 0), 6 * s + 1)
    else:
        p = np.full((ph, pw, 3), (90, 140, 200), np.uint8)
    b = max(2, int(8 * s))
    img[py - b : py + ph + b, px - b : px + pw + b] = (235, 238, 240)
    img[py : py + ph, px : px + pw] = p.astype(np.float32)
    # sign board
    sx0, sy0, sx1, sy1 = int(width * 0.33), int(height * 0.05), int(width * 0.67), int(height * 0.13)
    img[sy0:sy1, sx0:sx1] = (150, 95, 40)
    # shelves with medicine boxes on the right
    x0, x1 = int(width * 0.76), int(width * 0.97)
    for i in range(4):
        y = int(height * (0.16 + i * 0.11))
        img[y : y + int(6 * s) + 1, x0:x1] = (90, 110, 130)
        x = x0 + int(4 * s)
        while x < x1 - int(20 * s):
            bw, bh = int(rng.integers(14, 34) * s) + 2, int(rng.integers(30, 62) * s) + 2
            col = rng.integers(60, 240, 3).astype(np.float32)
            img[max(0, y - bh) : y, x : min(x1, x + bw)] = col
            x += bw + int(rng.integers(2, 6) * s)
    # counter: wood front with grain, lighter top edge
    grain = cv2.GaussianBlur(rng.normal(0, 1, (height - ct, width)).astype(np.float32), (0, 0), sigmaX=25 * s + 1, sigmaY=0.7)
    wood = np.array([62, 108, 160], np.float32)[None, None, :] * (1.0 + 0.9 * grain[..., None])
    img[ct:] = wood * np.linspace(1.0, 0.75, height - ct, dtype=np.float32)[:, None, None]
    top = int(22 * s) + 2
    img[ct : ct + top] = np.array([200, 205, 210], np.float32) * np.linspace(1.05, 0.85, top, dtype=np.float32)[:, None, None]
    # a face-pay terminal on the counter
    tx, ty = _terminal_xy(width, height)
    cv2.rectangle(img, (tx, ty), (tx + int(70 * s), ct + 2), (45, 45, 50), -1)
    cv2.rectangle(img, (tx + int(6 * s), ty + int(6 * s)), (tx + int(64 * s), ty + int(46 * s)), (150, 120, 70), -1)
    out = np.clip(img, 0, 255).astype(np.uint8)
    draw_sign(out, "取药窗口 3", (sx0 + int(18 * s), sy1 - int(20 * s)), int(28 * s))
    return out


def _osd(frame: np.ndarray, t: float, scale: float) -> None:
    txt = f"CAM-01  t={t:7.2f}s"
    org = (int(12 * scale) + 2, int(30 * scale) + 4)
    cv2.putText(frame, txt, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (20, 20, 20), max(1, int(3 * scale)), cv2.LINE_AA)
    cv2.putText(frame, txt, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (240, 240, 240), max(1, int(1.5 * scale)), cv2.LINE_AA)


def _paste(frame: np.ndarray, sp: _Sprite, x: float, y: float, max_y: int) -> None:
    """Alpha-blend the sprite with its anchor at (x, y); nothing below row max_y (the counter)."""
    x0, y0 = int(round(x - sp.anchor[0])), int(round(y - sp.anchor[1]))
    h, w = sp.bgr.shape[:2]
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + w), min(max_y, frame.shape[0], y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sx0, sy0 = fx0 - x0, fy0 - y0
    sx1, sy1 = sx0 + (fx1 - fx0), sy0 + (fy1 - fy0)
    roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    a = sp.alpha[sy0:sy1, sx0:sx1]
    roi += (sp.bgr[sy0:sy1, sx0:sx1] - roi) * a
    frame[fy0:fy1, fx0:fx1] = roi.astype(np.uint8)


def _motion(t: float, amp: float, phase: float) -> tuple[float, float]:
    return (amp * math.sin(2 * math.pi * t / 4.3 + phase) + 0.3 * amp * math.sin(2 * math.pi * t / 1.7),
            0.3 * amp * math.sin(2 * math.pi * t / 2.9 + phase))


class _Composer:
    def __init__(self, events: Sequence[Event], width: int, height: int, testdata: Path):
        self.w, self.h, self.scale = width, height, height / 720.0
        self.events = list(events)
        self.bg = _background(width, height, testdata)
        # a few noise variants of the background: sensor noise without per-frame cost
        rng = np.random.default_rng(11)
        self.variants = []
        for _ in range(6):
            n = rng.normal(0, 1.6, (height, width, 1)).astype(np.float32)
            self.variants.append(np.clip(self.bg.astype(np.float32) + n, 0, 255).astype(np.uint8))
        self.counter_top = _layout(height)["counter_top"]
        self.sprites: dict[int, _Sprite] = {}
        for i, e in enumerate(self.events):
            if e.kind in ("face", "blur_face"):
                self.sprites[i] = _face_sprite(testdata, e.params, self.scale, e.kind == "blur_face")
            elif e.kind == "back_turned":
                self.sprites[i] = _back_sprite(e.params, self.scale, seed=i)

    def position(self, i: int, e: Event) -> tuple[float, float]:
        return float(e.params.get("x", 0.5)) * self.w, float(e.params.get("y", 0.40)) * self.h

    def sway(self, e: Event) -> float:
        return float(e.params.get("sway", 10)) * self.scale

    def box(self, i: int, e: Event) -> list[int] | None:
        sp = self.sprites.get(i)
        if sp is None:
            return None
        x, y = self.position(i, e)
        bx, by, bw, bh = sp.box
        return [int(round(x - sp.anchor[0] + bx)), int(round(y - sp.anchor[1] + by)), int(round(bw)), int(round(bh))]

    def frame(self, n: int, t: float) -> np.ndarray:
        active = [(i, e) for i, e in enumerate(self.events) if e.covers(t)]
        if any(e.kind == "camera_off" for _, e in active):
            return np.zeros((self.h, self.w, 3), np.uint8)
        f = self.variants[n % len(self.variants)].copy()
        for i, e in active:
            sp = self.sprites.get(i)
            if sp is None:
                continue
            x, y = self.position(i, e)
            dx, dy = _motion(t - e.start_s, self.sway(e), phase=i * 1.3)
            _paste(f, sp, x + dx, y + dy, self.counter_top)
        if active:  # the terminal stands on the counter, in front of people
            tx, ty = _terminal_xy(self.w, self.h)
            sl = np.s_[ty : self.counter_top, tx : tx + int(70 * self.scale) + 1]
            f[sl] = self.variants[n % len(self.variants)][sl]
        _osd(f, t, self.scale)
        return f


# ----------------------------------------------------------------------------------------------
# render + encode


def _cache_key(events: Sequence[Event], cfg: dict, testdata: Path) -> str:
    images = sorted({e.params.get("image", "obama.jpg") for e in events if e.kind in ("face", "blur_face")})
    digests = {im: _file_digest(testdata / "faces" / im) for im in images}
    poster = testdata / "scenes" / "2008_004176.jpg"
    digests["poster"] = _file_digest(poster) if poster.exists() else None
    blob = json.dumps({"v": RENDER_VERSION, "events": [e.to_json() for e in events], "cfg": cfg, "img": digests},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def render(
    script: Iterable[Event],
    *,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    bitrate: int = 1_000_000,
    keyint_s: float = 2.0,
    duration_s: float | None = None,
    profile: str = "main",
    preset: str = "superfast",
    codec: str = "h264",
    bframes: int = 0,
    cache_dir: str | os.PathLike | None = None,
    testdata: str | os.PathLike | None = None,
    force: bool = False,
) -> Footage:
    """Compose and encode ``script`` (or return the cached result). See the module docstring."""
    events = [e if isinstance(e, Event) else Event(*e) for e in script]
    if not events:
        raise ValueError("empty script")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    duration = float(duration_s if duration_s is not None else max(e.end_s for e in events))
    keyint_frames = max(1, int(round(keyint_s * fps)))
    td = Path(testdata).resolve() if testdata else default_testdata()
    cfg = dict(width=width, height=height, fps=fps, bitrate=bitrate, keyint_frames=keyint_frames,
               duration_s=duration, profile=profile, preset=preset)
    if codec != "h264" or bframes:  # only then: the cache keys of existing renders stay as they were
        cfg.update(codec=codec, bframes=bframes)
    key = _cache_key(events, cfg, td)
    root = Path(cache_dir) if cache_dir else default_cache_dir()

    def make(tmp: Path) -> dict:
        return _encode(events, tmp, td, duration=duration, keyint_frames=keyint_frames, codec=codec,
                       bframes=bframes, **{k: cfg[k] for k in ("width", "height", "fps", "bitrate", "profile",
                                                               "preset")})

    return Footage.load(cached_render(root, key, make, force=force))


def _encode(events, out_dir: Path, testdata: Path, *, width, height, fps, bitrate, keyint_frames, duration,
            profile, preset, codec="h264", bframes=0) -> dict:

    t_start = time.perf_counter()
    comp = _Composer(events, width, height, testdata)
    cv2.imwrite(str(out_dir / "background.png"), comp.bg)
    n_frames = int(round(duration * fps))
    enc = H264Writer(out_dir, width=width, height=height, fps=fps, bitrate=bitrate, keyint_frames=keyint_frames,
                     profile=profile, preset=preset, codec=codec, bframes=bframes)
    for n in range(n_frames):
        enc.add(comp.frame(n, n / fps))
    facts = enc.close()
    ev_json = []
    for i, e in enumerate(events):
        d = e.to_json()
        box = comp.box(i, e)
        if box is not None:
            d["box"] = box  # face (or back of head) box at rest, px; it moves by up to motion_px
            d["motion_px"] = round(comp.sway(e) * 1.3, 1)
        ev_json.append(d)
    truth = {
        "version": RENDER_VERSION,
        **facts,
        "counter_top": comp.counter_top,
        "encode_seconds": round(time.perf_counter() - t_start, 2),
        "events": ev_json,
    }
    return truth
