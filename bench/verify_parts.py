"""Where a verification's CPU goes outside the API process: the object store's PUT and the model processes, each
measured alone beside its baseline in the same run (issue 16; bench/verify.py measures them together).

    .venv/bin/python bench/verify_parts.py [--seconds 8] [--rate 40] [--repeat 2]

1. SeaweedFS (started in a temp dir, as `make run` and bench/verify.py start it): its CPU per 66 kB capture PUT
   through storage/objects.py, paced at ``--rate`` per second from one thread (what the API sends at 4
   terminals), against the same PUTs sent back to back from one thread, and its idle CPU per second.
2. The API's model processes (vision/workers.py, as many as cores) fed by 2x as many threads, CPU per capture,
   against the raw pipeline in this process on as many threads as cores (bench/verify.py's baseline).
3. The verifier (facepay/verification.py) called in this process on one thread, no HTTP in front: the CPU of
   this process per verification (the request threads' share of the API process; model work not counted),
   with the S3 client's share of it (the capture's PUT, measured alone in 1. as the client side).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.verify import (  # noqa: E402
    captures,
    cpu_seconds,
    enrolled_world,
    raw_figures,
    raw_model,
    raw_slice,
    start_services,
)
from kernel.settings import Settings  # noqa: E402
from tests.conftest import MODELS_CACHE, _port_base  # noqa: E402


def store_figures(seconds: float, rate: float, image: bytes) -> dict:
    from minio import Minio

    from storage.objects import ObjectStore
    from storage.seaweed import LocalSeaweed

    base = _port_base()
    sw = LocalSeaweed(Path(tempfile.mkdtemp(prefix="dualcheck-parts-")) / "seaweedfs", base, base + 1, base + 2,
                      base + 3, "benchkey", "benchsecret123")
    sw.up()
    try:
        store = ObjectStore(Minio(sw.endpoint, access_key=sw.access_key, secret_key=sw.secret_key, secure=False))
        store.ensure_bucket("biometrics")
        for i in range(50):  # warm-up
            store.put_bytes("biometrics", f"warm/{i}.jpg", image, "image/jpeg")
        time.sleep(2)
        c0 = cpu_seconds(sw.pid())
        time.sleep(seconds)
        idle = (cpu_seconds(sw.pid()) - c0) / seconds
        out = {"idle_ms_per_s": 1e3 * idle}
        me = os.getpid()
        for name, pace in (("paced", rate), ("back_to_back", 0.0)):
            n, c0, m0, t0 = 0, cpu_seconds(sw.pid()), cpu_seconds(me, tree=False), time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                store.put_bytes("biometrics", f"captures/o/2026/12/02/{name}-{n}.jpg", image, "image/jpeg")
                n += 1
                if pace:
                    time.sleep(max(0.0, t0 + n / pace - time.perf_counter()))
            out[name] = 1e3 * (cpu_seconds(sw.pid()) - c0) / n
            out[f"client_{name}"] = 1e3 * (cpu_seconds(me, tree=False) - m0) / n
        return out
    finally:
        sw.down()


def model_process_figures(settings: Settings, caps: list[bytes], seconds: float) -> float:
    from vision.workers import CaptureLimits, FaceProcesses

    cores = os.cpu_count() or 1
    pool = FaceProcesses(settings, CaptureLimits.from_settings(settings), processes=cores)
    pool.start()
    try:
        for c in caps:
            pool.analyze_capture(c)
        stop = time.perf_counter() + seconds
        done = [0] * (2 * cores)

        def feed(i: int) -> None:
            k = i
            while time.perf_counter() < stop:
                pool.analyze_capture(caps[k % len(caps)])
                k += 1
                done[i] += 1

        c0 = sum(cpu_seconds(p, tree=False) for p in pool.pids())
        with ThreadPoolExecutor(2 * cores) as ex:
            list(ex.map(feed, range(2 * cores)))
        return 1e3 * (sum(cpu_seconds(p, tree=False) for p in pool.pids()) - c0) / sum(done)
    finally:
        pool.close()


def verifier_figures(caps: list[bytes], seconds: float) -> float:
    """CPU of this process per verification, the verifier called back to back on one thread (its model processes
    not counted), with a store and an index as bench/verify.py starts them."""
    from sqlalchemy import select

    from dualcheck.runtime import Runtime
    from facepay.verification import Caller
    from storage.db import session_scope
    from storage.models import Terminal

    _tmp, sw, _env, settings = start_services("dualcheck-parts-")
    try:
        enrolled_world(settings, 1)
        # the same captures again and again: not replays here either (as DUALCHECK_VERIFY_REPLAY_WINDOW_S=0 there)
        rt = Runtime(settings.model_copy(update={"verify_replay_window_s": 0}))
        try:
            with session_scope(rt.sessions) as db:
                t = db.scalars(select(Terminal)).one()
                caller = Caller(org_id=t.org_id, terminal_id=t.id, actor=f"terminal:{t.id}")
            for i in range(20):  # warm-up: model processes, connections, caches
                rt.verifier.verify(caller, "BENCH1", caps[i % len(caps)], None)
            me, n, stop = os.getpid(), 0, time.perf_counter() + seconds
            c0 = cpu_seconds(me, tree=False)
            while time.perf_counter() < stop:
                rt.verifier.verify(caller, "BENCH1", caps[n % len(caps)], None)
                n += 1
            return 1e3 * (cpu_seconds(me, tree=False) - c0) / n
        finally:
            rt.close()
    finally:
        sw.down()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rate", type=float, default=40, help="paced PUTs per second (the API's rate at 4 terminals)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    caps = captures()
    settings = Settings(models_dir=MODELS_CACHE)
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    for r in range(args.repeat):
        s = store_figures(args.seconds, args.rate, caps[0])
        print(f"[{r + 1}] SeaweedFS CPU per {len(caps[0]) // 1000} kB PUT: paced at {args.rate:.0f}/s "
              f"{s['paced']:.2f} ms, back to back {s['back_to_back']:.2f} ms (ratio "
              f"{s['paced'] / s['back_to_back']:.2f}); idle {s['idle_ms_per_s']:.1f} ms per s; the client (this "
              f"process) {s['client_paced']:.2f} ms paced, {s['client_back_to_back']:.2f} ms back to back")
    pipe = raw_model(settings, caps)
    for r in range(args.repeat):
        raw = raw_figures(raw_slice(pipe, caps, args.seconds, cores))
        mp = model_process_figures(settings, caps, args.seconds)
        print(f"[{r + 1}] model processes alone: {mp:.1f} ms CPU per capture; raw pipeline, {cores} threads: "
              f"{raw['cpu_ms']:.1f} ms (ratio {mp / raw['cpu_ms']:.2f})")
    for r in range(args.repeat):
        print(f"[{r + 1}] the verifier in this process, one thread, no HTTP: {verifier_figures(caps, args.seconds):.2f} "
              "ms CPU per verification (model processes not counted)")


if __name__ == "__main__":
    main()
