"""Face verification accuracy and speed on the shared test images.

    .venv/bin/python bench/accuracy.py [--testdata ../shared/testdata] [--threshold T]

Genuine pairs: every pair among the obama portraits (incl. the partial face).
Impostor pairs: biden vs each obama; every usable face found in scenes/ against every other scene face
(except pairs inside the bald_guys.jpg collage, which repeats the same few people: reported apart)
and against every portrait. Only faces that pass the quality gate are compared (as in production).
Prints FAR/FRR at the threshold, score distributions, and raw-pipeline timings on obama.jpg.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernel.settings import Settings  # noqa: E402
from vision.align import align  # noqa: E402
from vision.image import decode_image  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402


def _dist(scores: list[float]) -> str:
    if not scores:
        return "n=0"
    a = np.asarray(scores)
    q = np.percentile(a, [0, 5, 50, 95, 100])
    return f"n={len(a)} min={q[0]:.3f} p5={q[1]:.3f} median={q[2]:.3f} p95={q[3]:.3f} max={q[4]:.3f}"


def _hist(scores: list[float], lo=-0.3, hi=1.0, step=0.1) -> str:
    edges = np.arange(lo, hi + 1e-9, step)
    counts, _ = np.histogram(scores, bins=edges)
    return "  ".join(f"[{edges[i]:+.1f},{edges[i + 1]:+.1f}):{c}" for i, c in enumerate(counts) if c)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--testdata", type=Path, default=REPO.parent / "shared" / "testdata")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--runs", type=int, default=30, help="repetitions for the timing medians")
    args = ap.parse_args()

    s = Settings()
    pipe = FacePipeline.from_settings(s)
    th = args.threshold if args.threshold is not None else pipe.threshold
    print(f"models: {pipe.model_info}")
    print(f"threshold: {th}")

    def load(p: Path):
        return decode_image(p.read_bytes(), max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)

    faces_dir, scenes_dir = args.testdata / "faces", args.testdata / "scenes"
    portraits: dict[str, np.ndarray] = {}
    for p in sorted(faces_dir.glob("*.jpg")):
        found = pipe.analyze(load(p))
        usable = [f for f in found if f.usable]
        print(f"  {p.name}: {len(found)} face(s), {len(usable)} usable")
        if usable:
            portraits[p.name] = usable[0].embedding
    scene_faces: list[tuple[str, np.ndarray]] = []
    for p in sorted(scenes_dir.glob("*.jpg")):
        found = pipe.analyze(load(p))
        usable = [f for f in found if f.usable]
        print(f"  {p.name}: {len(found)} face(s), {len(usable)} usable "
              f"(refused: {sorted({r for f in found for r in f.quality.reasons})})")
        scene_faces += [(f"{p.stem}#{i}", f.embedding) for i, f in enumerate(usable)]

    obamas = [k for k in portraits if k.startswith("obama")]
    genuine = [float(portraits[a] @ portraits[b]) for a, b in itertools.combinations(obamas, 2)]
    imp_biden = [float(portraits["biden.jpg"] @ portraits[o]) for o in obamas] if "biden.jpg" in portraits else []
    # Scene faces are different people, EXCEPT inside bald_guys.jpg: it is a collage of several photos
    # each of about four actors, so its within-image pairs are mostly same-person pairs with no labels.
    # Those are reported apart and left out of FAR; pairs across images are different people.
    collage = "bald_guys"
    imp_scene_scene, collage_pairs = [], []
    for a, b in itertools.combinations(scene_faces, 2):
        ia, ib = a[0].split("#")[0], b[0].split("#")[0]
        (collage_pairs if ia == ib == collage else imp_scene_scene).append(float(a[1] @ b[1]))
    imp_scene_portrait = [float(e @ portraits[k]) for _, e in scene_faces for k in portraits]
    impostor = imp_biden + imp_scene_scene + imp_scene_portrait

    frr = sum(x < th for x in genuine) / max(1, len(genuine))
    far = sum(x >= th for x in impostor) / max(1, len(impostor))
    print("\n== accuracy ==")
    print(f"genuine pairs : {_dist(genuine)}")
    print(f"impostor pairs: {_dist(impostor)}")
    print(f"   biden vs obama      : {_dist(imp_biden)}")
    print(f"   scene vs scene      : {_dist(imp_scene_scene)}")
    print(f"   scene vs portraits  : {_dist(imp_scene_portrait)}")
    print(f"   (excluded) within {collage}.jpg, unlabelled collage: {_dist(collage_pairs)}")
    print(f"genuine histogram : {_hist(genuine)}")
    print(f"impostor histogram: {_hist(impostor)}")
    print(f"FRR at {th}: {sum(x < th for x in genuine)}/{len(genuine)} = {frr:.1%}")
    print(f"FAR at {th}: {sum(x >= th for x in impostor)}/{len(impostor)} = {far:.2%}")
    if genuine and impostor:
        print(f"margin: lowest genuine {min(genuine):.3f} vs highest impostor {max(impostor):.3f}")

    # --- timings on obama.jpg (medians) ---------------------------------------------------------
    data = (faces_dir / "obama.jpg").read_bytes()
    dec, det, ali, emb = [], [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        img = decode_image(data, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
        t1 = time.perf_counter()
        face = pipe.detector.detect(img)[0]
        t2 = time.perf_counter()
        crop = align(img, face)
        t3 = time.perf_counter()
        pipe.recognizer.embed(crop)
        t4 = time.perf_counter()
        dec.append(t1 - t0); det.append(t2 - t1); ali.append(t3 - t2); emb.append(t4 - t3)
    ms = lambda v: f"{statistics.median(v) * 1e3:.1f} ms"  # noqa: E731
    print(f"\n== timings, obama.jpg {img.shape[1]}x{img.shape[0]}, medians of {args.runs}, "
          f"onnx_threads={s.onnx_threads} ==")
    print(f"decode {ms(dec)}  detect {ms(det)}  align {ms(ali)}  embed {ms(emb)}  "
          f"total {ms([a + b + c + d for a, b, c, d in zip(dec, det, ali, emb)])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
