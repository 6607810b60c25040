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
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.replay_setup import T0, ffmpeg_to_pipe, pct, q, replay_bench, timed_get  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--bitrate", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--retention", type=int, default=10_000)
    args = ap.parse_args()

    from camsim.footage import render, scenario_short
    from ingest.cameras import add_camera
    from storage.db import session_scope
    from storage.models import Segment
    from storage.retention import run_retention

    t_render = time.perf_counter()
    footage = render(scenario_short(), width=args.width, height=args.height, fps=25, bitrate=args.bitrate,
                     keyint_s=2.0)
    t_render = time.perf_counter() - t_render
    with replay_bench(footage) as rb:
        s, rt, port, hdr = rb.settings, rb.rt, rb.port, rb.headers
        seg_mb = sum(m.size for m in rb.made) / len(rb.made) / 1e6
        a, b = T0 + timedelta(seconds=30), T0 + timedelta(seconds=150)
        path = f"/v1/cameras/CAM/clip?start={q(a)}&end={q(b)}"
        timed_get(port, path, hdr)  # warm-up
        full = [timed_get(port, path, hdr) for _ in range(args.reps)]
        size = full[0][2]
        mid = [timed_get(port, path, {**hdr, "Range": f"bytes={size // 2}-{size // 2 + 1_000_000}"})
               for _ in range(args.reps)]

        # baseline: ffmpeg concat -c copy of the same segments from the same store
        lst = rb.concat_list(a, b)
        base_runs = [ffmpeg_to_pipe(["-f", "concat", "-safe", "0", "-protocol_whitelist", "file,http,tcp",
                                     "-i", str(lst), "-c", "copy", "-movflags",
                                     "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"])
                     for _ in range(args.reps)]

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
