"""Counter scenes end to end (issue 11): precision/recall per outcome and per rule, staff wrongly
flagged, settlements checked per second -- through RTSP, the recorder, settlement import and the worker.

    .venv/bin/python bench/counter.py [--scenes 24 --busy 1 --cameras 4 --fps 6 --zones on,off]
                                      [--pg --workers 2] [--synthetic-baseline] [--src HEAD|worktree]

Everything real and on loopback only:

* scenes: ``camsim.counter.random_scene`` (genuine / ghost / impersonation / turned_away cycling, fixed seeds,
  ``--busy`` long scenes with queues and quiet spells), 960x540 at ``--fps``, rendered once (cached
  under ``$DUALCHECK_SIM_CACHE``, default var/simulator of the main tree). The insured person cycles through
  ``obama`` (enrolled from obama2/obama3.jpg, other photos than the one filmed) and two crowd faces (enrolled
  from a portrait of the filmed photo); the impostor is always ``biden``, so once he has paid for three
  different insured people the one-face-many-cards rule has a real group to find. Every counter camera has
  its own cashier (in view all the time), enrolled as staff of the pharmacy. Every 5th scene shows real
  footage (OpenCV's vtest.avi) through its window.
* ``--cameras`` counters: each a GStreamer RTSP camera (``camsim.SimulatedCamera``) serving its scenes
  concatenated (byte-level H.264 concatenation; every scene starts with an IDR), plus one camera serving the
  hall footage (vtest.avi, real people walking, no usable face) with two settlements that must not be
  ghost visits.
* a real ``dualcheck record`` process records them into SeaweedFS + SQLite (``--pg``: a fresh PostgreSQL
  database and procrastinate jobs). Settlements are imported with ``dualcheck settlements import`` (JSONL)
  while the cameras play, each ``settled_at`` = the camera's wall-clock time of the scene's settlement second
  (the first loop occurrence whose whole window is recorded).
* when all windows are in the index, the recorder and cameras stop, and ``dualcheck correlate worker --once``
  (``--workers`` processes on PostgreSQL; one on SQLite, whose poller has no job distribution) checks every
  settlement, once per ``--zones`` mode: ``on`` sets the scenes' suggested zones (customer / staff / ignore)
  on the counter cameras, ``off`` removes them (the baseline: today's behaviour of a camera without zones).
  Between modes the results are deleted and the settlements set pending again.

Printed per mode (Markdown): confusion matrix, precision/recall per outcome, per rule (ghost_visit and
impersonation flags, one_face_many_cards per settlement), staff wrongly flagged (impersonation flags whose
payer or stranger faces are a staff member -- recognised by this bench against the staff templates, not by
the checker's own label -- and many-cards flags built on a staff face), the hall decoy, checks per second
(first check start to last check end, from the index) and worker CPU seconds per check, and every
settlement whose outcome differs from the truth with its scene kind and seed. ``--synthetic-baseline`` also
runs bench/correlate.py (the synthetic scenes of today's figure) in the same run, for its settlements/s.

``--src HEAD`` (default) runs against the committed code: ``git archive HEAD`` into a temp dir, this file
copied in, re-executed there with PYTHONPATH on it (so the recorder and worker CLIs import that code too).
``--src worktree`` runs the working tree as it is. Bounded by ``--max-minutes``; every process it starts
is stopped in ``finally``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ORG = "PHARM-1"
IMPOSTOR = "biden"
DISTINCT_BELOW = 0.30  # two people are told apart when their enrolment embeddings are below this (SFace thr 0.363)
KINDS = ("genuine", "ghost", "impersonation", "turned_away")
OUTCOMES = ("verified_present", "ghost_visit", "impersonation", "inconclusive", "footage_missing")
HALL_SETTLE = (28.0, 64.0)  # seconds into the hall footage (78 s)
HALL_INSURED = (0, 1)  # indexes into the insured people


def insured_id(label: str) -> str:
    return "P-" + label.upper().replace("_", "")


def now_s() -> float:
    return time.time()


# ----------------------------------------------------------------------------------------------
# --src HEAD: run the committed code


def reexec_on_commit(args, argv: list[str]) -> int:
    main_tree = REPO
    sha = subprocess.check_output(["git", "-C", str(main_tree), "rev-parse", "HEAD"], text=True).strip()
    dst = Path(tempfile.mkdtemp(prefix=f"dualcheck-counter-src-{sha[:10]}-"))
    try:
        arch = subprocess.Popen(["git", "-C", str(main_tree), "archive", "--format=tar", sha], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(dst)], stdin=arch.stdout, check=True)
        arch.wait()
        (dst / "bench").mkdir(exist_ok=True)
        shutil.copy2(Path(__file__).resolve(), dst / "bench" / "counter.py")
        env = dict(os.environ)
        env.update({"PYTHONPATH": str(dst), "DUALCHECK_BENCH_COMMIT": sha,
                    "DUALCHECK_BENCH_DIRTY": "1" if _bench_dirty(main_tree) else "0",
                    "DUALCHECK_SIM_CACHE": os.environ.get("DUALCHECK_SIM_CACHE", str(main_tree / "var" / "simulator")),
                    "DUALCHECK_SHARED": os.environ.get("DUALCHECK_SHARED", str(main_tree.parent / "shared")),
                    "DUALCHECK_BENCH_MODELS": str(main_tree / "var" / "models")})
        rest = [a for a in argv if not a.startswith("--src")]
        if "--src" in argv:  # "--src X" form
            i = argv.index("--src")
            rest = argv[:i] + argv[i + 2:]
        print(f"# running against commit {sha} (exported to {dst})", file=sys.stderr, flush=True)
        p = subprocess.Popen([sys.executable, str(dst / "bench" / "counter.py"), *rest, "--src", "worktree"],
                             env=env, cwd=str(dst))
        try:
            return p.wait()
        except KeyboardInterrupt:
            p.send_signal(signal.SIGINT)
            return p.wait()
    finally:
        shutil.rmtree(dst, ignore_errors=True)


def _bench_dirty(tree: Path) -> bool:
    out = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "bench/counter.py"], capture_output=True,
                         text=True).stdout
    return bool(out.strip())


# ----------------------------------------------------------------------------------------------
# scenes, cameras, truth


def _render(scene):
    from camsim.counter import render_counter

    return str(render_counter(scene).directory)


def pick_people(pipeline, n_insured: int, n_cashiers: int) -> dict:
    """Who plays whom, measured rather than assumed: the camera simulator's crowd includes faces the
    model cannot tell apart (bald_guys.jpg holds look-alikes: e.g. bald_00, bald_05, bald_07 and bald_20
    score 0.72-0.85 with each other). Every identity whose portrait passes the enrolment gate is embedded;
    largest source faces first, one is kept when it is below DISTINCT_BELOW of all kept ones (obama and
    biden first). Insured people: obama and the next largest; then the cashiers; the rest is the crowd
    (other customers and passers-by). Returns labels and the pairs found too similar."""
    import numpy as np

    from camsim import identities as ids
    from camsim.counter import crowd
    from camsim.footage import default_testdata
    from vision.image import decode_image
    from vision.matching import EnrollmentRefused, select_enrollment_face

    td = default_testdata()

    def emb(img):
        return np.asarray(select_enrollment_face(pipeline.analyze(img)).embedding, np.float32)

    E, refused = {}, []
    E["obama"] = emb(decode_image((td / "faces" / "obama2.jpg").read_bytes(), max_bytes=20 << 20, max_pixels=50_000_000))
    E[IMPOSTOR] = emb(ids.portrait(ids.get(IMPOSTOR)))
    for lab in sorted(crowd(), key=lambda k: -ids.get(k).box[2]):
        try:
            E[lab] = emb(ids.portrait(ids.get(lab)))
        except EnrollmentRefused:
            refused.append(lab)
    kept, alike = [], []
    for lab, e in E.items():
        sims = {k: float(E[k] @ e) for k in kept}
        close = [k for k, v in sims.items() if v >= DISTINCT_BELOW]
        if close:
            alike.append((lab, close[0], round(sims[close[0]], 2)))
            continue
        kept.append(lab)
    rest = [k for k in kept if k not in ("obama", IMPOSTOR)]
    need = n_insured - 1 + n_cashiers
    if len(rest) < need + 4:
        raise SystemExit(f"only {len(rest)} distinct crowd faces; need {need + 4}")
    return {"insured": ["obama"] + rest[:n_insured - 1], "cashiers": rest[n_insured - 1:need],
            "crowd": rest[need:], "alike": alike, "refused": refused}


def recast(sc, people: dict, rng) -> None:
    """Replace the scene's other customers and passers-by by faces of the distinct crowd (random_scene
    draws them from all identities, look-alikes of the insured included). Payers stay."""
    keep = {sc.cashier, IMPOSTOR, *people["insured"]}
    used = {v.identity for v in sc.visits if v.settle_for != "" and v.identity in keep}
    pool = [c for c in people["crowd"] if c not in used]
    rng.shuffle(pool)
    mapping: dict[str, str] = {}

    def sub(lab: str) -> str:
        if lab not in mapping:
            mapping[lab] = pool[len(mapping) % len(pool)]
        return mapping[lab]

    for v in sc.visits:
        if v.settle_for != "" and v.identity in keep:  # the payer of a planned settlement
            continue
        v.identity = sub(v.identity)  # others; in busy scenes also customers paying for themselves
    for q in sc.passers:
        q.identity = sub(q.identity)


def plan_scenes(a, people: dict) -> list[dict]:
    """Cameras with their scenes: busy scenes first, then the others to the least loaded camera."""
    import random

    from camsim.counter import random_scene

    before, after = a.before, a.after
    insured = people["insured"]
    cams = [{"id": f"CAM-{i + 1}", "counter": f"counter-{i + 1}", "cashier": people["cashiers"][i],
             "scenes": [], "dur": 0.0} for i in range(a.cameras)]
    specs = [("busy", a.seed + 1000 + j, "obama", False) for j in range(a.busy)]
    for i in range(a.scenes):
        specs.append((KINDS[i % len(KINDS)], a.seed + i, insured[(i // len(KINDS)) % len(insured)], i % 5 == 4))
    skipped = []
    for kind, seed, ins, hall in specs:
        cam = min(cams, key=lambda c: c["dur"])
        for attempt in range(30):  # a seed whose settlement does not fit its window is replaced (see _fits)
            sc = random_scene(kind, seed + 1000 * attempt if attempt else seed, window_s=(before, after), insured=ins,
                              impostor=IMPOSTOR, cashier=cam["cashier"], fps=a.fps, hall_window=hall)
            if _fits(sc):
                break
            skipped.append(f"{kind}/{sc.seed}")
        else:
            raise SystemExit(f"no {kind} scene with a settlement that fits its window")
        recast(sc, people, random.Random(f"recast/{kind}/{sc.seed}"))
        sc.background_seed = a.seed + 7919 * int(cam["id"].split("-")[1])  # one physical counter per camera
        cam["scenes"].append(sc)
        cam["dur"] += sc.duration_s
    if skipped:
        print(f"# seeds without a settlement whose window fits the scene (replaced by seed+1000k): {skipped}",
              file=sys.stderr)
    return [c for c in cams if c["scenes"]]


def _fits(sc) -> bool:
    """Has the scene a settlement whose checking window lies inside it? camsim.counter.random_scene
    aims the payer's settlement at ``before + 4`` s, but when nobody is ahead of the payer the
    payer reaches the counter on arrival and pays earlier; the scene's truth then leaves the
    settlement out. Such seeds are replaced."""
    from camsim.counter import plan_queue

    before, after = sc.window_s
    if any(before <= g[0] <= sc.duration_s - after for g in sc.ghost_settlements):
        return True
    return any(p.visit.settle_for != "" and before <= p.pay_at <= sc.duration_s - after for p in plan_queue(sc.visits))


def concat_footage(parts, root: Path):
    """One camera's scenes back to back, as one simulator footage (cached)."""
    from camsim.footage import Footage
    from camsim.h264 import cached_render

    fps = {p.fps for p in parts}
    size = {(p.width, p.height) for p in parts}
    if len(fps) != 1 or len(size) != 1:
        raise SystemExit(f"scenes of one camera differ in fps/size: {fps} {size}")
    key = "counterbench-" + hashlib.sha256("|".join(p.directory.name for p in parts).encode()).hexdigest()[:20]

    def make(tmp: Path) -> dict:
        index, events, meta = [], [], []
        off_b, off_s = 0, 0.0
        with open(tmp / "footage.h264", "wb") as out:
            for p in parts:
                data = p.h264_path.read_bytes()
                for o, s, k in p.frame_index():
                    index.append([off_b + o, s, k])
                out.write(data)
                for e in p.truth.get("events", []):
                    events.append({**e, "start_s": e["start_s"] + off_s, "end_s": e["end_s"] + off_s})
                meta.append({"dir": p.directory.name, "offset_s": off_s, "duration_s": p.duration_s})
                off_b += len(data)
                off_s += p.duration_s
        (tmp / "frames.json").write_text(json.dumps({"frames": index}, separators=(",", ":")))
        shutil.copy2(parts[0].directory / "background.png", tmp / "background.png")
        t0 = parts[0].truth
        return {"version": 1, "file": "footage.h264", "index": "frames.json", "codec": "h264",
                "profile": t0.get("profile", "main"), "pix_fmt": "yuv420p", "width": t0["width"],
                "height": t0["height"], "fps": t0["fps"], "frames": len(index), "duration_s": len(index) / t0["fps"],
                "keyint_s": t0["keyint_s"], "keyint_frames": t0.get("keyint_frames"), "bitrate": t0["bitrate"],
                "bytes": off_b, "events": events, "parts": meta}

    return Footage.load(cached_render(root, key, make))


# ----------------------------------------------------------------------------------------------
# processes


class Procs:
    """Subprocesses this bench started (stopped in reverse order, by their own pid only)."""

    def __init__(self):
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
        with open(log, "ab") as f:
            p = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        self.items.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, timeout: float = 30.0) -> None:
        from camsim.camera import stop_process  # deferred like every project import here (--src re-exec)

        stop_process(p, timeout)

    def stop_all(self) -> None:
        for _, p in reversed(self.items):
            self.stop(p)
        self.items.clear()


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler(threading.Thread):
    """(wall time, summed CPU seconds) of some processes every 0.2 s."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids, self.samples, self.stop_evt = pids, [], threading.Event()
        self.last: dict[int, float] = {}

    def run(self) -> None:
        while not self.stop_evt.is_set():
            for pid in self.pids:
                c = cpu_seconds(pid)
                if c is not None:
                    self.last[pid] = c
            self.samples.append((time.time(), sum(self.last.values())))
            self.stop_evt.wait(0.2)

    def at(self, t: float) -> float:
        best = None
        for ts, c in self.samples:
            if ts <= t:
                best = c
        return best if best is not None else (self.samples[0][1] if self.samples else 0.0)


# ----------------------------------------------------------------------------------------------
# the run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=24, help="short scenes (kinds cycle genuine/ghost/impersonation/turned_away)")
    ap.add_argument("--busy", type=int, default=1, help="long busy scenes (queues, quiet spells, several settlements)")
    ap.add_argument("--cameras", type=int, default=4, help="counter cameras (plus one hall camera)")
    ap.add_argument("--no-hall", action="store_true", help="leave out the real-footage hall camera")
    ap.add_argument("--fps", type=int, default=6)
    ap.add_argument("--before", type=float, default=24.0, help="check window before the settlement (s)")
    ap.add_argument("--after", type=float, default=8.0, help="check window after the settlement (s)")
    ap.add_argument("--interval", type=float, default=2.0, help="correlate_sample_interval_s")
    ap.add_argument("--zones", default="ref,on,off", help="zone modes to check, in order: ref (zones and the "
                    "counter-empty reference picture), on (zones only), off (neither)")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL (fresh database) and procrastinate workers")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (PostgreSQL; SQLite: 1)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--push-every", type=float, default=20.0, help="seconds between settlement imports while recording")
    ap.add_argument("--render-procs", type=int, default=2)
    ap.add_argument("--synthetic-baseline", action="store_true", help="also run bench/correlate.py (small) for its rate")
    ap.add_argument("--max-minutes", type=float, default=40.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    ap.add_argument("--src", default="HEAD", choices=("HEAD", "worktree"))
    a = ap.parse_args()
    if a.src == "HEAD":
        raise SystemExit(reexec_on_commit(a, sys.argv[1:]))
    workers = a.workers or (2 if a.pg else 1)
    if not a.pg and workers != 1:
        raise SystemExit("SQLite: one worker process (its poller does not share work); use --pg for more")
    modes = [m.strip() for m in a.zones.split(",") if m.strip()]
    if not modes or any(m not in ("ref", "on", "off") for m in modes):
        raise SystemExit("--zones: ref, on, off, comma-separated")
    deadline = time.monotonic() + a.max_minutes * 60
    commit = os.environ.get("DUALCHECK_BENCH_COMMIT") or subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() + " (worktree)"
    run_at = datetime.now(timezone.utc)

    def left() -> float:
        return deadline - time.monotonic()

    def log(*x):
        print("#", *x, file=sys.stderr, flush=True)

    from sqlalchemy import delete, func, select, update

    from api.keys import add_organisation
    from camsim import SimulatedCamera
    from camsim.realfootage import hall_footage
    from dualcheck.runtime import Runtime
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.db import migrate, session_scope
    from storage.models import (
        EvidenceHold,
        FaceEvidence,
        Flag,
        FlagEvent,
        Segment,
        Settlement,
        SettlementCheck,
    )
    from storage.seaweed import LocalSeaweed
    from tests.conftest import _port_base

    # 1. scenes (rendered once, cached)
    t = time.perf_counter()
    people = pick_people(_pipeline_only(), len(HALL_INSURED) + 1, a.cameras)
    log(f"people: insured {people['insured']}, cashiers {people['cashiers']}, crowd {people['crowd']}; "
        f"left out as look-alikes {[f'{x}~{y} {v}' for x, y, v in people['alike']]}, not enrollable {people['refused']}")
    cams = plan_scenes(a, people)
    scenes = [sc for c in cams for sc in c["scenes"]]
    from camsim.counter import CounterFootage

    with mp.get_context("spawn").Pool(max(1, a.render_procs)) as pool:
        dirs = pool.map(_render, scenes, chunksize=1)
    fps_by_dir = iter(dirs)
    for c in cams:
        c["footage_parts"] = [CounterFootage.load(next(fps_by_dir)) for _ in c["scenes"]]
    cache_root = Path(os.environ.get("DUALCHECK_SIM_CACHE") or REPO / "var" / "simulator")
    for c in cams:
        c["footage"] = concat_footage(c["footage_parts"], cache_root)
    hall = None
    if not a.no_hall:
        hall = hall_footage(width=960, height=540, fps=a.fps)
    log(f"scenes rendered/loaded in {time.perf_counter() - t:.0f} s: {len(scenes)} scenes on {len(cams)} counters"
        + (f" + hall ({hall.duration_s:.0f} s)" if hall else ""))

    # truth: one row per settlement, at a footage second of its camera's loop
    truth: list[dict] = []
    for c in cams:
        off = 0.0
        for sc, fp in zip(c["scenes"], c["footage_parts"]):
            for k, st in enumerate(fp.settlements):
                truth.append({"camera": c["id"], "counter": c["counter"], "kind": sc.kind, "seed": sc.seed,
                              "hall_window": sc.hall_window, "insured": st["insured"], "payer": st["payer"] or fp.payer_at(st["at_s"]),
                              "expected": st["expected"], "loop_s": off + st["at_s"], "scene_s": st["at_s"],
                              "cashier": c["cashier"]})
            off += fp.duration_s
    if hall is not None:
        for at, ins in zip(HALL_SETTLE, [people["insured"][i] for i in HALL_INSURED]):
            if at - a.before >= 0 and at + a.after <= hall.duration_s:
                truth.append({"camera": "CAM-HALL", "counter": "hall-1", "kind": "hall(vtest.avi)", "seed": "-",
                              "hall_window": False, "insured": ins, "payer": None, "expected": "inconclusive",
                              "loop_s": at, "scene_s": at, "cashier": None, "decoy": True})
    for i, r in enumerate(truth):
        r["id"] = f"S{i:03d}-{r['camera']}-{r['kind'].split('(')[0]}-{r['seed']}"
    log(f"{len(truth)} settlements planned: " + ", ".join(
        f"{o} {sum(1 for r in truth if r['expected'] == o)}" for o in OUTCOMES))

    tmp = Path(tempfile.mkdtemp(prefix="dualcheck-bench-counter-"))
    procs = Procs()
    cameras: list = []
    sw = None
    pg_url = None
    rt = None
    try:
        base = _port_base()
        sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                          filer_port=base + 3, access_key="bench" + secrets.token_hex(4),
                          secret_key=secrets.token_urlsafe(24))
        sw.up()
        if a.pg:
            from tests.conftest import _create_pg_database

            pg_url = _create_pg_database()
        db_url = pg_url or f"sqlite:///{tmp / 'bench.db'}"
        models = Path(os.environ.get("DUALCHECK_BENCH_MODELS") or REPO / "var" / "models")
        window = {"default": [a.before, a.after]}
        env = dict(os.environ)
        env.update({
            "DUALCHECK_DATA_DIR": str(tmp / "data"), "DUALCHECK_DATABASE_URL": db_url,
            "DUALCHECK_MODELS_DIR": str(models), "DUALCHECK_S3_ENDPOINT": sw.endpoint,
            "DUALCHECK_S3_ACCESS_KEY": sw.access_key, "DUALCHECK_S3_SECRET_KEY": sw.secret_key,
            "DUALCHECK_BUCKET_FOOTAGE": "bench-footage", "DUALCHECK_BUCKET_BIOMETRICS": "bench-bio",
            "DUALCHECK_SPOOL_DIR": str(tmp / "spool"), "DUALCHECK_SEGMENT_SECONDS": "10",
            "DUALCHECK_RECORD_STATUS_INTERVAL_S": "1", "DUALCHECK_RECONNECT_INITIAL_S": "0.5",
            "DUALCHECK_RECONNECT_MAX_S": "2", "DUALCHECK_RTSP_TIMEOUT_S": "4", "DUALCHECK_RECORD_POLL_S": "2",
            "DUALCHECK_CORRELATE_WINDOW_S": json.dumps(window),
            "DUALCHECK_CORRELATE_SAMPLE_INTERVAL_S": str(a.interval),
            "DUALCHECK_CORRELATE_JOB_POLL_S": "0.5", "DUALCHECK_API_HOST": "127.0.0.1",
        })
        s = Settings(data_dir=tmp / "data", database_url=db_url, s3_endpoint=sw.endpoint, s3_access_key=sw.access_key,
                     s3_secret_key=sw.secret_key, bucket_footage="bench-footage", bucket_biometrics="bench-bio",
                     models_dir=models, correlate_window_s=window, correlate_sample_interval_s=a.interval)
        migrate(s.effective_database_url)
        rt = Runtime(s)
        rt.store.ensure_bucket(s.bucket_footage)
        rt.store.ensure_bucket(s.bucket_biometrics)
        thr = float(rt.pipeline.threshold)

        # 2. organisation, people, staff
        with session_scope(rt.sessions) as db:
            add_organisation(db, ORG, "Counter bench pharmacy", region="north")
        enrolled, refused = enrol_insured(rt, sorted({r["insured"] for r in truth}))
        if refused:
            out = [r for r in truth if r["insured"] in refused]
            truth[:] = [r for r in truth if r["insured"] not in refused]
            log(f"left out {len(out)} settlement(s) of people whose photo cannot be enrolled "
                f"({', '.join(f'{k}: {v}' for k, v in refused.items())}): {[r['id'] for r in out]}")
        staff = enrol_staff(rt, [c["cashier"] for c in cams])
        log(f"enrolled insured {enrolled}; staff {staff['how']}: {sorted(staff['ids'])}")

        # 3. cameras (RTSP) and the recorder
        for c in cams:
            cam = SimulatedCamera(c["footage"], log_path=tmp / f"{c['id']}.log").start()
            c["cam"] = cam
            cameras.append(cam)
        if hall is not None:
            cam = SimulatedCamera(hall, log_path=tmp / "CAM-HALL.log").start()
            cams_all = cams + [{"id": "CAM-HALL", "counter": "hall-1", "cam": cam, "footage": hall, "zones": None}]
            cameras.append(cam)
        else:
            cams_all = list(cams)
        with session_scope(rt.sessions) as db:
            for c in cams_all:
                add_camera(db, camera_id=c["id"], org_id=ORG, name=c["id"].lower(), role="pharmacy_counter",
                           url=c["cam"].url, covers=[c["counter"]])
        dualcheck = str(Path(sys.executable).with_name("dualcheck"))
        rec = procs.start("recorder", [dualcheck, "record", "--id", "rec-bench"], env, tmp / "recorder.log")
        t_ready = wait_until(lambda: all_online(rt, [c["id"] for c in cams_all]), 60, "cameras online", rec)
        t_ready += 2.0

        # 4. settlement times (first loop occurrence whose whole window is recorded) and import
        for r in truth:
            c = next(c for c in cams_all if c["id"] == r["camera"])
            cam = c["cam"]
            loop = cam.loop_duration_s
            base0 = t_ready - cam.footage_time(t_ready)
            w = base0 + r["loop_s"]
            while w - a.before < t_ready:
                w += loop
            r["wall"] = w
            r["settled_at"] = datetime.fromtimestamp(w, timezone.utc)
        # the reference picture of each counter: a recorded moment with nobody on the customer side (by the
        # scenes' truth), as an operator would pick a quiet moment of the day
        for c in cams:
            cam = c["cam"]
            base0 = t_ready - cam.footage_time(t_ready)
            c["ref_wall"] = None
            off = 0.0
            for fp in c["footage_parts"]:
                quiet = [t for t in range(3, int(fp.duration_s) - 3)
                         if not any(p["role"] == "customer" for dt in (-2, 0, 2) for p in fp.people_at(t + dt))]
                for t in quiet:
                    w = base0 + off + t
                    while w < t_ready + 3:
                        w += cam.loop_duration_s
                    if w <= max(r["wall"] for r in truth if r["camera"] == c["id"]):
                        c["ref_wall"] = w
                        break
                if c["ref_wall"] is not None:
                    break
                off += fp.duration_s
        rows = [{"settlement_id": r["id"], "insured_id": insured_id(r["insured"]), "org_id": ORG, "counter": r["counter"],
                 "settled_at": r["settled_at"].isoformat(), "amount": "28.50", "type": "pharmacy"} for r in truth]
        # the data exchange pushes settlements as they happen (a settlement in the future is refused):
        # every --push-every seconds, the ones settled by then, with `dualcheck settlements import`
        pending = sorted(rows, key=lambda x: x["settled_at"])
        tally = {"imported": 0, "refused": 0, "warnings": 0, "batches": 0}

        def push(final: bool = False) -> None:
            due = [x for x in pending if datetime.fromisoformat(x["settled_at"]).timestamp() <= now_s() - 0.5]
            if not due:
                return
            jl = tmp / f"settlements-{tally['batches']:02d}.jsonl"
            jl.write_text("".join(json.dumps(x) + "\n" for x in due))
            imp = subprocess.run([dualcheck, "settlements", "import", str(jl), "--json"], env=env, capture_output=True,
                                 text=True, timeout=120)
            try:
                rep = json.loads(imp.stdout)
            except ValueError:
                raise SystemExit(f"import failed ({imp.returncode}): {imp.stdout[-800:]} {imp.stderr[-800:]}")
            if rep.get("refused"):
                raise SystemExit(f"import refused rows: {rep.get('errors')}")
            for x in due:
                pending.remove(x)
            tally["imported"] += rep.get("imported", 0)
            tally["warnings"] += len(rep.get("warnings") or [])
            tally["batches"] += 1

        # 5. wait until every window is in the index (importing meanwhile), then stop recording
        ends = {}
        for r in truth:
            ends[r["camera"]] = max(ends.get(r["camera"], 0.0), r["wall"] + a.after)
        last = max(ends.values())
        log(f"recording until {datetime.fromtimestamp(last, timezone.utc):%H:%M:%S} "
            f"({last - now_s():.0f} s from now) + upload")

        def indexed():
            with session_scope(rt.sessions) as db:
                got = dict(db.execute(select(Segment.camera_id, func.max(Segment.end_at)).group_by(Segment.camera_id)).all())
            return all(cid in got and _ts(got[cid]) >= e - 0.3 for cid, e in ends.items())

        next_push = [now_s()]

        def recorded_and_pushed():
            if now_s() >= next_push[0]:
                push()
                next_push[0] = now_s() + a.push_every
            return not pending and indexed()

        wait_until(recorded_and_pushed, min(left() - 120, last - now_s() + 60), "segments covering every window", rec)
        log(f"import: {tally['imported']} imported in {tally['batches']} batches (dualcheck settlements import), "
            f"0 refused, {tally['warnings']} warnings")
        with session_scope(rt.sessions) as db:
            nseg = db.scalar(select(func.count()).select_from(Segment))
        procs.stop(rec)
        for cam in cameras:
            cam.close()
        cameras.clear()
        log(f"recording done: {nseg} segments")

        # 6. check, once per zones mode
        results = []
        for i, mode in enumerate(modes):
            if left() < 60:
                log(f"out of time before zones {mode}")
                break
            with session_scope(rt.sessions) as db:
                for c in cams:
                    set_camera_zones(db, c["id"], scene_zones(c["footage_parts"][0]) if mode in ("ref", "on") else [])
            for c in cams:  # through the CLI, as an operator does (it refuses a frame with a customer's face)
                args = ["--clear"]
                if mode == "ref" and c.get("ref_wall"):
                    args = ["--at", datetime.fromtimestamp(c["ref_wall"], timezone.utc).isoformat()]
                ref = subprocess.run([dualcheck, "cameras", "reference", c["id"], *args], env=env, capture_output=True,
                                     text=True, timeout=300)
                log(f"zones {mode}: reference picture of {c['id']}: "
                    f"{(ref.stdout or ref.stderr).strip().splitlines()[-1] if (ref.stdout or ref.stderr).strip() else ref.returncode}")
            with session_scope(rt.sessions) as db:
                if i > 0:  # reset: every settlement pending again
                    for m in (FaceEvidence, SettlementCheck, FlagEvent, EvidenceHold, Flag):
                        db.execute(delete(m))
                    db.execute(update(Settlement).values(status="pending", outcome=None, attempts=0, checked_at=None,
                                                         next_check_at=None, last_error=None))
                    _clear_suggestions(db)
            res = run_workers(procs, dualcheck, env, tmp, workers, mode, min(left() - 30, 20 * 60), log)
            res.update(collect(rt, truth, staff, thr))
            res["mode"] = mode
            results.append(res)
            report(res, truth, a, workers)
        synth = None
        if a.synthetic_baseline and left() > 240:
            synth = synthetic_baseline(workers, left() - 60, log)
        summary(results, synth, truth, a, workers, commit, run_at, staff)
    finally:
        procs.stop_all()
        for cam in cameras:
            try:
                cam.close()
            except Exception:
                pass
        if rt is not None:
            rt.close()
        if sw is not None:
            sw.down()
        if pg_url:
            from tests.conftest import _drop_pg_database

            _drop_pg_database(pg_url)
        if a.keep:
            print(f"# kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _pipeline_only():
    from kernel.settings import Settings
    from vision.pipeline import FacePipeline

    models = Path(os.environ.get("DUALCHECK_BENCH_MODELS") or REPO / "var" / "models")
    s = Settings(data_dir=Path(tempfile.gettempdir()) / "dualcheck-bench-counter-models", models_dir=models,
                 database_url="sqlite://")
    return FacePipeline.from_settings(s)


def _ts(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def wait_until(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> float:
    end = time.monotonic() + max(1.0, timeout)
    while time.monotonic() < end:
        if pred():
            return time.time()
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited ({proc.returncode})")
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def all_online(rt, ids: list[str]) -> bool:
    from storage.db import session_scope
    from storage.models import CameraStatus

    with session_scope(rt.sessions) as db:
        st = {c.camera_id: c.state for c in db.query(CameraStatus).all()}
    return all(st.get(i) == "online" for i in ids)


def scene_zones(fp) -> list[dict]:
    return [{"kind": k, "points": pts, "label": f"{k} (scene suggestion)"} for k, pts in fp.zones.items()]


def set_camera_zones(db, camera_id: str, zones: list[dict]) -> None:
    try:
        from ingest.cameras import set_zones
    except ImportError:  # older code: the column alone
        from storage.models import Camera

        db.get(Camera, camera_id).zones = zones
        return
    set_zones(db, camera_id, zones)


def _clear_suggestions(db) -> None:
    from sqlalchemy import delete

    from storage.models import StaffSuggestion

    db.execute(delete(StaffSuggestion))


def _jpeg(img) -> bytes:
    import cv2

    ok, b = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return b.tobytes()


def enrol_insured(rt, labels: list[str]) -> dict:
    """Through facepay's Enroller (photos stored, quality gate): obama from other photos than the
    filmed one, the crowd faces from a portrait crop of their photo."""
    from camsim import identities as ids
    from camsim.footage import default_testdata

    out, refused = {}, {}
    td = default_testdata()
    for lab in labels:
        if lab == "obama":
            photos = [(p, (td / "faces" / p).read_bytes()) for p in ("obama2.jpg", "obama3.jpg")]
        else:
            photos = [(f"{lab}.jpg", _jpeg(ids.portrait(ids.get(lab))))]
        res = rt.enroller.enroll(insured_id(lab), photos, actor="bench")
        ok = [r for r in res if r.status in ("enrolled", "duplicate")]
        if not ok:
            refused[lab] = ",".join(sorted({r.code or r.status for r in res}))
            continue
        out[insured_id(lab)] = len(ok)
    return out, refused


def enrol_staff(rt, cashiers: list[str]) -> dict:
    """The cashiers as staff of the pharmacy, through facepay.staff (photos stored, quality gate).
    Returns staff ids and their embeddings."""
    import numpy as np
    from sqlalchemy import select

    from camsim import identities as ids
    from facepay.staff import StaffRoster
    from storage.db import session_scope
    from storage.models import StaffMember, StaffTemplate

    how = "facepay.staff"
    roster = StaffRoster(settings=rt.settings, sessions=rt.sessions, store=rt.store, pipeline=rt.pipeline)
    for lab in cashiers:
        sid = f"ST-{lab.upper().replace('_', '')}"
        res = roster.enroll(ORG, sid, [(f"{sid}.jpg", _jpeg(ids.portrait(ids.get(lab))))], name=lab, role="cashier",
                            actor="bench", source="cli")
        if not res.ok:
            raise RuntimeError(f"staff photo of {lab} refused: {res.to_dict()}")
    with session_scope(rt.sessions) as db:
        rows = db.execute(select(StaffMember.id, StaffMember.staff_id, StaffTemplate.embedding, StaffTemplate.dim)
                          .join(StaffTemplate, StaffTemplate.member_id == StaffMember.id)
                          .where(StaffMember.org_id == ORG, StaffTemplate.model == rt.pipeline.model_id)).all()
    embs = np.stack([np.frombuffer(e, np.float32, count=d) for _, _, e, d in rows]) if rows else np.zeros((0, 1), np.float32)
    return {"how": how, "ids": {sid for _, sid, _, _ in rows}, "member_ids": [mid for mid, _, _, _ in rows],
            "embs": embs}


def run_workers(procs: Procs, dualcheck: str, env: dict, tmp: Path, n: int, mode: str, timeout: float, log) -> dict:
    ps = [procs.start(f"worker-{mode}-{i}", [dualcheck, "correlate", "worker", "--once"], env,
                      tmp / f"worker-{mode}-{i}.log") for i in range(n)]
    sampler = CpuSampler([p.pid for p in ps])
    sampler.start()
    t0 = time.time()
    end = time.monotonic() + max(30.0, timeout)
    while time.monotonic() < end and any(p.poll() is None for p in ps):
        time.sleep(0.5)
    timed_out = any(p.poll() is None for p in ps)
    for p in ps:
        procs.stop(p)
    sampler.stop_evt.set()
    sampler.join(2)
    rcs = [p.returncode for p in ps]
    log(f"zones {mode}: worker(s) done in {time.time() - t0:.0f} s, exit {rcs}" + (" (TIMED OUT)" if timed_out else ""))
    if any(rc not in (0, -15) for rc in rcs):
        tail = (tmp / f"worker-{mode}-0.log").read_text(errors="replace")[-1500:]
        log(f"worker log tail:\n{tail}")
    return {"sampler": sampler, "timed_out": timed_out, "worker_rcs": rcs, "process_wall_s": time.time() - t0}


def collect(rt, truth: list[dict], staff: dict, thr: float) -> dict:
    import numpy as np
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import FaceEvidence, Flag, Settlement, SettlementCheck

    with session_scope(rt.sessions) as db:
        sts = {x.id: (x.status, x.outcome, x.checked_at, x.last_error) for x in db.scalars(select(Settlement))}
        checks = {c.settlement_id: {"reason": c.reason, "ms": c.duration_ms, "summary": c.summary or {},
                                    "id": c.id} for c in db.scalars(select(SettlementCheck))}
        flags = [{"id": f.id, "type": f.type, "rule": f.rule, "level": f.level, "sids": list(f.settlement_ids or []),
                  "sid": f.settlement_id, "evidence": f.evidence or {}, "reason": f.reason}
                 for f in db.scalars(select(Flag))]
        faces = {}
        for fe in db.scalars(select(FaceEvidence)):
            emb = np.frombuffer(fe.embedding, np.float32, count=fe.dim) if fe.embedding and fe.dim else None
            faces[fe.id] = {"sid": fe.settlement_id, "check": fe.check_id, "emb": emb,
                            "staff_label": fe.staff_member_id, "is_payer": fe.is_payer,
                            "zone": fe.zone, "is_insured": fe.is_insured,
                            "usable": bool((fe.quality or {}).get("usable")), "score": fe.insured_score,
                            "x": (fe.box or [0])[0], "w": (fe.box or [0, 0, 0])[2]}
    embs = staff["embs"]
    for f in faces.values():  # who is staff, as this bench sees it (against the staff templates)
        f["staff_sim"] = (float(np.max(embs @ f["emb"])) if f["emb"] is not None and embs.size and embs.shape[1] == f["emb"].shape[0]
                          else None)
        f["is_staff"] = f["staff_sim"] is not None and f["staff_sim"] >= thr
    return {"states": sts, "checks": checks, "flags": flags, "faces": faces}


def metrics_of(res: dict, truth: list[dict]) -> dict:
    sts, checks, flags, faces = res["states"], res["checks"], res["flags"], res["faces"]
    got = {r["id"]: (sts.get(r["id"], (None, None))[1] or f"not checked ({sts.get(r['id'], ('?',))[0]})") for r in truth}
    exp = {r["id"]: r["expected"] for r in truth}
    m = {"got": got, "exp": exp, "n": len(truth)}
    pr = {}
    for o in OUTCOMES:
        t = {k for k, v in exp.items() if v == o}
        p = {k for k, v in got.items() if v == o}
        c = len(t & p)
        pr[o] = (len(t), len(p), c, c / len(p) if p else None, c / len(t) if t else None)
    m["outcomes"] = pr
    # per rule, from the flags
    rules = {}
    for rule in ("ghost_visit", "impersonation"):
        t = {k for k, v in exp.items() if v == rule}
        p = {sid for f in flags if f["rule"] == rule for sid in (f["sids"] or [f["sid"]])}
        c = len(t & p)
        rules[rule] = (len(t), len(p), c, c / len(p) if p else None, c / len(t) if t else None)
    # one face, many cards: the impostor's settlements (seen: expected impersonation), when he paid for
    # at least three different insured people
    by = {r["id"]: r for r in truth}
    imp = {r["id"] for r in truth if r["payer"] == IMPOSTOR and r["expected"] == "impersonation"}
    if len({by[k]["insured"] for k in imp}) < 3:
        imp = set()
    many = [f for f in flags if f["rule"] == "one_face_many_cards"]
    p = {sid for f in many for sid in f["sids"]}
    c = len(imp & p)
    rules["one_face_many_cards"] = (len(imp), len(p), c, c / len(p) if p else None, c / len(imp) if imp else None)
    m["rules"] = rules
    m["many_flags"] = len(many)
    m["many_extra"] = p - imp
    # staff wrongly flagged
    by_check = {}
    for fid, f in faces.items():
        by_check.setdefault(f["sid"], []).append((fid, f))
    staff_imp, staff_many, staff_ghost_named, ghost_flags = [], [], 0, 0
    for f in flags:
        ev_ids = [x.get("evidence_id") for x in f["evidence"].get("faces", []) if isinstance(x, dict)]
        evf = [faces[i] for i in ev_ids if i in faces]
        if f["rule"] == "impersonation":
            payer = [x for x in evf if x["is_payer"]]
            if payer:  # the checker names a payer: is it staff?
                bad = [x for x in payer if x["is_staff"]]
            else:  # no payer named: every usable stranger face is the accusation
                bad = [x for x in evf if x["is_staff"] and x["usable"] and not x["is_insured"] and not x["staff_label"]]
            if bad:
                staff_imp.append(f["sid"])
        elif f["rule"] == "one_face_many_cards":
            first = evf[:1]  # the face of the settlement that raised or extended the group
            if any(x["is_staff"] for x in first) or sum(x["is_staff"] for x in evf) > len(evf) / 2:
                staff_many.append(f["id"])
        elif f["rule"] == "ghost_visit":
            ghost_flags += 1
            named = any(x["staff_label"] for x in evf) or "staff" in json.dumps(f["evidence"]).lower()
            staff_ghost_named += bool(named)
    m["staff_imp"] = staff_imp
    m["staff_many"] = staff_many
    m["ghost_named"] = (staff_ghost_named, ghost_flags)
    m["staff_labelled_faces"] = sum(1 for f in faces.values() if f["staff_label"])
    m["staff_faces"] = sum(1 for f in faces.values() if f["is_staff"])
    settle_staff_bad = set(staff_imp) | {sid for f in flags if f["id"] in staff_many for sid in f["sids"]}
    m["staff_bad_settlements"] = settle_staff_bad
    # throughput, from the index: first check start to last check end
    done = [(k, v) for k, v in sts.items() if v[0] == "done" and v[2] is not None and k in checks]
    if done:
        starts = [_ts(v[2]) - checks[k]["ms"] / 1e3 for k, v in done]
        ends = [_ts(v[2]) for k, v in done]
        a, b = min(starts), max(ends)
        m["wall"] = b - a
        m["rate"] = len(done) / (b - a) if b > a else None
        sampler = res["sampler"]
        m["cpu_per"] = (sampler.at(b + 0.2) - sampler.at(a - 0.2)) / len(done)
        per = sorted(checks[k]["ms"] / 1e3 for k, _ in done)
        m["median"], m["p95"] = per[len(per) // 2], per[int(0.95 * (len(per) - 1))]
    m["done"] = len(done)
    return m


def _faces(res: dict, sid: str) -> str:
    """The check's evidence faces: zone (c/s/-), P = the payer, S = labelled staff, score vs the insured, x, width."""
    out = []
    for f in res["faces"].values():
        if f["sid"] != sid:
            continue
        z = {"customer": "c", "staff": "s"}.get(f["zone"] or "", "-")
        tag = ("P" if f["is_payer"] else "") + ("S" if f["staff_label"] else "") + ("" if f["usable"] else "u")
        sc = "-" if f["score"] is None else f"{f['score']:.2f}"
        out.append(f"{z}{tag} {sc} x{int(f['x'])} w{int(f['w'])}")
    return "; ".join(out) or "-"


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def report(res: dict, truth: list[dict], a, workers: int) -> None:
    m = metrics_of(res, truth)
    res["metrics"] = m
    print(f"\n## zones {res['mode']}: {m['n']} settlements, {workers} worker process(es)\n")
    if m.get("rate"):
        print(f"{m['done']} checked in {m['wall']:.1f} s: **{m['rate']:.2f} settlements/s**, worker CPU "
              f"{m['cpu_per']:.2f} s per check; per check median {m['median']:.2f} s, p95 {m['p95']:.2f} s"
              + (" (worker TIMED OUT)" if res["timed_out"] else "") + "\n")
    else:
        print("no settlement checked\n")
    cols = list(OUTCOMES) + sorted({v for v in m["got"].values() if v not in OUTCOMES})
    print("| truth \\ checked | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for o in OUTCOMES:
        ks = [k for k, v in m["exp"].items() if v == o]
        if ks:
            print(f"| {o} | " + " | ".join(str(sum(1 for k in ks if m["got"][k] == c)) for c in cols) + " |")
    print("\n| outcome | truth | checked as | correct | precision | recall |\n|---|---|---|---|---|---|")
    for o, (t, p, c, pr, rc) in m["outcomes"].items():
        print(f"| {o} | {t} | {p} | {c} | {_f(pr)} | {_f(rc)} |")
    print("\n| rule (flags) | truth | flagged | correct | precision | recall |\n|---|---|---|---|---|---|")
    for r, (t, p, c, pr, rc) in m["rules"].items():
        unit = " (settlements)" if r == "one_face_many_cards" else ""
        print(f"| {r}{unit} | {t} | {p} | {c} | {_f(pr)} | {_f(rc)} |")
    n = m["n"]
    print(f"\nstaff wrongly flagged: impersonation flags accusing a staff member {len(m['staff_imp'])}, "
          f"one_face_many_cards flags built on a staff face {len(m['staff_many'])} (of {m['many_flags']}); "
          f"settlements with a staff member wrongly flagged {len(m['staff_bad_settlements'])} of {n} "
          f"({len(m['staff_bad_settlements']) / max(n, 1):.0%})")
    print(f"staff faces in the evidence (this bench's recognition) {m['staff_faces']}, labelled staff by the "
          f"checker {m['staff_labelled_faces']}; ghost_visit flags naming a staff member {m['ghost_named'][0]} "
          f"of {m['ghost_named'][1]}")
    extra = m["many_extra"]
    if extra:
        by = {r["id"]: r for r in truth}
        print("one_face_many_cards settlements outside the impostor's group: " + ", ".join(
            f"{k} ({by[k]['kind']}/{by[k]['seed']}, payer {by[k]['payer'] or '-'}, {m['got'][k]})" for k in sorted(extra)))
    decoys = [r for r in truth if r.get("decoy")]
    if decoys:
        print("hall decoy (vtest.avi, real people walking): " + ", ".join(
            f"{r['id']} {m['got'][r['id']]}" + (" (ghost_visit: WRONG)" if m["got"][r["id"]] == "ghost_visit" else "")
            for r in decoys))
    wrong = [r for r in truth if m["got"][r["id"]] != r["expected"]]
    if wrong:
        print(f"\nmismatches ({len(wrong)}):\n")
        print("| settlement | scene kind | seed | at s | insured | payer | cashier | expected | checked | reason | evidence faces |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in wrong:
            ch = res["checks"].get(r["id"], {})
            reason = re.sub(r"\s+", " ", ch.get("reason") or res["states"].get(r["id"], (0, 0, 0, ""))[3] or "")[:110]
            hw = " +hall window" if r.get("hall_window") else ""
            print(f"| {r['id']} | {r['kind']}{hw} | {r['seed']} | {r['scene_s']:.1f} | {r['insured']} | {r['payer'] or '-'} | "
                  f"{r['cashier'] or '-'} | {r['expected']} | {m['got'][r['id']]} | {reason} | {_faces(res, r['id'])} |")
    sys.stdout.flush()


def synthetic_baseline(workers: int, timeout: float, log) -> dict | None:
    cmd = [sys.executable, str(REPO / "bench" / "correlate.py"), "--per-scene", "2", "--workers", str(max(1, workers)),
           "--intervals", "2"]
    log("synthetic baseline: " + " ".join(cmd[1:]))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        log("synthetic baseline timed out")
        return None
    mm = re.search(r"(\d+) settlements in ([\d.]+) s: \*\*([\d.]+) settlements/s\*\*", p.stdout)
    if not mm:
        log(f"synthetic baseline: no rate in its output ({p.returncode}): {p.stdout[-400:]} {p.stderr[-400:]}")
        return None
    return {"n": int(mm.group(1)), "wall": float(mm.group(2)), "rate": float(mm.group(3)), "cmd": " ".join(cmd[1:])}


def summary(results, synth, truth, a, workers, commit, run_at, staff) -> None:
    print(f"\n## summary ({run_at:%Y-%m-%d %H:%M} UTC, commit {commit}, {os.cpu_count()} cores, "
          f"{'PostgreSQL' if a.pg else 'SQLite'}, {workers} worker process(es), sampling every {a.interval:g} s, "
          f"window {a.before:g}/{a.after:g} s, {a.fps} fps 960x540, staff enrolled as {staff['how']})\n")
    print("| zones | settlements/s | CPU s/check | ghost_visit P / R | impersonation P / R | many-cards P / R "
          "| staff wrongly flagged | outcome accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r["metrics"]
        g, i, mc = m["rules"]["ghost_visit"], m["rules"]["impersonation"], m["rules"]["one_face_many_cards"]
        acc = sum(1 for k in m["exp"] if m["exp"][k] == m["got"][k]) / max(1, m["n"])
        print(f"| {r['mode']} | {_f(m.get('rate'))} | {_f(m.get('cpu_per'))} | {_f(g[3])} / {_f(g[4])} | "
              f"{_f(i[3])} / {_f(i[4])} | {_f(mc[3])} / {_f(mc[4])} | "
              f"{len(m['staff_bad_settlements'])} of {m['n']} settlements "
              f"({len(m['staff_imp'])} imp., {len(m['staff_many'])} many-cards flags) | {acc:.2f} |")
    if synth:
        print(f"| synthetic scenes (bench/correlate.py {synth['cmd'].split('correlate.py ')[-1]}) | "
              f"{synth['rate']:.2f} | - | - | - | - | - | - |")
    print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
