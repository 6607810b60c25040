"""H.265 replay for browsers without HEVC: time to first byte of an H.264 copy (docs/benchmarks.md).

    .venv/bin/python bench/transcode.py [--width 1280 --height 720 --bitrate 1000000 --clip 30 --reps 3]

Starts its own SeaweedFS and SQLite index, records 3 minutes of H.265 simulator footage as 60 s
segments (PyAV remux, as the recorder does), serves the API with uvicorn on localhost and measures,
for a clip of ``--clip`` seconds:

* the clip as recorded (remux, H.265): time to first byte and total;
* ``hevc=0`` the first time (transcoded on demand to H.264, one transcode slot): time to first byte,
  total, and the API process's CPU seconds per clip second;
* ``hevc=0`` again (cached): time to first byte and total;
* the baseline in the same run: ``ffmpeg -c:v libx264 -preset veryfast -crf 26`` of the same segments
  read from the same store (presigned URLs), fragmented MP4 to a pipe: time to first byte and total.
Each cold run asks for a different clip (start moved by 2 s), so nothing is cached.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.replay import timed_get  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--bitrate", type=int, default=1_000_000)
    ap.add_argument("--clip", type=float, default=30.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import uvicorn
    from sqlalchemy import select

    from api.keys import add_organisation, add_service_key
    from camsim.footage import render, scenario_short
    from dualcheck.app import create_app
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.db import migrate, session_scope
    from storage.models import Segment
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
                     bucket_biometrics="bench-bio", rate_limit_user="")
        migrate(s.effective_database_url)
        app = create_app(s, preload_models=False)
        rt = app.state.runtime
        rt.store.ensure_bucket(s.bucket_footage)
        footage = render(scenario_short(), width=args.width, height=args.height, fps=25, bitrate=args.bitrate,
                         keyint_s=2.0, codec="h265")
        t0 = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
        with session_scope(rt.sessions) as db:
            add_organisation(db, "ORG", "Org")
            db.flush()
            key = add_service_key(db, "admin", "bench")
            add_camera(db, camera_id="CAM", org_id="ORG", name="c", role="settlement_counter", url="rtsp://h/s")
            db.flush()
            make_segments(db, rt.store, s.bucket_footage, footage, org_id="ORG", camera_id="CAM", start=t0,
                          total_s=180, segment_s=60, workdir=tmp)
        hdr = {"Authorization": f"Bearer {key}"}

        def clip_path(offset: float) -> tuple[str, datetime, datetime]:
            a = t0 + timedelta(seconds=30 + offset)
            b = a + timedelta(seconds=args.clip)
            return (f"/v1/cameras/CAM/clip?start={a.isoformat().replace('+', '%2B')}"
                    f"&end={b.isoformat().replace('+', '%2B')}", a, b)

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        while not server.started:
            time.sleep(0.05)
        path, a, b = clip_path(0)
        timed_get(port, path, hdr)  # warm-up
        original = [timed_get(port, path, hdr) for _ in range(args.reps)]
        cold, cpu = [], []
        for i in range(args.reps):
            p, _, _ = clip_path(2.0 * (i + 1))
            c0 = sum(os.times()[:2])
            cold.append(timed_get(port, p + "&hevc=0", hdr))
            cpu.append(sum(os.times()[:2]) - c0)
        cached = [timed_get(port, clip_path(2.0)[0] + "&hevc=0", hdr) for _ in range(args.reps)]
        with session_scope(rt.sessions) as db:
            segs = list(db.scalars(select(Segment).where(Segment.camera_id == "CAM", Segment.start_at < b,
                                                         Segment.end_at > a).order_by(Segment.start_at)))
        lst = tmp / "list.txt"
        lst.write_text("".join(f"file '{rt.store.presigned_get(s.bucket_footage, x.object_key)}'\n" for x in segs))
        base_runs = []
        for _ in range(args.reps):
            t = time.perf_counter()
            p = subprocess.Popen(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-protocol_whitelist",
                                  "file,http,tcp", "-i", str(lst), "-t", str(args.clip), "-c:v", "libx264",
                                  "-preset", "veryfast", "-crf", "26", "-movflags",
                                  "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"],
                                 stdout=subprocess.PIPE)
            p.stdout.read(1)
            ttfb = time.perf_counter() - t
            p.stdout.read()
            p.wait()
            base_runs.append((ttfb, time.perf_counter() - t))
        server.should_exit = True
        th.join(10)
    finally:
        sw.down()

    med = statistics.median
    print(f"footage: H.265 {args.width}x{args.height} 25 fps, keyframe every 2 s; clip {args.clip:g} s; "
          f"reps {args.reps}; {os.cpu_count()} cores")
    print("| request | TTFB median s | total median s |")
    print("|---|---|---|")
    print(f"| clip as recorded (H.265 remux) | {med(x[0] for x in original):.3f} | {med(x[1] for x in original):.3f} |")
    print(f"| hevc=0, first time (transcode to H.264) | {med(x[0] for x in cold):.2f} | {med(x[1] for x in cold):.2f} |")
    print(f"| hevc=0, cached | {med(x[0] for x in cached):.3f} | {med(x[1] for x in cached):.3f} |")
    print(f"| baseline: ffmpeg libx264 veryfast to a pipe | {med(x[0] for x in base_runs):.2f} | "
          f"{med(x[1] for x in base_runs):.2f} |")
    print(f"transcode CPU: {med(cpu):.2f} s per clip ({med(cpu) / args.clip:.3f} core-s per clip second)")


if __name__ == "__main__":
    main()
