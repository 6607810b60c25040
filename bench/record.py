"""Recorder cost per stream against ffmpeg's segment muxer, on the same simulated RTSP streams.

    .venv/bin/python bench/record.py [--levels 8,32,64] [--servers 8] [--warmup 15] [--measure 100]
                                      [--segment-seconds 60] [--codec h264|h265] [--bframes 0]

Footage: the simulator renders 1280x720, 25 fps, ~1 Mbit/s H.264 or H.265 (``--codec``; keyframe every 2 s,
``--bframes`` B-frames) once and serves it
pre-encoded (no encoding per client). ``--servers`` GStreamer RTSP servers each serve a shared media;
the cameras of a level are spread over them (several registry cameras may share one server URL:
the recorder opens one RTSP session per camera all the same).

For each level N, in the same run and on the same streams:
* one ``dualcheck record`` process records N cameras into a local SeaweedFS + SQLite index;
* N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time S -reset_timestamps 1`` processes.
Only those processes are measured (from /proc: user+system CPU over the measurement window, RSS at its
end); the simulator servers and SeaweedFS are not counted. Segment latency is ``created_at - end_at``
of the index rows (segment end -> uploaded and indexed); dropped segments are holes in the index
between consecutive segments of a camera plus recording_gaps rows, over the measurement window.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from camsim import SimulatedCamera, render, scenario_short  # noqa: E402
from storage.db import make_engine, make_sessionmaker, migrate, session_scope  # noqa: E402
from storage.models import Camera, Organisation, RecordingGap, Segment  # noqa: E402
from storage.seaweed import LocalSeaweed  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port_base() -> int:
    from tests.conftest import _port_base

    return _port_base()


def run_level(n: int, cams: list[SimulatedCamera], sw: LocalSeaweed, work: Path, args) -> dict:
    lvl = work / f"level-{n}"
    lvl.mkdir()
    db_url = f"sqlite:///{lvl / 'index.db'}"
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as db:
        db.add(Organisation(id="bench", name="bench"))
        db.flush()
        for i in range(n):
            db.add(Camera(id=f"cam{i:03d}", org_id="bench", name=f"cam{i}", role="entrance",
                          rtsp_url=cams[i % len(cams)].url, covers=[]))
    env = dict(os.environ, DUALCHECK_DATA_DIR=str(lvl), DUALCHECK_DATABASE_URL=db_url,
               DUALCHECK_S3_ENDPOINT=sw.endpoint, DUALCHECK_S3_ACCESS_KEY=sw.access_key,
               DUALCHECK_S3_SECRET_KEY=sw.secret_key, DUALCHECK_BUCKET_FOOTAGE=f"bench-{n}",
               DUALCHECK_SEGMENT_SECONDS=str(args.segment_seconds), DUALCHECK_LOG_LEVEL="WARNING")
    rec_log = open(lvl / "recorder.log", "wb")
    rec = subprocess.Popen([str(Path(sys.executable).with_name("dualcheck")), "record"], env=env,
                           stdout=rec_log, stderr=subprocess.STDOUT)
    ff_dir = lvl / "ffmpeg"
    ff_dir.mkdir()
    ffs = []
    for i in range(n):
        d = ff_dir / f"cam{i:03d}"
        d.mkdir()
        ffs.append(subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", cams[i % len(cams)].url,
             "-c", "copy", "-f", "segment", "-segment_time", str(args.segment_seconds), "-reset_timestamps", "1",
             str(d / "seg%05d.mp4")], stdout=subprocess.DEVNULL, stderr=open(d / "ffmpeg.log", "wb")))
    time.sleep(args.warmup)
    t0 = time.time()
    c0_rec = cpu_s(rec.pid)
    c0_ff = [cpu_s(p.pid) for p in ffs]
    time.sleep(args.measure)
    t1 = time.time()
    wall = t1 - t0
    c1_rec = cpu_s(rec.pid)
    c1_ff = [cpu_s(p.pid) if p.poll() is None else c0 for p, c0 in zip(ffs, c0_ff)]
    rec_rss = rss_mb(rec.pid)
    ff_rss = [rss_mb(p.pid) for p in ffs if p.poll() is None]
    ff_dead = sum(p.poll() is not None for p in ffs)
    # segments ending in the window are finished by now: give them time to be uploaded and indexed
    time.sleep(10)
    rec.send_signal(signal.SIGTERM)
    for p in ffs:
        p.send_signal(signal.SIGINT)
    rec.wait(60)
    for p in ffs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    rec_log.close()

    lo = datetime.fromtimestamp(t0, timezone.utc)
    hi = datetime.fromtimestamp(t1, timezone.utc)
    latencies, holes, seg_count, per_cam = [], 0, 0, {}
    with session_scope(sessions) as db:
        rows = db.query(Segment).order_by(Segment.camera_id, Segment.start_at).all()
        gaps = db.query(RecordingGap).filter(RecordingGap.start_at < hi).count()
    for s in rows:
        per_cam.setdefault(s.camera_id, []).append(s)
    for cam_id, segs in per_cam.items():
        for a, b in zip(segs, segs[1:]):
            if lo <= a.end_at <= hi and abs((b.start_at - a.end_at).total_seconds()) > 0.001:
                holes += 1
        for s in segs:
            if lo <= s.end_at <= hi:
                seg_count += 1
                latencies.append((s.created_at - s.end_at).total_seconds())
    missing_cams = n - sum(1 for c in per_cam.values() if any(lo <= s.end_at <= hi for s in c))
    ff_segments = sum(len(list((ff_dir / f"cam{i:03d}").glob("seg*.mp4"))) for i in range(n))
    engine.dispose()
    shutil.rmtree(ff_dir, ignore_errors=True)  # ~8 MB per camera-minute: do not keep it
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
    rec_core = (c1_rec - c0_rec) / wall / n * 100
    ff_core = sum(b - a for a, b in zip(c0_ff, c1_ff)) / wall / n * 100
    return {
        "n": n, "window_s": round(wall, 1),
        "rec_cpu_pct_per_stream": round(rec_core, 3), "ffmpeg_cpu_pct_per_stream": round(ff_core, 3),
        "ratio": round(rec_core / ff_core, 2) if ff_core else float("nan"),
        "rec_rss_mb": round(rec_rss, 1), "rec_rss_mb_per_stream": round(rec_rss / n, 2),
        "ffmpeg_rss_mb_per_stream": round(statistics.mean(ff_rss), 1) if ff_rss else None,
        "segments_indexed": seg_count, "ffmpeg_segments_written": ff_segments,
        "latency_p50_s": round(q(0.5), 2), "latency_p95_s": round(q(0.95), 2), "latency_max_s": round(q(1.0), 2),
        "dropped_segments": holes, "gaps": gaps, "cameras_without_segments": missing_cams,
        "ffmpeg_died": ff_dead,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", default="8,32,64")
    ap.add_argument("--servers", type=int, default=8)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--measure", type=float, default=100)
    ap.add_argument("--segment-seconds", type=int, default=60)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--bitrate", type=int, default=1_000_000)
    ap.add_argument("--codec", choices=("h264", "h265"), default="h264")
    ap.add_argument("--bframes", type=int, default=0)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    footage = render(scenario_short(), width=args.width, height=args.height, fps=25, bitrate=args.bitrate,
                     keyint_s=2.0, codec=args.codec, bframes=args.bframes,
                     testdata=Path(os.environ.get("DUALCHECK_SHARED", REPO.parent / "shared")) / "testdata")
    mbit = footage.h264_path.stat().st_size * 8 / footage.duration_s / 1e6
    print(f"footage: {args.codec} {args.width}x{args.height} 25 fps, {mbit:.2f} Mbit/s, keyframe every 2 s, "
          f"{args.bframes} B-frames", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-record-", dir=REPO / "var"))
    base = free_port_base()
    sw = LocalSeaweed(data_dir=work / "seaweed", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="b" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24))
    cams = [SimulatedCamera(footage) for _ in range(args.servers)]
    results = []
    try:
        sw.up()
        for c in cams:
            c.start()
        for n in levels:
            r = run_level(n, cams, sw, work, args)
            results.append(r)
            print(r, flush=True)
    finally:
        for c in cams:
            c.close()
        sw.down()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| streams | recorder CPU %/stream | ffmpeg CPU %/stream | ratio | recorder RSS MB (per stream) | "
          "ffmpeg RSS MB/stream | segments indexed | latency p50/p95/max s | dropped | gaps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['n']} | {r['rec_cpu_pct_per_stream']:.2f} | {r['ffmpeg_cpu_pct_per_stream']:.2f} | "
              f"{r['ratio']:.2f} | {r['rec_rss_mb']:.0f} ({r['rec_rss_mb_per_stream']:.1f}) | "
              f"{r['ffmpeg_rss_mb_per_stream']} | {r['segments_indexed']} (ffmpeg {r['ffmpeg_segments_written']}) | "
              f"{r['latency_p50_s']}/{r['latency_p95_s']}/{r['latency_max_s']} | {r['dropped_segments']} | "
              f"{r['gaps']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
