"""Verification API throughput and latency against the raw pipeline, in the same run.

    .venv/bin/python bench/verify.py [--seconds 20] [--concurrency 1 4 16] [--rounds 4] [--api-workers 1]

Starts its own SeaweedFS and a SQLite index in a temp dir, enrolls one person, then measures
1. the raw pipeline in this process (decode, detect, align, embed) on the same captures:
   sequential, and with as many threads as cores (its best throughput on this machine);
2. POST /v1/verify on a `dualcheck serve` process at 1, 4 and 16 concurrent terminals.
Each of these gets ``--seconds`` in all, in ``--rounds`` slices taken in turn (see main()).
Captures are the test portraits scaled to 640x800, like a terminal's close-up.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernel.settings import Settings  # noqa: E402
from tests.conftest import MODELS_CACHE, TESTDATA, _port_base, free_port  # noqa: E402

EXPECTED = ["match", "match", "match", "mismatch"]  # the decision for each capture below (BENCH1 is Obama)


def captures() -> list[bytes]:
    out = []
    for name in ("obama2.jpg", "obama3.jpg", "obama.jpg", "biden.jpg"):
        img = cv2.imread(str(TESTDATA / "faces" / name))
        if img is None:
            raise SystemExit(f"bench: no test portrait at {TESTDATA / 'faces' / name} (../shared beside the "
                             "checkout, or DUALCHECK_SHARED)")
        h, w = img.shape[:2]
        scale = 800 / h
        img = cv2.resize(img, (int(w * scale), 800), interpolation=cv2.INTER_AREA)
        x0 = max(0, (img.shape[1] - 640) // 2)
        img = img[:, x0:x0 + 640]
        out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def raw_slice(pipe, caps: list[bytes], seconds: float, threads: int) -> dict:
    """The raw pipeline in this process (decode, detect, align, embed) on ``threads`` threads for ``seconds``:
    captures analysed, wall and CPU seconds, and each capture's latency."""
    from vision.image import decode_image

    lat: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        n = i
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            pipe.analyze(decode_image(caps[n % len(caps)], max_bytes=10**8, max_pixels=10**9), max_embed=1)
            with lock:
                lat.append(time.perf_counter() - t0)
            n += 1

    t0, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(worker, range(threads)))
    return {"n": len(lat), "wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu0, "lat": lat}


def raw_figures(t: dict) -> dict:
    return {"n": t["n"], "rps": t["n"] / t["wall"], "p50_ms": pct(t["lat"], 50) * 1e3,
            "p99_ms": pct(t["lat"], 99) * 1e3, "cpu_ms": 1e3 * t["cpu"] / max(t["n"], 1)}


def raw_model(settings: Settings, caps: list[bytes]):
    from vision.image import decode_image
    from vision.pipeline import FacePipeline

    pipe = FacePipeline.from_settings(settings)
    for c in caps:  # warm-up
        pipe.analyze(decode_image(c, max_bytes=10**8, max_pixels=10**9), max_embed=1)
    return pipe


def raw_pipeline(settings: Settings, caps: list[bytes], seconds: float, threads: int) -> dict:
    return raw_figures(raw_slice(raw_model(settings, caps), caps, seconds, threads))


def pooled(slices: list[dict]) -> dict:
    """Slices of one measurement added up: counts, seconds and latencies."""
    out = {k: sum(s[k] for s in slices) for k in slices[0] if k not in ("lat", "first_error")}
    out["lat"] = [x for s in slices for x in s["lat"]]
    out["first_error"] = next((s["first_error"] for s in slices if s.get("first_error")), "")
    return out


def multipart(insured_id: str, image: bytes) -> tuple[bytes, str]:
    """A terminal's request body, built once per capture: the load generator shares the cores with the API, so its
    own CPU per request (httpx built each body and parsed each answer in ~2.5 ms) is kept small."""
    b = "dualcheckbenchboundary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"insured_id\"\r\n\r\n{insured_id}\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"c.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def api_load(url: str, keys: list[str], caps: list[bytes], seconds: float) -> dict:
    """Closed-loop terminals, one per entry of ``keys`` (a key may repeat), each sending the captures in
    turn for ``seconds`` on its own keep-alive connection; every decision is checked against :data:`EXPECTED`."""
    lat: list[float] = []
    errors: list[str] = []
    wrong = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    host, port = url.split("//", 1)[1].split(":")
    bodies = [multipart("BENCH1", c) for c in caps]

    def terminal(i: int) -> None:
        n = i
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            while time.perf_counter() < stop:
                body, ctype = bodies[n % len(caps)]
                t0 = time.perf_counter()
                try:
                    conn.request("POST", "/v1/verify", body, {"Authorization": f"Bearer {keys[i]}",
                                                              "Content-Type": ctype})
                    r = conn.getresponse()
                    data = r.read()
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        errors.append(type(e).__name__)
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=60)
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    if r.status != 200:
                        errors.append(f"{r.status} {data[:120]!r}")
                        if r.status == 503:  # refused as overloaded: a terminal would not retry at once
                            time.sleep(0.1)
                    else:
                        lat.append(dt)
                        wrong[0] += json.loads(data).get("decision") != EXPECTED[n % len(caps)]
                n += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(keys)) as ex:
        list(ex.map(terminal, range(len(keys))))
    wall = time.perf_counter() - t0
    return {"n": len(lat), "errors": len(errors), "first_error": errors[0] if errors else "", "wrong": wrong[0],
            "wall": wall, "lat": lat, **load_figures(len(lat), wall, lat)}


def load_figures(n: int, wall: float, lat: list[float]) -> dict:
    return {"rps": n / wall, "p50_ms": pct(lat, 50) * 1e3 if lat else 0.0, "p99_ms": pct(lat, 99) * 1e3 if lat else 0.0}


def _stat(pid: int, tid: int | None = None) -> list[str]:
    """The fields after the name in /proc's stat of a process (or of its thread ``tid``)."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    return Path(path).read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (the API's model processes, uvicorn's workers)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int(_stat(int(d.name))[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User+system CPU so far of one thread (``tid`` = ``pid``: the main thread, the API's event loop)."""
    return sum(int(x) for x in _stat(pid, tid)[11:13]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """User+system CPU so far of a process and, with ``tree``, its children that ended and its live descendants
    (from /proc). The load generator is counted alone: the servers it started are its children."""
    if not tree:
        return sum(int(x) for x in _stat(pid)[11:13]) / os.sysconf("SC_CLK_TCK")
    total = sum(int(x) for x in _stat(pid)[11:15])
    for c in descendants(pid):
        try:
            total += sum(int(x) for x in _stat(c)[11:13])
        except OSError:  # ended in between: counted in its parent's children once reaped
            pass
    return total / os.sysconf("SC_CLK_TCK")


def start_services(prefix: str, database_url: str | None = None,
                   store_procs: int | None = None) -> tuple[Path, object, dict, Settings]:
    """A SeaweedFS on free ports in a new temp dir; the environment of `dualcheck serve` processes and
    the Settings of this process, both pointed at it (and at ``database_url``, else SQLite in the dir).
    Rate limits are off: a load test, not the limiter (docs/operations.md). ``store_procs``: SeaweedFS's
    GOMAXPROCS (default: the setting's default)."""
    from storage.seaweed import LocalSeaweed

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    base = _port_base()
    sw = LocalSeaweed(tmp / "seaweedfs", base, base + 1, base + 2, base + 3, "benchkey", "benchsecret123",
                      **({} if store_procs is None else {"max_procs": store_procs}))
    sw.up()
    env = {**os.environ, "DUALCHECK_DATA_DIR": str(tmp), "DUALCHECK_S3_ENDPOINT": sw.endpoint,
           "DUALCHECK_S3_ACCESS_KEY": sw.access_key, "DUALCHECK_S3_SECRET_KEY": sw.secret_key,
           "DUALCHECK_MODELS_DIR": str(MODELS_CACHE), "DUALCHECK_LOG_LEVEL": "WARNING",
           "DUALCHECK_RATE_LIMIT_TERMINAL": "", "DUALCHECK_RATE_LIMIT_USER": "",
           "DUALCHECK_VERIFY_REPLAY_WINDOW_S": "0"}  # the same captures again and again: replays
    extra = {}
    if database_url:
        env["DUALCHECK_DATABASE_URL"] = extra["database_url"] = database_url
    settings = Settings(data_dir=tmp, s3_endpoint=sw.endpoint, s3_access_key=sw.access_key,
                        s3_secret_key=sw.secret_key, models_dir=MODELS_CACHE, **extra)
    return tmp, sw, env, settings


def enrolled_world(settings: Settings, terminals: int) -> list[str]:
    """Migrate; one organisation with ``terminals`` terminal keys (returned); BENCH1 enrolled from obama.jpg."""
    from api.keys import add_organisation, add_terminal
    from dualcheck.runtime import Runtime
    from storage.db import migrate, session_scope

    migrate(settings.effective_database_url)
    rt = Runtime(settings)
    try:
        with session_scope(rt.sessions) as db:
            add_organisation(db, "BENCH-ORG")
            db.flush()
            keys = [add_terminal(db, "BENCH-ORG", f"BENCH-T{i + 1}")[1] for i in range(terminals)]
        rt.enroller.enroll("BENCH1", [("o.jpg", (TESTDATA / "faces/obama.jpg").read_bytes())], actor="bench")
    finally:
        rt.close()
    return keys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--rounds", type=int, default=4, help="slices each figure is measured in, taking turns with "
                    "the others (1: one after the other, as before)")
    ap.add_argument("--api-workers", type=int, default=1)
    ap.add_argument("--face-processes", type=int, help="model processes of the API (DUALCHECK_FACE_PROCESSES; "
                    "0: face work in the API's request threads, as before; default: the setting's default)")
    ap.add_argument("--store-procs", type=int, help="GOMAXPROCS of the bench's SeaweedFS (0: all cores; "
                    "default: DUALCHECK_SEAWEED_MAX_PROCS's default)")
    ap.add_argument("--profile", help="write a py-spy flame graph of the API process to this SVG (.txt: raw stacks)")
    ap.add_argument("--profile-gil", action="store_true", help="sample only the thread holding the GIL (where the "
                    "API process's Python time goes) and leave out its model processes")
    args = ap.parse_args()

    caps = captures()  # before the store starts: a missing test portrait must not leave SeaweedFS running
    tmp, sw, env, settings = start_services("dualcheck-bench-", store_procs=args.store_procs)
    if args.face_processes is not None:
        env["DUALCHECK_FACE_PROCESSES"] = str(args.face_processes)
    api_port = free_port()
    server = None
    try:
        key = enrolled_world(settings, 1)[0]

        cores = os.cpu_count() or 1
        rounds = max(1, args.rounds)
        print(f"machine: {cores} cores; captures: {len(caps)} portraits at 640x800; {args.seconds:.0f} s per figure, "
              f"in {rounds} slices interleaved with the others")
        pipe = raw_model(settings, caps)

        server = subprocess.Popen([str(Path(sys.executable).parent / "dualcheck"), "serve", "--port", str(api_port),
                                   "--workers", str(args.api_workers)], env=env)
        url = f"http://127.0.0.1:{api_port}"
        for _ in range(240):
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        api_load(url, [key] * 2, caps, 3)  # warm-up
        print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; API face processes: "
              f"{env.get('DUALCHECK_FACE_PROCESSES', 'default')}; SeaweedFS GOMAXPROCS: {sw.max_procs or 'all cores'}")
        me = os.getpid()
        spy = None
        phases: list[str | int] = ["raw1", "rawn", *args.concurrency]
        if args.profile:
            spy = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
                                    "-o", args.profile,
                                    "--format", "raw" if args.profile.endswith(".txt") else "flamegraph",
                                    "--pid", str(server.pid), "--duration", str(int(args.seconds * len(phases))),
                                    "--nonblocking", *(["--gil"] if args.profile_gil else ["--subprocesses"])])
        # The machine's speed drifts over minutes (the raw pipeline's CPU per capture moved by 10 % between
        # back-to-back runs here): the raw pipeline and the API take turns in short slices, in an order that
        # rotates each round, so that a drift weighs on both sides alike instead of on whichever ran later.
        slices: dict[str | int, list[dict]] = {ph: [] for ph in phases}

        def cpu() -> list[float]:  # API with its model processes, store, load generator, API alone, its event loop
            return [cpu_seconds(server.pid), cpu_seconds(sw.pid()), cpu_seconds(me, tree=False),
                    cpu_seconds(server.pid, tree=False), thread_cpu_seconds(server.pid, server.pid)]

        for r in range(rounds):
            k = r % len(phases)
            for ph in phases[k:] + phases[:k]:
                if ph == "raw1":
                    slices[ph].append(raw_slice(pipe, caps, args.seconds / rounds, 1))
                elif ph == "rawn":
                    slices[ph].append(raw_slice(pipe, caps, args.seconds / rounds, cores))
                else:
                    before = cpu()
                    t = api_load(url, [key] * ph, caps, args.seconds / rounds)
                    t.update(zip(("cpu_api", "cpu_store", "cpu_load", "cpu_api_alone", "cpu_api_loop"),
                                 (x - y for x, y in zip(cpu(), before))))
                    slices[ph].append(t)
        raw1, rawn = raw_figures(pooled(slices["raw1"])), raw_figures(pooled(slices["rawn"]))
        print(f"raw pipeline, 1 thread : {raw1['rps']:6.1f}/s  p50 {raw1['p50_ms']:6.1f} ms  p99 {raw1['p99_ms']:6.1f} ms"
              f"  CPU {raw1['cpu_ms']:5.1f} ms per capture")
        print(f"raw pipeline, {cores} threads: {rawn['rps']:6.1f}/s  p50 {rawn['p50_ms']:6.1f} ms  "
              f"p99 {rawn['p99_ms']:6.1f} ms  CPU {rawn['cpu_ms']:5.1f} ms per capture")
        best = max(raw1["rps"], rawn["rps"])
        for c in args.concurrency:
            t = pooled(slices[c])
            r = load_figures(t["n"], t["wall"], t["lat"])
            per_req = [1e3 * t[k] / max(t["n"], 1)
                       for k in ("cpu_api", "cpu_store", "cpu_load", "cpu_api_alone", "cpu_api_loop")]
            # with one API process its main thread is the event loop (HTTP, form parsing, FastAPI); the rest of the
            # process is the request threads (the verifier: index, S3 client, model process hand-off)
            loop = f", its event loop {per_req[4]:4.1f}" if args.api_workers == 1 else ""
            print(f"API, {c:2d} terminals      : {r['rps']:6.1f}/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
                  f"  errors {t['errors']}  wrong {t['wrong']}  throughput {100 * r['rps'] / best:5.1f} % of raw best"
                  f"  p99/raw-single {r['p99_ms'] / raw1['p50_ms']:4.2f}x" + (f"  first error: {t['first_error']}"
                                                                           if t["errors"] else ""))
            print(f"    CPU ms per request: API {per_req[0]:5.1f} (with its model processes; the API process alone "
                  f"{per_req[3]:4.1f}{loop}), SeaweedFS {per_req[1]:5.1f}, "
                  f"load generator {per_req[2]:5.1f}; API+store / raw CPU per capture ({cores} threads) "
                  f"{(per_req[0] + per_req[1]) / rawn['cpu_ms']:4.2f}x; throughput {100 * r['rps'] / rawn['rps']:5.1f} % "
                  f"of raw {cores} threads; p50 - raw 1-thread p50 {r['p50_ms'] - raw1['p50_ms']:+5.1f} ms")
            if rounds > 1:  # each round against the raw pipeline's slices of the same round: the spread
                ratio = [(a["cpu_api"] + a["cpu_store"]) / max(a["n"], 1) / (w["cpu"] / max(w["n"], 1))
                         for a, w in zip(slices[c], slices["rawn"])]
                share = [100 * (a["n"] / a["wall"]) / (w["n"] / w["wall"]) for a, w in zip(slices[c], slices["rawn"])]
                gap = [1e3 * (pct(a["lat"], 50) - pct(w["lat"], 50)) for a, w in zip(slices[c], slices["raw1"])
                       if a["lat"]]
                print(f"    per round: API+store / raw CPU {' '.join(f'{x:.2f}' for x in ratio)}x; throughput "
                      f"{' '.join(f'{x:.0f}' for x in share)} % of raw {cores} threads; p50 - raw 1-thread p50 "
                      f"{' '.join(f'{x:+.1f}' for x in gap)} ms")
        if spy is not None:
            spy.wait(60)
    finally:
        if server:
            server.terminate()
            server.wait(20)
        sw.down()


if __name__ == "__main__":
    main()
