"""Correlation benchmark (docs/benchmarks/correlate.md): precision/recall per outcome, settlements/s.

    .venv/bin/python bench/correlate.py [--per-scene 5 --workers 2 --intervals 2,4]

Starts its own SeaweedFS and SQLite index in a temp dir. A scenario generator (the camera
simulator's renderer, scripted events) makes one block of footage per settlement with known truth,
at the default window (120 s before to 30 s after the settlement: 160 s blocks of 640x360, 25 fps,
keyframe every 2 s, 10 s segments written the way the recorder writes them; renders are cached
outside the repository, in ``$DUALCHECK_SIM_CACHE`` or ``<tmp>/dualcheck-sim-cache``). Scenes, with positions,
face sizes and sway varied per block:

* present       the insured person at the counter (all the window, or arriving late)       verified_present
* ghost         nobody                                                                     ghost_visit
* impostor      someone else (and the insured person never comes)                          impersonation
* back_turned   a person with their back to the camera                                     inconclusive
* blurred       a face too blurred to recognise                                            inconclusive
* camera_off    no footage (recording gap)                                                 footage_missing
* many_cards    one impostor face settling for 3 different insured people                  impersonation + one_face_many_cards

Then all settlements are checked by ``--workers`` processes (each its own runtime and models, the
way ``dualcheck correlate worker`` processes would run), and precision/recall per outcome and
settlements checked per second are printed (Markdown), for each sampling interval of ``--intervals``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import secrets
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BLOCK_S = 160.0
SETTLE_AT = 125.0  # window [5 s, 155 s] of the block
SIZE = dict(width=640, height=360, fps=25, bitrate=500_000, keyint_s=2.0)
INSURED, OTHER = "obama.jpg", "biden.jpg"


def scene_script(kind: str, rng: random.Random):
    from camsim.footage import Event

    x = round(rng.uniform(0.38, 0.62), 2)
    fw = rng.choice([130, 150, 170])
    sway = rng.choice([6, 10, 14])
    p = {"x": x, "face_w": fw, "sway": sway}
    if kind == "present":
        if rng.random() < 0.5:
            return [Event(0, BLOCK_S, "face", {"image": INSURED, **p})]
        a = rng.choice([40, 70, 100])
        return [Event(0, a, "empty"), Event(a, BLOCK_S, "face", {"image": INSURED, **p})]
    if kind == "ghost":
        return [Event(0, BLOCK_S, "empty", {"v": rng.randrange(3)})]
    if kind in ("impostor", "many_cards"):
        if rng.random() < 0.5:
            return [Event(0, BLOCK_S, "face", {"image": OTHER, **p})]
        a, b = rng.choice([(20, 90), (60, 140), (90, 158)])
        return [Event(0, a, "empty"), Event(a, b, "face", {"image": OTHER, **p}), Event(b, BLOCK_S, "empty")]
    if kind == "back_turned":
        shirt = rng.choice([(90, 60, 40), (40, 40, 140), (60, 120, 60)])
        return [Event(0, BLOCK_S, "back_turned", {"x": x, "sway": sway, "shirt": shirt})]
    if kind == "blurred":
        return [Event(0, BLOCK_S, "blur_face", {"image": OTHER, **p})]
    raise ValueError(kind)


EXPECTED = {"present": "verified_present", "ghost": "ghost_visit", "impostor": "impersonation",
            "back_turned": "inconclusive", "blurred": "inconclusive", "camera_off": "footage_missing",
            "many_cards": "impersonation"}
OUTCOMES = ("verified_present", "ghost_visit", "impersonation", "inconclusive", "footage_missing")


def _settings(tmp: Path, sw, interval: float):
    from kernel.settings import Settings

    return Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'bench.db'}", s3_endpoint=sw["endpoint"],
                    s3_access_key=sw["access"], s3_secret_key=sw["secret"], bucket_footage="bench-footage",
                    bucket_biometrics="bench-bio", models_dir=REPO / "var" / "models",
                    correlate_sample_interval_s=interval, correlate_footage_grace_s=0.0,
                    correlate_footage_max_wait_s=0.0)


_RT = None


def _init_worker(tmp: str, sw: dict, interval: float) -> None:
    global _RT
    from dualcheck.runtime import Runtime

    _RT = Runtime(_settings(Path(tmp), sw, interval))
    _RT.pipeline  # load the models before timing


def _check(sid: str) -> tuple[str, str, float]:
    from correlate.jobs import check_one

    t = time.perf_counter()
    status = check_one(_RT.checker, sid)
    return sid, status, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-scene", type=int, default=5, help="settlements per scene kind (many_cards: x3)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--intervals", default="2,4", help="sampling intervals (s) to compare")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from sqlalchemy import delete, select, update

    from api.keys import add_organisation
    from camsim.footage import render
    from correlate.settlements import Importer
    from dualcheck.runtime import Runtime
    from ingest.cameras import add_camera
    from storage.db import migrate, session_scope
    from storage.models import EvidenceHold, FaceEvidence, Flag, FlagEvent, Settlement, SettlementCheck
    from storage.seaweed import LocalSeaweed
    from tests.conftest import TESTDATA, _port_base
    from tests.correlate.scenarios import cache_dir as default_cache_dir
    from tests.correlate.scenarios import enroll, write_block

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="dualcheck-bench-corr-"))
    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="bench" + secrets.token_hex(4),
                      secret_key=secrets.token_urlsafe(24))
    sw.up()
    swd = {"endpoint": sw.endpoint, "access": sw.access_key, "secret": sw.secret_key}
    try:
        intervals = [float(x) for x in args.intervals.split(",")]
        s = _settings(tmp, swd, intervals[0])
        migrate(s.effective_database_url)
        rt = Runtime(s)
        rt.store.ensure_bucket(s.bucket_footage)
        rt.store.ensure_bucket(s.bucket_biometrics)
        t0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
        truth: dict[str, str] = {}
        rows = []
        kinds = ["present", "ghost", "impostor", "back_turned", "blurred", "camera_off"]
        plan = [(k, "P-OBAMA") for k in kinds for _ in range(args.per_scene)]
        for g in range(max(1, args.per_scene // 3)):  # one impostor face, three cards
            plan += [("many_cards", f"P-CARD{g}-{j}") for j in range(3)]
        t_render = 0.0
        with session_scope(rt.sessions) as db:
            add_organisation(db, "ORG", "Clinic", region="north")
            db.flush()
            add_camera(db, camera_id="CAM", org_id="ORG", name="counter", role="settlement_counter",
                       url="rtsp://h/s", covers=["counter-1"])
            enroll(db, rt.pipeline, TESTDATA, "P-OBAMA")
            for j in range(3):
                for g in range(max(1, args.per_scene // 3)):
                    enroll(db, rt.pipeline, TESTDATA, f"P-CARD{g}-{j}", photos=("obama2.jpg",))
            for i, (kind, insured) in enumerate(plan):
                start = t0 + timedelta(seconds=i * (BLOCK_S + 40))
                if kind != "camera_off":
                    a = time.perf_counter()
                    foot = render(scene_script(kind, rng), cache_dir=default_cache_dir(), testdata=TESTDATA, **SIZE)
                    t_render += time.perf_counter() - a
                    write_block(db, rt.store, s.bucket_footage, foot, org_id="ORG", camera_id="CAM", start=start,
                                total_s=BLOCK_S, workdir=tmp)
                sid = f"B-{i:03d}-{kind}"
                truth[sid] = EXPECTED[kind]
                rows.append({"settlement_id": sid, "insured_id": insured, "org_id": "ORG", "counter": "counter-1",
                             "settled_at": (start + timedelta(seconds=SETTLE_AT)).isoformat(), "amount": "20.00",
                             "type": "pharmacy"})
            # recording goes on after the last block (so a final gap is final)
            last = t0 + timedelta(seconds=len(plan) * (BLOCK_S + 40))
            foot = render(scene_script("ghost", rng), cache_dir=default_cache_dir(), testdata=TESTDATA, **SIZE)
            write_block(db, rt.store, s.bucket_footage, foot, org_id="ORG", camera_id="CAM", start=last, total_s=20,
                        workdir=tmp)
            imp = Importer(db, actor="bench")
            for n, r in enumerate(rows):
                imp.add(n, r)
            assert not imp.result.errors, imp.result.errors
        print(f"# {len(rows)} settlements, model {rt.pipeline.model_id}, render {t_render:.0f} s", file=sys.stderr)
        ids = [r["settlement_id"] for r in rows]
        for interval in intervals:
            with session_scope(rt.sessions) as db:  # reset: every settlement pending again
                for m in (FaceEvidence, SettlementCheck, FlagEvent, EvidenceHold, Flag):
                    db.execute(delete(m))
                db.execute(update(Settlement).values(status="pending", outcome=None, attempts=0))
            ctx = mp.get_context("spawn")
            with ctx.Pool(args.workers, initializer=_init_worker, initargs=(str(tmp), swd, interval)) as pool:
                pool.map(_init_noop, range(args.workers))  # make sure all workers have loaded models
                a = time.perf_counter()
                res = pool.map(_check, ids, chunksize=1)
                wall = time.perf_counter() - a
            per = sorted(t for _, _, t in res)
            with session_scope(rt.sessions) as db:
                got = {x.id: x.outcome for x in db.scalars(select(Settlement))}
                many = [f for f in db.scalars(select(Flag).where(Flag.rule == "one_face_many_cards"))]
            report(interval, truth, got, wall, per, args.workers, many, plan)
        rt.close()
    finally:
        sw.down()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _init_noop(_):
    time.sleep(0.2)
    return True


def report(interval, truth, got, wall, per, workers, many, plan) -> None:
    n = len(truth)
    print(f"\n## sampling every {interval:g} s, {workers} worker processes\n")
    print(f"{n} settlements in {wall:.1f} s: **{n / wall:.2f} settlements/s**; per check median "
          f"{per[len(per) // 2]:.2f} s, p95 {per[int(0.95 * (len(per) - 1))]:.2f} s (one process)\n")
    print("| outcome | truth | predicted | correct | precision | recall |")
    print("|---|---|---|---|---|---|")
    for o in OUTCOMES:
        t = {k for k, v in truth.items() if v == o}
        p = {k for k, v in got.items() if v == o}
        c = len(t & p)
        prec = f"{c / len(p):.2f}" if p else "-"
        rec = f"{c / len(t):.2f}" if t else "-"
        print(f"| {o} | {len(t)} | {len(p)} | {c} | {prec} | {rec} |")
    wrong = {k: (truth[k], got.get(k)) for k in truth if truth[k] != got.get(k)}
    if wrong:
        print(f"\nmisclassified: {wrong}")
    groups = len([1 for k, _ in plan if k == "many_cards"]) // 3
    hit = sum(1 for f in many if len(f.settlement_ids) >= 3)
    print(f"\none_face_many_cards: {hit} flag(s) for {groups} planted group(s); "
          f"{len(many) - hit} other(s)")


if __name__ == "__main__":
    main()
