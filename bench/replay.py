"""Replay and retention benchmark (docs/benchmarks/replay.md).

    .venv/bin/python bench/replay.py [--width 1280 --height 720 --bitrate 2000000 --reps 15 --retention 10000]

Starts its own SeaweedFS (temp dir, free ports) and SQLite index, records 3 minutes of simulator
footage as 60 s segments (PyAV remux, as the recorder does), serves the API with uvicorn on
localhost and measures for a 2-minute clip spanning three segments:

* time to first byte and full download of ``GET /v1/cameras/{id}/clip`` (and of a Range request
  into the middle), medians and p95 over ``--reps``;
* the baseline in the same run: ``ffmpeg -f concat -c copy`` of the same segments read from the same
  store (presigned URLs), fragmented MP4 to a pipe: time to first byte on stdout and total;
* retention deletes per second over ``--retention`` backdated index entries (tiny objects).
"""
from __future__ import annotations

import argparse
import http.client
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed_get(port, path, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    first = r.read(1)
    ttfb = time.perf_counter() - t0
    n = len(first)
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        n += len(b)
    total = time.perf_counter() - t0
    c.close()
    assert r.status in (200, 206), (r.status, first)
    return ttfb, total, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--bitrate", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--retention", type=int, default=10_000)
    args = ap.parse_args()

    from api.keys import add_organisation, add_service_key
    from camsim.footage import render, scenario_short
    from dualcheck.app import create_app
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.db import migrate, session_scope
    from storage.models import Segment
    from storage.retention import run_retention
    from storage.seaweed import LocalSeaweed
    from tests.conftest import _port_base, free_port
    from tests.replay.segmenter import make_segments

    tmp = Path(tempfile.mkdtemp(prefix="dualcheck-bench-"))
    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="bench" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24))
    sw.up()
    try:
        s = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'bench.db'}", s3_endpoint=sw.endpoint,
                     s3_access_key=sw.access_key, s3_secret_key=sw.secret_key, bucket_footage="bench-footage",
                     bucket_biometrics="bench-bio", rate_limit_user="")  # measures replay, not the limit
        migrate(s.effective_database_url)
        app = create_app(s, preload_models=False)
        rt = app.state.runtime
        rt.store.ensure_bucket(s.bucket_footage)
        t_render = time.perf_counter()
        footage = render(scenario_short(), width=args.width, height=args.height, fps=25, bitrate=args.bitrate,
                         keyint_s=2.0)
        t_render = time.perf_counter() - t_render
        t0 = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
        with session_scope(rt.sessions) as db:
            add_organisation(db, "ORG", "Org")
            db.flush()
            key = add_service_key(db, "admin", "bench")
            add_camera(db, camera_id="CAM", org_id="ORG", name="c", role="settlement_counter", url="rtsp://h/s")
            db.flush()
            made = make_segments(db, rt.store, s.bucket_footage, footage, org_id="ORG", camera_id="CAM", start=t0,
                                 total_s=180, segment_s=60, workdir=tmp)
        seg_mb = sum(m.size for m in made) / len(made) / 1e6
        a, b = t0 + timedelta(seconds=30), t0 + timedelta(seconds=150)
        path = (f"/v1/cameras/CAM/clip?start={a.isoformat().replace('+', '%2B')}"
                f"&end={b.isoformat().replace('+', '%2B')}")
        hdr = {"Authorization": f"Bearer {key}"}

        import threading

        import uvicorn

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        while not server.started:
            time.sleep(0.05)
        timed_get(port, path, hdr)  # warm-up
        full = [timed_get(port, path, hdr) for _ in range(args.reps)]
        size = full[0][2]
        mid = [timed_get(port, path, {**hdr, "Range": f"bytes={size // 2}-{size // 2 + 1_000_000}"})
               for _ in range(args.reps)]

        # baseline: ffmpeg concat -c copy of the same segments from the same store
        lst = tmp / "list.txt"
        with session_scope(rt.sessions) as db:
            from sqlalchemy import select

            segs = list(db.scalars(select(Segment).where(Segment.camera_id == "CAM", Segment.start_at < b,
                                                         Segment.end_at > a).order_by(Segment.start_at)))
        urls = [rt.store.presigned_get(s.bucket_footage, x.object_key) for x in segs]
        lst.write_text("".join(f"file '{u}'\n" for u in urls))
        base_runs = []
        for _ in range(args.reps):
            t = time.perf_counter()
            p = subprocess.Popen(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-protocol_whitelist",
                                  "file,http,tcp", "-i", str(lst), "-c", "copy", "-movflags",
                                  "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"],
                                 stdout=subprocess.PIPE)
            p.stdout.read(1)
            ttfb = time.perf_counter() - t
            p.stdout.read()
            p.wait()
            base_runs.append((ttfb, time.perf_counter() - t))
        server.should_exit = True
        th.join(10)

        # retention: N backdated tiny segments
        n = args.retention
        old = datetime(2024, 1, 1, tzinfo=timezone.utc)
        from concurrent.futures import ThreadPoolExecutor

        keys = [f"ORG/OLD/{i:06d}.mp4" for i in range(n)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: rt.store.put_bytes(s.bucket_footage, k, b"x"), keys))
        with session_scope(rt.sessions) as db:
            add_camera(db, camera_id="OLD", org_id="ORG", name="o", role="entrance", url="rtsp://h/o")
            db.flush()
            db.add_all([Segment(camera_id="OLD", org_id="ORG", start_at=old + timedelta(minutes=i),
                                end_at=old + timedelta(minutes=i + 1), duration_s=60, bytes=1, sha256="0" * 64,
                                object_key=k) for i, k in enumerate(keys)])
        t = time.perf_counter()
        res = run_retention(rt.sessions, rt.store, s, actor="bench")
        t_ret = time.perf_counter() - t
        rt.close()
    finally:
        sw.down()

    ms = lambda x: f"{x * 1000:.0f} ms"  # noqa: E731
    print(f"machine: {os.cpu_count()} cores; footage {args.width}x{args.height} 25 fps {args.bitrate // 1000} kbit/s, "
          f"60 s segments ({seg_mb:.1f} MB each), render {t_render:.1f} s")
    print(f"clip 2 min across 3 segments: {size / 1e6:.1f} MB, reps {args.reps}")
    print(f"  /clip (200)         TTFB median {ms(statistics.median(x[0] for x in full))} p95 {ms(pct([x[0] for x in full], 95))}"
          f" | full median {ms(statistics.median(x[1] for x in full))} p95 {ms(pct([x[1] for x in full], 95))}")
    print(f"  /clip Range 1 MB mid TTFB median {ms(statistics.median(x[0] for x in mid))} p95 {ms(pct([x[0] for x in mid], 95))}"
          f" | full median {ms(statistics.median(x[1] for x in mid))}")
    print(f"  ffmpeg concat -c copy TTFB median {ms(statistics.median(x[0] for x in base_runs))} p95 {ms(pct([x[0] for x in base_runs], 95))}"
          f" | full median {ms(statistics.median(x[1] for x in base_runs))} p95 {ms(pct([x[1] for x in base_runs], 95))}")
    print(f"retention: {res.counts['segments_deleted']} segments in {t_ret:.2f} s = "
          f"{res.counts['segments_deleted'] / t_ret:.0f} deletes/s (batch {s.retention_batch})")


if __name__ == "__main__":
    main()
