"""Replay detection and attestation on the verify path: what is called a replay, and what the checks cost.

    .venv/bin/python bench/capture_replay.py [--repeat 50]

1. Accuracy: for every test portrait, copies a replayer could send (JPEG re-encodes, slight resizes, a
   small crop, a brightness change) and genuinely different captures (other photos of the same person,
   other people, a mirror image). For each pair: the pHash distance, the face-embedding cosine, and
   whether the default settings call it a replay (facepay/replay.py).
2. Cost, in this process, beside the face analysis of the same captures (the baseline): the pHash of a
   decoded capture, an Ed25519 signature check, SHA-256 of the bytes.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from facepay.attestation import message  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from tests.conftest import MODELS_CACHE, TESTDATA  # noqa: E402
from vision import phash as ph  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402

PEOPLE = {"obama": ["obama.jpg", "obama2.jpg", "obama3.jpg"], "biden": ["biden.jpg"]}


def reencode(img, q):
    return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)


def copies(img) -> dict:
    h, w = img.shape[:2]
    return {
        "jpeg q90": reencode(img, 90), "jpeg q75": reencode(img, 75), "jpeg q60": reencode(img, 60),
        "resize 95%": cv2.resize(img, (int(w * .95), int(h * .95)), interpolation=cv2.INTER_AREA),
        "resize 90% + q75": reencode(cv2.resize(img, (int(w * .9), int(h * .9)), interpolation=cv2.INTER_AREA), 75),
        "crop 2%": img[h // 50:, w // 50:], "brightness +10%": cv2.convertScaleAbs(img, alpha=1.1, beta=10),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    a = ap.parse_args()
    s = Settings(models_dir=MODELS_CACHE)
    pipe = FacePipeline.from_settings(s)

    def embed(img):
        f = pipe.analyze_closeup(img, max_embed=1, small_side=s.verify_detect_max_side)
        return f[0].embedding if f and f[0].embedding is not None else None

    def judge(a_img, b_img):
        d = ph.distance(ph.phash(a_img), ph.phash(b_img))
        ea, eb = embed(a_img), embed(b_img)
        sim = float(ea @ eb) if ea is not None and eb is not None else None
        replay = d <= s.verify_replay_max_phash_distance and sim is not None and sim >= s.verify_replay_min_similarity
        return d, sim, replay

    print(f"settings: max pHash distance {s.verify_replay_max_phash_distance}, "
          f"min similarity {s.verify_replay_min_similarity}")
    print(f"{'original':12} {'sent':28} {'pHash bits':>10} {'cosine':>8}  called")
    imgs = {n: cv2.imread(str(TESTDATA / "faces" / n)) for names in PEOPLE.values() for n in names}
    caught = total_copies = false_replays = total_new = 0
    for name, img in imgs.items():
        for what, c in copies(img).items():
            d, sim, rep = judge(img, c)
            caught += rep
            total_copies += 1
            print(f"{name:12} {what:28} {d:>10} {sim if sim is None else round(sim, 4)!s:>8}  "
                  f"{'replay' if rep else 'new'}")
        others = [(o, oi) for o, oi in imgs.items() if o != name] + [("mirror", cv2.flip(img, 1))]
        for other, oi in others:
            d, sim, rep = judge(img, oi)
            false_replays += rep
            total_new += 1
            print(f"{name:12} {other:28} {d:>10} {sim if sim is None else round(sim, 4)!s:>8}  "
                  f"{'replay' if rep else 'new'}")
    print(f"copies called replays: {caught}/{total_copies}; different captures called replays: "
          f"{false_replays}/{total_new}")

    # cost beside the face analysis (same captures, same process)
    caps = [cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for img in imgs.values()]
    decoded = list(imgs.values())
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    sigs = [(key.sign(message("T1", hashlib.sha256(c).hexdigest(), "2026-12-02T05:00:00Z", "infrared", "true",
                              "0.9700")), hashlib.sha256(c).hexdigest()) for c in caps]

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
    print(f"face analysis (baseline) {base:.2f} ms median per capture")
    for what, t in (("pHash", t_phash), ("SHA-256", t_sha), ("Ed25519 verify", t_sig)):
        print(f"{what:24} {t:.3f} ms = {100 * t / base:.2f} % of the face analysis")
    print("signature (base64):", base64.b64encode(sigs[0][0]).decode()[:16], "…")


if __name__ == "__main__":
    main()
