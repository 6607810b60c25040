"""Bed-hanging (挂床住院, issue 13): bed-days checked per second and precision/recall of the flag on ward
scenes with decoys.

    .venv/bin/python bench/ward.py [--wards 3 --days 4 --seed 1]

Everything real, on loopback: a local SeaweedFS, a SQLite index, the face models (YuNet + SFace), real
H.264 footage (camsim.ward: four beds per ward, one seen from a steep angle; 08:00 and 12:30 by day,
22:00 in infrared) written as fMP4 segments the way the recorder writes them, 4 s either side of each
check time (tests/correlate/test_ward_checks.py says why segments rather than days of live recording).
Empty-bed pictures (day and night) are taken from an empty moment the day before, through
correlate/beds.py as the API takes them.

Each ward's four patients follow a script drawn from the seed, one of:
* ``present``  — in bed at every check (asleep facing away at night half the time);
* ``absent``   — gone for two to three whole days after the first (the bed-hanging the rule must find);
* ``away_once`` — out of bed at one daytime check (bathroom, an examination): a decoy;
* ``away_day``  — out of bed at the three checks of one day (home for a day, one day only: below the rule's
  two days): a decoy;
* ``overnight`` — out at 22:00 and at 08:00 the next morning (two checks over two days: below three
  checks): a decoy.
At about ``--nurse`` (0.5) of the absent checks a nurse stands at the empty bed's side (the occupancy test's
decoy). The same footage is judged twice, from scratch: ``before`` — the bed's whole outline and margin with
occupied_share 0.18, the measure before the decoy — and ``after``, the inner region and the rule's share.
The truth of each admission is the rule applied to the script; the figures compare the flags raised with it,
and each check's outcome with the script.

Figures: bed-days per second of ``WardChecker.run`` (all admissions, first run: every check decoded and
judged), beside a baseline measured in the same run on the same footage — reading and decoding the same
sampled frames and nothing else — so a loaded machine shows in both; per-check accuracy; flag precision
and recall.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TZ = ZoneInfo("Asia/Shanghai")
SLOTS = ("08:00", "12:30", "22:00")
PEOPLE = ("obama", "biden", "bald_03", "t1_2", "bald_07", "t1_4", "astronaut", "bald_11", "bald_15", "t1_0",
          "bald_19", "bald_21")
KINDS = ("present", "absent", "away_once", "away_day", "overnight")


def local(day, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}:00").replace(tzinfo=TZ)


def script(kind: str, days: list, rng: random.Random) -> set:
    """The (day index, slot) pairs at which the patient is out of bed."""
    out: set = set()
    if kind == "absent":
        start = rng.randrange(1, max(2, len(days) - 1))
        for d in range(start, min(len(days), start + rng.choice((2, 3)))):
            out |= {(d, s) for s in SLOTS}
    elif kind == "away_once":
        out.add((rng.randrange(len(days)), rng.choice(SLOTS[:2])))
    elif kind == "away_day":
        d = rng.randrange(len(days))
        out |= {(d, s) for s in SLOTS}
    elif kind == "overnight":
        d = rng.randrange(len(days) - 1)
        out |= {(d, "22:00"), (d + 1, "08:00")}
    return out


def flagged_by_rule(away: set, days: list, min_checks: int, min_days: int) -> bool:
    run: list = []
    for d in range(len(days)):
        for s in SLOTS:
            if (d, s) in away:
                run.append((d, s))
                continue
            if len(run) >= min_checks and len({x[0] for x in run}) >= min_days:
                return True
            run = []
    return len(run) >= min_checks and len({x[0] for x in run}) >= min_days


def report(label, rt, truth, days, a, rep, run_s, run_cpu, base_s, base_cpu) -> None:
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import BedCheck, Flag

    print(f"## {label}")
    bed_days = len(truth) * a.days
    with session_scope(rt.sessions) as db:
        checks = db.scalars(select(BedCheck)).all()
        flags = {f.evidence["admission"]["mdtrt_id"] for f in db.scalars(select(Flag).where(Flag.type == "bed_hanging"))}
        right = wrong = unknown = 0
        errors = []
        for c in checks:
            di = days.index(datetime.fromisoformat(c.day).date())
            want = "absent" if (di, c.slot) in truth[c.mdtrt_id][1] else "present"
            if c.outcome == "unknown":
                unknown += 1
            elif c.outcome == want:
                right += 1
            else:
                wrong += 1
                errors.append(f"{c.mdtrt_id} {c.day} {c.slot}: {c.outcome} ({c.why}, changed {c.changed}), truth {want}")
    should = {m for m, (_, _, f) in truth.items() if f}
    tp, fp, fn = len(flags & should), len(flags - should), len(should - flags)
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    kinds = {k: sum(1 for v in truth.values() if v[0] == k) for k in KINDS}
    print(f"| bed-days | checks | run s (CPU s) | bed-days/s | baseline decode-only s (CPU s) | run / baseline |")
    print("|---|---|---|---|---|---|")
    print(f"| {bed_days} | {rep.checks} | {run_s:.1f} ({run_cpu:.1f}) | {bed_days / run_s:.2f} | "
          f"{base_s:.1f} ({base_cpu:.1f}) | {run_s / base_s:.2f}x |")
    print()
    print(f"admissions by script: {kinds}; flagged by the truth: {sorted(should)}")
    print(f"checks: {right} right, {wrong} wrong, {unknown} unknown of {len(checks)}")
    print(f"挂床住院 flags: {sorted(flags)}; precision {prec:.2f} ({tp}/{tp + fp}), recall {rec:.2f} ({tp}/{tp + fn})")
    for e in errors[:20]:
        print("  wrong:", e)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--wards", type=int, default=3)
    p.add_argument("--days", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nurse", type=float, default=0.5, help="share of absent checks with a nurse standing at the bed")
    a = p.parse_args()


    from api.keys import add_organisation
    from camsim.ward import BEDS, Moment, region, render_ward
    from correlate import beds as beds_mod
    from correlate import footage as footage_mod
    from correlate.check import detect_wide
    from correlate.tracking import box_of
    from correlate.ward_checks import SAMPLE_INTERVAL_S, WardChecker
    from dualcheck.runtime import Runtime
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.clips import segments_in
    from storage.db import migrate, session_scope
    from storage.models import BedCheck, ClaimAdmission, ClaimDischarge, Flag
    from storage.seaweed import LocalSeaweed
    from tests.conftest import _port_base
    from tests.replay.segmenter import make_segments

    rng = random.Random(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ward-"))
    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="bench" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24))
    sw.up()
    models = os.environ.get("DUALCHECK_TEST_MODELS") or str(REPO / "var" / "models")
    s = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'bench.db'}", s3_endpoint=sw.endpoint,
                 s3_access_key=sw.access_key, s3_secret_key=sw.secret_key, models_dir=models,
                 bucket_biometrics="bio-bench", bucket_footage="footage-bench")
    migrate(s.effective_database_url)
    rt = Runtime(s)
    try:
        store, bucket = rt.store, s.bucket_footage
        store.ensure_bucket(bucket)
        first = datetime(2026, 11, 3).date()
        days = [first + timedelta(days=i) for i in range(a.days)]
        truth: dict[str, tuple[str, set, bool]] = {}
        moments = []
        with session_scope(rt.sessions) as db:
            add_organisation(db, "H0001", "县人民医院", region="east")
            db.flush()
            for w in range(a.wards):
                cam = f"WARD-{w + 1}"
                add_camera(db, camera_id=cam, org_id="H0001", name=f"病区{w + 1}", role="ward", url=f"rtsp://10.0.0.{w}/s")
                kinds = [KINDS[(w * 4 + i) % len(KINDS)] for i in range(len(BEDS))]
                rng.shuffle(kinds)
                plan = {}
                for i, b in enumerate(BEDS):
                    mdtrt = f"M{w + 1}-{b.bed_no}"
                    away = script(kinds[i], days, rng)
                    truth[mdtrt] = (kinds[i], away, flagged_by_rule(away, days, 3, 2))
                    plan[b.bed_no] = (PEOPLE[(w * 4 + i) % len(PEOPLE)], away, rng.random() < 0.5)
                    bed = beds_mod.set_bed(db, org_id="H0001", bed_no=b.bed_no, camera_id=cam, region=region(b.bed_no),
                                           actor="bench", dept_codg=f"W{w + 1}")
                    db.add(ClaimAdmission(natural_key=f"H0001|{mdtrt}", org_id="H0001", mdtrt_id=mdtrt,
                                          psn_no=f"P-{mdtrt}", begntime=local(days[0], "07:00"),
                                          adm_dept_codg=f"W{w + 1}", wardarea_bed=b.bed_no, content_sha256="0" * 64,
                                          imported_by="bench"))
                    db.add(ClaimDischarge(natural_key=f"H0001|{mdtrt}|d", org_id="H0001", mdtrt_id=mdtrt,
                                          psn_no=f"P-{mdtrt}", endtime=local(days[-1], "23:30"), content_sha256="0" * 64,
                                          imported_by="bench"))
                # the empty ward the day before, day and night: the operator's pictures
                for hhmm, light in (("15:00", "day"), ("23:00", "night")):
                    at = local(first - timedelta(days=1), hhmm)
                    make_segments(db, store, bucket, render_ward(Moment(light=light)), org_id="H0001", camera_id=cam,
                                  start=at - timedelta(seconds=4), total_s=8.0, segment_s=8.0, workdir=tmp)
                db.flush()
                pipe, side = rt.pipeline, s.correlate_detect_max_side
                for b in BEDS:
                    bed = beds_mod.find_bed(db, "H0001", b.bed_no, f"W{w + 1}")
                    for hhmm in ("15:00", "23:00"):
                        beds_mod.take_reference(db, store, bucket, bed, local(first - timedelta(days=1), hhmm), "bench",
                                                faces=lambda img: [box_of(f) for f in detect_wide(pipe, img, side)])
                for di, day in enumerate(days):
                    for slot in SLOTS:
                        occ = tuple((b.bed_no, plan[b.bed_no][0], "away" if slot == "22:00" and plan[b.bed_no][2] else "front")
                                    for b in BEDS if (di, slot) not in plan[b.bed_no][1])
                        out = tuple(b.bed_no for b in BEDS if (di, slot) in plan[b.bed_no][1])
                        nurse = tuple((b, "t1_4") for b in out if rng.random() < a.nurse)[:1]  # the decoy
                        m = Moment(beds=occ, light="night" if slot == "22:00" else "day", turned_back=out,
                                   standing=nurse)
                        at = local(day, slot)
                        make_segments(db, store, bucket, render_ward(m), org_id="H0001", camera_id=cam,
                                      start=at - timedelta(seconds=4), total_s=8.0, segment_s=8.0, workdir=tmp)
                        moments.append((cam, at))
        print(f"scenes ready: {a.wards} wards x {len(BEDS)} beds x {a.days} days, {len(moments)} ward moments",
              file=sys.stderr)

        # baseline: read and decode the sampled frames of every camera moment, nothing else
        checker = WardChecker(settings=s, store=store, pipeline=rt.pipeline, legal=rt.legal_holds)
        half = timedelta(seconds=3)
        t0, c0 = time.perf_counter(), time.process_time()
        with session_scope(rt.sessions) as db:
            for cam, at in moments:  # one read per camera and moment, as the checks do
                segs = segments_in(db, cam, at - half, at + half)
                footage_mod.sample_frames(store, bucket, cam, segs, at - half, at + half, SAMPLE_INTERVAL_S)
        base_s, base_cpu = time.perf_counter() - t0, time.process_time() - c0

        # the same scenes judged twice: the occupancy measure before the nurse decoy (the whole outline and its
        # margin, occupied_share 0.18), then the current one (the inner region, the rule's share); each from scratch
        from dataclasses import replace

        from correlate import bed_presence, rulebook
        from storage.models import EvidenceHold, FlagEvent

        current, inner = rulebook.current, bed_presence.INNER
        for label in ("before", "after"):
            if label == "before":
                bed_presence.INNER = None
                rulebook.current = lambda db, rid, st: replace(current(db, rid, st), thresholds={
                    **current(db, rid, st).thresholds, "occupied_share": 0.18})
            else:
                bed_presence.INNER, rulebook.current = inner, current
            with session_scope(rt.sessions) as db:
                for model in (BedCheck, EvidenceHold, FlagEvent, Flag):
                    db.query(model).delete()
            t0, c0 = time.perf_counter(), time.process_time()
            with session_scope(rt.sessions) as db:
                rep = checker.run(db, now=local(days[-1], "23:59") + timedelta(days=1))
            run_s, run_cpu = time.perf_counter() - t0, time.process_time() - c0
            report(label, rt, truth, days, a, rep, run_s, run_cpu, base_s, base_cpu)
    finally:
        rt.close()
        sw.down()


if __name__ == "__main__":
    main()
