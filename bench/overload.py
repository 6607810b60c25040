"""Face verification past capacity: open-loop arrivals against a real API, answered vs refused, memory.

    .venv/bin/python bench/overload.py [--seconds 15] [--rates 0.5 1 2] [--no-baseline]

Starts its own SeaweedFS and SQLite index in a temp dir (bench/verify.py's helpers), enrols one person and
starts `dualcheck serve` (uvicorn, one process) on loopback. Then, in the same run:
1. capacity: bench/verify.py's closed-loop load generator (`api_load`, 8 terminals) gives the answered/s;
2. open-loop Poisson arrivals at each multiple of that capacity for --seconds (a fixed seed): each request is
   sent at its arrival time whatever the earlier ones are doing, and its latency is counted from that time
   (no coordinated omission). Per rate: answered (200) and refused (503 overloaded) per second, the
   latency percentiles of each, wrong decisions, and the API's resident memory (VmRSS) sampled every 0.5 s;
3. baseline: the highest rate again against a server with admission control switched off (queue and budget
   unbounded), i.e. the behaviour before it existed.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.verify import (  # noqa: E402
    EXPECTED,
    api_load,
    captures,
    cpu_seconds,
    descendants,
    enrolled_world,
    multipart,
    pct,
    raw_pipeline,
    start_services,
)
from tests.conftest import free_port  # noqa: E402

UNBOUNDED = {"DUALCHECK_VERIFY_MAX_QUEUE": "1000000", "DUALCHECK_VERIFY_LATENCY_BUDGET_MS": "1000000000"}


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # a model process that just ended
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """Resident memory of the API process and its model processes together."""
    return _rss_mb(pid) + sum(_rss_mb(c) for c in descendants(pid))


class RssSampler:
    """The API's resident memory every ``period`` seconds, in a thread, while a run lasts."""

    def __init__(self, pid: int, period: float = 0.5):
        self.pid, self.period, self.samples = pid, period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mb(self.pid))
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb(self.pid))


def runqueue_wait_s(pid: int) -> dict[str, int]:
    """Per thread of one process, nanoseconds spent runnable but waiting for a core (schedstat)."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[t.name] = int((t / "schedstat").read_text().split()[1])
        except (OSError, IndexError):
            pass
    return out


def waited_s(before: dict[str, int], after: dict[str, int]) -> float:
    """Run-queue wait between two readings, of the threads alive at the second (new ones from 0)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


class Cpu:
    """CPU seconds used by the API (with its model processes), SeaweedFS and this load generator during a run,
    and how long the API process's own threads waited for a core (from /proc)."""

    def __init__(self, *pids: int):
        self.pids = (*pids, os.getpid())

    def _now(self) -> list[float]:
        return [cpu_seconds(p, tree=p != os.getpid()) for p in self.pids]

    def __enter__(self):
        self.before = self._now()
        self.wait0 = runqueue_wait_s(self.pids[0])
        return self

    def __exit__(self, *exc):
        self.used = [a - b for a, b in zip(self._now(), self.before)]
        self.waited = waited_s(self.wait0, runqueue_wait_s(self.pids[0]))


def open_loop(url: str, key: str, caps: list[bytes], rate: float, seconds: float, seed: int) -> dict:
    """Poisson arrivals at ``rate``/s for ``seconds``, each sent by a thread of a large pool at its time
    (sync httpx clients, as bench/verify.py's generator); every request is awaited."""
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            break
        arrivals.append(t)
    bodies = [multipart("BENCH1", c) for c in caps]
    ok: list[float] = []
    refused: list[float] = []  # at the door (queue full or expected wait over the budget)
    stale: list[float] = []  # admitted, then dropped having waited past the budget
    probe: list[float] = []  # GET /healthz every 100 ms: what any request costs on this loaded machine
    other: list[str] = []
    wrong = [0]
    lock = threading.Lock()
    local = threading.local()

    host, port = url.split("//", 1)[1].rsplit(":", 1)

    def one(i: int, due: float) -> None:
        # the standard library's HTTP client, one keep-alive connection per thread: a fraction of httpx's CPU,
        # which matters when the generator shares the two cores with the server
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        body, ctype = bodies[i % len(bodies)]
        try:
            c.request("POST", "/v1/verify", body=body,
                      headers={"Content-Type": ctype, "Authorization": f"Bearer {key}"})
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            c.close()
            local.conn = None
            with lock:
                other.append(type(e).__name__)
            return
        took = time.perf_counter() - due
        with lock:
            if r.status == 200:
                ok.append(took)
                wrong[0] += json.loads(data).get("decision") != EXPECTED[i % len(caps)]
            elif r.status == 503 and json.loads(data)["error"]["code"] == "overloaded" and r.getheader("retry-after"):
                (stale if json.loads(data)["error"]["reason"].startswith("waited") else refused).append(took)
            else:
                other.append(f"{r.status} {data[:100]!r}")

    def probing(until: float) -> None:
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.perf_counter() < until:
            p0 = time.perf_counter()
            c.request("GET", "/healthz")
            c.getresponse().read()
            probe.append(time.perf_counter() - p0)
            time.sleep(0.1)
        c.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(1000) as ex:  # enough for every request in flight without admission control
        ex.submit(probing, t0 + seconds)
        for i, at in enumerate(arrivals):
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ex.submit(one, i, t0 + at)
    wall = time.perf_counter() - t0
    wrong = wrong[0]

    def stats(xs: list[float]) -> str:
        if not xs:
            return "-"
        return (f"p50 {pct(xs, 50) * 1e3:6.0f}  p90 {pct(xs, 90) * 1e3:6.0f}  p99 {pct(xs, 99) * 1e3:6.0f}  "
                f"max {max(xs) * 1e3:6.0f} ms")

    return {"sent": len(arrivals), "ok": len(ok), "refused": len(refused), "other": len(other),
            "first_other": other[0] if other else "", "wrong": wrong, "ok_s": len(ok) / seconds,
            "refused_s": len(refused) / seconds, "stale_s": len(stale) / seconds, "ok_lat": stats(ok),
            "refused_lat": stats(refused), "stale_lat": stats(stale), "probe_lat": stats(probe),
            "wall": wall, "ok_p99": pct(ok, 99) if ok else 0.0, "refused_p99": pct(refused, 99) if refused else 0.0}


def verify_buckets(url: str) -> dict[str, float]:
    """The API's own histogram of POST /v1/verify answer times (from its request to its response, without
    the load generator or the network): cumulative counts by upper bound."""
    out = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith("dualcheck_http_request_duration_seconds_bucket{") and 'route="/v1/verify"' in line:
            le = line.split('le="')[1].split('"')[0]
            out[le] = float(line.rsplit(" ", 1)[1])
    return out


def server_side(before: dict, after: dict, refused: int) -> str:
    d = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    fast = d.get("0.05", 0)
    return (f"server-side (API histogram): {fast:.0f} answers in <= 50 ms for {refused} refusals; "
            f"<= 100 ms {d.get('0.1', 0):.0f}, <= 250 ms {d.get('0.25', 0):.0f}, <= 1 s {d.get('1.0', 0):.0f}, "
            f"all {d.get('+Inf', 0):.0f}")


def serve(env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen([str(Path(sys.executable).parent / "dualcheck"), "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the API did not become ready")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(30)


def report(label: str, r: dict, rss: list[float], cpu: Cpu) -> None:
    print(f"{label}: sent {r['sent']:5d} ({r['sent'] / args.seconds:5.1f}/s)  answered {r['ok_s']:5.1f}/s  "
          f"refused {r['refused_s']:5.1f}/s  dropped stale {r['stale_s']:4.1f}/s  "
          f"other {r['other']}{' ' + r['first_other'] if r['other'] else ''}  wrong {r['wrong']}  "
          f"drained in {r['wall']:.1f} s")
    print(f"    answered  {r['ok_lat']}")
    print(f"    refused   {r['refused_lat']}")
    print(f"    stale     {r['stale_lat']}")
    print(f"    /healthz  {r['probe_lat']}   (probe every 100 ms)")
    print(f"    CPU s: API {cpu.used[0]:.1f} (with its model processes), SeaweedFS {cpu.used[1]:.1f}, load generator "
          f"{cpu.used[2]:.1f} (of {2 * r['wall']:.0f} core-s on 2 cores); the API process's threads waited "
          f"{cpu.waited:.1f} s for a core")
    print(f"    API RSS MB (with its model processes): start {rss[0]:.0f}, peak {max(rss):.0f}, end {rss[-1]:.0f} (+{max(rss) - rss[0]:.0f}); "
          f"every 1 s: {' '.join(f'{x:.0f}' for x in rss[::2])}")


def main() -> None:
    tmp, sw, env, settings = start_services("dualcheck-overload-")
    caps = captures()
    server = None
    try:
        key = enrolled_world(settings, 1)[0]
        if args.face_processes is not None:
            env["DUALCHECK_FACE_PROCESSES"] = str(args.face_processes)
        cores = os.cpu_count() or 1
        print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; API face processes: "
              f"{env.get('DUALCHECK_FACE_PROCESSES', 'default')}")
        raw1 = raw_pipeline(settings, caps, min(args.seconds, 10), 1)
        rawn = raw_pipeline(settings, caps, min(args.seconds, 10), cores)
        for label, r in (("1 thread ", raw1), (f"{cores} threads", rawn)):
            print(f"raw pipeline, {label}: {r['rps']:6.1f}/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                  f"CPU {r['cpu_ms']:5.1f} ms per capture")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = serve(env, port)
        api_load(url, [key] * 2, caps, 3)  # warm-up
        cap = api_load(url, [key] * 8, caps, args.capacity_seconds)
        print(f"machine: {os.cpu_count()} cores; admission: max queue {settings.verify_max_queue}, latency budget "
              f"{settings.verify_latency_budget_ms} ms, inference slots {settings.inference_concurrency or os.cpu_count()}")
        print(f"capacity (closed loop, 8 terminals, {args.capacity_seconds:.0f} s): {cap['rps']:.1f}/s answered, "
              f"p50 {cap['p50_ms']:.0f} ms, p99 {cap['p99_ms']:.0f} ms, errors {cap['errors']} {cap['first_error']}")
        for i, m in enumerate(args.rates):
            spy = None
            if args.profile and m == max(args.rates):
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-o", args.profile,
                                        "--format", "raw", "--idle", "--pid", str(server.pid), "--duration",
                                        str(int(args.seconds)), "--nonblocking"], stdout=subprocess.DEVNULL)
            b0 = verify_buckets(url)
            with RssSampler(server.pid) as rss, Cpu(server.pid, sw.pid()) as cpu:
                r = open_loop(url, key, caps, m * cap["rps"], args.seconds, seed=i)
            report(f"open loop {m:g}x = {m * cap['rps']:5.1f}/s, {args.seconds:.0f} s", r, rss.samples, cpu)
            print("    " + server_side(b0, verify_buckets(url), r["refused"] + round(r["stale_s"] * args.seconds)))
            if spy is not None:
                spy.wait(60)
        if args.in_process:
            stop(server)
            server = serve({**env, "DUALCHECK_FACE_PROCESSES": "0"}, port)
            api_load(url, [key] * 2, caps, 3)
            m = max(args.rates)
            b0 = verify_buckets(url)
            with RssSampler(server.pid) as rss, Cpu(server.pid, sw.pid()) as cpu:
                r = open_loop(url, key, caps, m * cap["rps"], args.seconds, seed=len(args.rates) - 1)
            report(f"face work in the API's threads (as before), admission on, {m:g}x = {m * cap['rps']:5.1f}/s", r,
                   rss.samples, cpu)
            print("    " + server_side(b0, verify_buckets(url), r["refused"] + round(r["stale_s"] * args.seconds)))
        if args.baseline:
            stop(server)
            server = serve({**env, **UNBOUNDED}, port)
            api_load(url, [key] * 2, caps, 3)
            m = max(args.rates)
            with RssSampler(server.pid) as rss, Cpu(server.pid, sw.pid()) as cpu:
                r = open_loop(url, key, caps, m * cap["rps"], args.seconds, seed=99)
            report(f"baseline, admission off, {m:g}x = {m * cap['rps']:5.1f}/s", r, rss.samples, cpu)
    finally:
        if server:
            stop(server)
        sw.down()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--capacity-seconds", type=float, default=15)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.5, 1, 2])
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--in-process", dest="in_process", action="store_true",
                    help="also the highest rate with face work in the API's request threads (DUALCHECK_FACE_PROCESSES=0, "
                    "as before the model processes), admission on")
    ap.add_argument("--face-processes", type=int, help="DUALCHECK_FACE_PROCESSES of the measured server")
    ap.add_argument("--profile", help="py-spy raw profile (idle threads included) of the API process, without its "
                    "model processes, during the highest rate, to this file")
    args = ap.parse_args()
    main()
