"""Verification throughput with 1, 2 and 4 API processes behind a local load balancer (nginx), beside
the raw pipeline and one process without the balancer, measured in the same run; optionally the
recorder failover time (bench/failover.py).

    .venv/bin/python bench/scale.py [--seconds 12] [--terminals 4] [--processes 1 2 4] [--failover]

Everything real: a SeaweedFS on free ports, a fresh PostgreSQL database (``DUALCHECK_TEST_PG`` admin
URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test), N `dualcheck serve` processes on
their own ports, and Debian's nginx run as a user process from a generated config (round-robin
upstream with keepalive). Closed-loop terminals (one API key each) send the captures of
bench/verify.py; every answer's decision is checked (obama* must match, biden must not). CPU per
request is read from /proc for the API processes, nginx, SeaweedFS and the load generator
(PostgreSQL serves other clients on a shared machine and is left out).

On a 2-core machine more processes cannot add CPU: the table shows what the balancer and the extra
processes cost and that nothing breaks (all decisions right, no errors), not scaling.
"""
from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.verify import api_load, captures, cpu_seconds, enrolled_world, raw_pipeline, start_services
from tests.conftest import (
    _create_pg_database,
    _drop_pg_database,
    free_port,
)

NGINX_CONF = """{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 10m;
    upstream api {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def tree_cpu(pid: int) -> float:
    """User+system CPU seconds of a process and all its live descendants (nginx workers, uvicorn)."""
    tck = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / tck)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
        todo += [c for c, (pp, _) in stats.items() if pp == p]
    return total


def wait_ready(url: str, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} at {url} not ready after {timeout:.0f} s")


class Nginx:
    def __init__(self, tmp: Path, ports: list[int]):
        self.dir = tmp / f"nginx-{len(ports)}"
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
        conf = self.dir / "nginx.conf"
        # run as root, nginx's workers would switch to "nobody" and could not use the private temp dir
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(user=user, tmp=self.dir, servers=servers, port=self.port))
        self.proc = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12, help="measuring time of each line")
    ap.add_argument("--terminals", type=int, default=4, help="concurrent closed-loop terminals")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--failover", action="store_true", help="then run bench/failover.py (recorder failover time)")
    ap.add_argument("--failover-args", default="", help="extra arguments for bench/failover.py, e.g. '--ttl 10'")
    args = ap.parse_args()

    db_url = _create_pg_database()
    tmp, sw, env, settings = start_services("dualcheck-scale-", database_url=db_url)
    caps = captures()
    servers: list[tuple[subprocess.Popen, int]] = []
    nginx: Nginx | None = None
    rows: list[tuple] = []
    try:
        keys = enrolled_world(settings, args.terminals)

        cores = os.cpu_count() or 1
        print(f"machine: {cores} cores; {args.terminals} terminals, {len(caps)} captures at 640x800; "
              f"{args.seconds:.0f} s per line; PostgreSQL index, SeaweedFS store")
        raw = [(t, raw_pipeline(settings, caps, args.seconds, t)) for t in sorted({1, min(2, cores)})]

        def start_api() -> None:
            port = free_port()
            p = subprocess.Popen([str(Path(sys.executable).parent / "dualcheck"), "serve", "--port", str(port),
                                  "--workers", "1"], env=env)
            servers.append((p, port))

        def measure(label: str, url: str, procs: int, lb: bool) -> None:
            api_load(url, keys, caps, 2)  # warm-up: models loaded, connections open
            pids = [p.pid for p, _ in servers[:procs]]
            watched = {"api": pids, "nginx": [nginx.proc.pid] if lb else [], "seaweedfs": [sw.pid()]}

            def used() -> dict:  # the load generator alone: the servers are its children
                return {**{k: sum(tree_cpu(p) for p in v) for k, v in watched.items()}, "loadgen": cpu_seconds(os.getpid())}

            before = used()
            r = api_load(url, keys, caps, args.seconds)
            cpu = {k: 1e3 * (v - before[k]) / max(r["n"], 1) for k, v in used().items()}
            rows.append((label, procs, r, cpu))
            print(f"{label:<22} {procs:>5} {args.terminals:>9} {r['rps']:7.1f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f}"
                  f" {cpu['api']:7.1f} {cpu['nginx']:6.1f} {cpu['seaweedfs']:5.1f} {cpu['loadgen']:5.1f}"
                  f" {r['errors']:6d} {r['wrong']:5d}" + (f"  first error: {r['first_error']}" if r["errors"] else ""),
                  flush=True)

        print("\nCPU ms per request of: API (all processes), nginx, S3 (SeaweedFS), load (the generator); "
              "wrong = decisions other than expected")
        print(f"{'':<22} {'procs':>5} {'terminals':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
              f" {'API':>7} {'nginx':>6} {'S3':>5} {'load':>5} {'errors':>6} {'wrong':>5}")
        for t, r in raw:
            print(f"{f'raw pipeline, {t} thr':<22} {'-':>5} {t:>9} {r['rps']:7.1f} {r['p50_ms']:7.1f} "
                  f"{r['p99_ms']:7.1f}")
        start_api()
        wait_ready(f"http://127.0.0.1:{servers[0][1]}", "API process")
        measure("1 process, direct", f"http://127.0.0.1:{servers[0][1]}", 1, lb=False)
        for n in sorted(args.processes):
            while len(servers) < n:
                start_api()
            for _, port in servers[:n]:
                wait_ready(f"http://127.0.0.1:{port}", "API process")
            if nginx:
                nginx.stop()
            nginx = Nginx(tmp, [port for _, port in servers[:n]])
            wait_ready(nginx.url, "nginx")
            measure(f"{n} process(es) + nginx", nginx.url, n, lb=True)

        ok = all(r["errors"] == 0 and r["wrong"] == 0 and r["n"] > 0 for _, _, r, _ in rows)
        direct = rows[0][2]["rps"]
        print(f"\n{'OK' if ok else 'FAILED'}: {'every decision right, no errors' if ok else 'errors or wrong decisions'}"
              f" in {sum(r['n'] for _, _, r, _ in rows)} verifications.")
        print(f"On {cores} cores more API processes cannot add CPU: the lines show the cost of the balancer and of "
              "more processes sharing the cores (throughput vs 1 process direct: "
              + ", ".join(f"{label.split(' +')[0]} {100 * r['rps'] / direct:.0f} %" for label, _, r, _ in rows[1:])
              + "), not scaling. On separate machines each process brings its own cores.")
        if args.failover:
            print("\nrecorder failover (bench/failover.py):", flush=True)
            subprocess.run([sys.executable, str(REPO / "bench" / "failover.py"), *args.failover_args.split()],
                           check=False)
        if not ok:
            sys.exit(1)
    finally:
        if nginx:
            nginx.stop()
        for p, _ in servers:
            p.terminate()
        for p, _ in servers:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        sw.down()
        _drop_pg_database(db_url)


if __name__ == "__main__":
    main()
