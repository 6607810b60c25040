"""The sharpness gate against faces at CCTV sizes: H.264-compressed (should pass) and blurred (should not).

    DUALCHECK_MODELS_DIR=var/models .venv/bin/python bench/sharpness.py [--testdata ../shared/testdata]

Each of obama.jpg, obama2.jpg, obama3.jpg is scaled so its face box is 40-160 px wide and pasted
into a 1280x720 counter-like frame (the three side by side, as at a counter). The frame is then
either encoded as a 2 s H.264 clip (libx264 through PyAV, 25 fps, one keyframe, constant-bitrate
target, per-frame sensor noise) and the frame in the middle of the clip (a P-frame) decoded, or
blurred without compression (Gaussian sigma 2-5 at the frame's resolution, linear motion blur).
Faces are detected as the checker does (correlate.check.detect_wide, detector at 480 px).

Per condition: how many faces were found, how many the quality gate calls usable, their sharpness,
and SFace's genuine score against the other two portraits (full resolution, as enrolled templates;
best of the two, as the checker does). A face is "recognisable" when that score clears the match
threshold.
"""
from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernel.settings import Settings  # noqa: E402
from vision.matching import cosine_scores  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402

FRAME_W, FRAME_H = 1280, 720
PORTRAITS = ("obama.jpg", "obama2.jpg", "obama3.jpg")
SIZES = (40, 60, 80, 100, 120, 160)
BITRATES = (500_000, 1_000_000, 2_000_000)
BLURS = (("gauss", 2.0), ("gauss", 3.0), ("gauss", 5.0), ("motion", 9), ("motion", 15))
DETECT_MAX_SIDE = 480  # settings.correlate_detect_max_side: what the checker uses on footage


def counter_background(seed: int = 7) -> np.ndarray:
    """A plain 1280x720 'counter': wall gradient, shelves of boxes, a counter top. Texture for the
    encoder to spend bits on; no faces."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, FRAME_H, dtype=np.float32)[:, None, None]
    img = (np.array([175, 185, 190], np.float32) * (1 - 0.3 * y)).repeat(FRAME_W, 1)
    for _ in range(60):  # shelf boxes behind the counter
        x0, y0 = int(rng.integers(0, FRAME_W - 60)), int(rng.integers(20, 300))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(20, 60)), y0 + int(rng.integers(30, 80))),
                      tuple(float(c) for c in rng.integers(40, 230, 3)), -1)
    cv2.rectangle(img, (0, 560), (FRAME_W, FRAME_H), (90, 110, 130), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def face_patch(pipeline: FacePipeline, img: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The portrait's face with a margin around it, and the face box inside that patch."""
    f = pipeline.analyze(img, max_embed=0)[0].face
    m = 0.6 * f.width
    x0, y0 = int(max(0, f.x1 - m)), int(max(0, f.y1 - m))
    x1, y1 = int(min(img.shape[1], f.x2 + m)), int(min(img.shape[0], f.y2 + m))
    return img[y0:y1, x0:x1].copy(), (f.x1 - x0, f.y1 - y0, f.width, f.height)


def compose(bg: np.ndarray, patches, face_w: int, dx: int = 0,
            dy: int = 0) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """``bg`` with each patch scaled so its face box is ``face_w`` px wide, spread across the frame
    (shifted by dx, dy). Returns the frame and each face's box (x, y, w, h) in it."""
    frame = bg.copy()
    boxes = []
    for i, (patch, (bx, by, bw, bh)) in enumerate(patches):
        s = face_w / bw
        p = cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        cx = int(FRAME_W * (i + 1) / (len(patches) + 1)) + dx
        x0 = int(np.clip(cx - (bx + bw / 2) * s, 0, FRAME_W - 1))
        y0 = int(np.clip(330 + dy - (by + bh / 2) * s, 0, FRAME_H - 1))
        h, w = min(p.shape[0], FRAME_H - y0), min(p.shape[1], FRAME_W - x0)
        frame[y0:y0 + h, x0:x0 + w] = p[:h, :w]
        boxes.append((x0 + bx * s, y0 + by * s, bw * s, bh * s))
    return frame, boxes


def sway(i: int, fps: int = 25) -> tuple[int, int]:
    """A person standing at a counter is never still: a few pixels of sway, about once a second,
    back at (0, 0) on every whole second (where the measured frame is taken)."""
    t = 2 * np.pi * i / fps
    return int(round(3 * np.sin(t))), int(round(1.5 * np.sin(2 * t)))


def h264_clip(make_frame, bitrate: int, *, seconds: float = 2.0, fps: int = 25, noise: float = 3.0,
              pick: int | None = None, seed: int = 1) -> np.ndarray:
    """Frames ``make_frame(i)`` as a camera would send them: a ``seconds`` clip at ``bitrate`` (one
    keyframe, then P-frames; sensor noise in every frame, as in a real stream), decoded. Returns frame
    ``pick`` (default: the middle of the clip, a P-frame: the worst case of a GOP)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    pick = n // 2 if pick is None else pick
    out = io.BytesIO()
    with av.open(out, mode="w", format="h264") as c:
        first = make_frame(0)
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        st.bit_rate = bitrate
        # CCTV encoders: constant bitrate, no B-frames, one keyframe per GOP
        st.options = {"preset": "veryfast", "g": str(n), "bf": "0",
                      "x264-params": f"vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}:nal-hrd=cbr"}
        for i in range(n):
            f = first if i == 0 else make_frame(i)
            noisy = np.clip(f.astype(np.float32) + rng.normal(0, noise, f.shape), 0, 255).astype(np.uint8)
            for pkt in st.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    out.seek(0)
    with av.open(out, mode="r", format="h264") as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == pick:
                return f.to_ndarray(format="bgr24")
    raise RuntimeError("clip shorter than expected")


def blur(frame: np.ndarray, kind: str, amount: float) -> np.ndarray:
    if kind == "gauss":
        return cv2.GaussianBlur(frame, (0, 0), amount)
    k = np.zeros((int(amount), int(amount)), np.float32)
    k[int(amount) // 2, :] = 1.0 / int(amount)  # horizontal: a head turning or a person walking by
    return cv2.filter2D(frame, -1, k)


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    u = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / u if u > 0 else 0.0


def legacy_sharpness(aligned_bgr: np.ndarray) -> float:
    """The gate's measure before this bench (variance of the contrast-normalised Laplacian of the
    aligned crop, x100; refused below 8.0), kept here to print the before/after table."""
    g = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    n = g.shape[0]
    c = g[n // 7: n - n // 14, n // 7: n - n // 7]
    std = float(c.std())
    return 0.0 if std < 1.0 else float(cv2.Laplacian(c / std, cv2.CV_32F).var() * 100.0)


LEGACY_MIN_SHARPNESS = 8.0


@dataclass
class Obs:
    found: bool
    usable: bool = False
    sharpness: float = 0.0
    reasons: tuple = ()
    genuine: float | None = None
    face: object = None  # the vision.pipeline.AnalyzedFace
    legacy_usable: bool = False


def observe(pipeline: FacePipeline, frame: np.ndarray, boxes, templates: list[np.ndarray]) -> list[Obs]:
    """One observation per pasted face: the detection over it, its quality and its genuine score
    against the templates of the *other* portraits."""
    faces = pipeline.analyze(frame, max_embed=0, detect_max_side=DETECT_MAX_SIDE, wide=True)
    out = []
    for i, box in enumerate(boxes):
        hit = [f for f in faces if iou((f.face.x1, f.face.y1, f.face.width, f.face.height), box) > 0.3]
        if not hit:
            out.append(Obs(False))
            continue
        f = hit[0]
        emb = pipeline.recognizer.embed(f.aligned)
        others = np.stack([t for j, t in enumerate(templates) if j != i])
        out.append(Obs(True, f.quality.usable, f.quality.sharpness, tuple(f.quality.reasons),
                       float(np.max(cosine_scores(emb, others))), f,
                       not [r for r in f.quality.reasons if r != "blurry"]
                       and legacy_sharpness(f.aligned) >= LEGACY_MIN_SHARPNESS))
    return out


def measure(pipeline: FacePipeline, testdata: Path):
    imgs = [cv2.imread(str(testdata / "faces" / n)) for n in PORTRAITS]
    templates = [pipeline.analyze(im, max_embed=1)[0].embedding for im in imgs]
    patches = [face_patch(pipeline, im) for im in imgs]
    bg = counter_background()
    rows = []
    for size in SIZES:
        frame, boxes = compose(bg, patches, size)
        for br in BITRATES:
            clip = h264_clip(lambda i: compose(bg, patches, size, *sway(i))[0], br)
            rows.append(("h264", f"{br // 1000} kbit/s", size, observe(pipeline, clip, boxes, templates)))
        for kind, amount in BLURS:
            label = f"gauss sigma {amount:g}" if kind == "gauss" else f"motion {amount} px"
            rows.append(("blur", label, size, observe(pipeline, blur(frame, kind, amount), boxes, templates)))
    return rows


def table(rows, thr: float) -> str:
    lines = ["| degradation | face px | found | usable before | usable after | sharpness (min-max) "
             "| genuine score (min-max) | recognisable (score >= thr) |", "|---|---|---|---|---|---|---|---|"]
    for kind, label, size, obs in rows:
        found = [o for o in obs if o.found]
        sh = f"{min(o.sharpness for o in found):.0f}-{max(o.sharpness for o in found):.0f}" if found else "-"
        gs = [o.genuine for o in found]
        rng = f"{min(gs):.2f}-{max(gs):.2f}" if gs else "-"
        rec = sum(g >= thr for g in gs)
        lines.append(f"| {label} | {size} | {len(found)}/{len(obs)} | {sum(o.legacy_usable for o in found)}/{len(found)} "
                     f"| {sum(o.usable for o in found)}/{len(found)} | {sh} | {rng} | {rec}/{len(found)} |")
    return "\n".join(lines)


def summary(rows, thr: float) -> str:
    """Usable share of recognisable compressed faces, refused share of blurred ones, per size."""
    lines = ["| face px | compressed & recognisable: usable, before | after | blurred: refused, before | after |",
             "|---|---|---|---|---|"]
    for size in SIZES:
        comp = [o for k, _, s, obs in rows if k == "h264" and s == size for o in obs
                if o.found and o.genuine is not None and o.genuine >= thr]
        bl = [o for k, _, s, obs in rows if k == "blur" and s == size for o in obs if o.found]
        lines.append(f"| {size} | {sum(o.legacy_usable for o in comp)}/{len(comp)} | {sum(o.usable for o in comp)}/{len(comp)} "
                     f"| {sum(not o.legacy_usable for o in bl)}/{len(bl)} | {sum(not o.usable for o in bl)}/{len(bl)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testdata", type=Path, default=REPO.parent / "shared" / "testdata")
    a = ap.parse_args()
    pipeline = FacePipeline.from_settings(Settings(model_pack="yunet_sface"))
    thr = float(pipeline.threshold)
    rows = measure(pipeline, a.testdata)
    print(f"match threshold {thr:.3f}; quality gate {pipeline.thresholds}\n")
    print(table(rows, thr))
    print()
    print(summary(rows, thr))


if __name__ == "__main__":
    main()
