"""What recording the sub-stream and checking on it saves (issue 18; docs/benchmarks.md).

    .venv/bin/python bench/substream.py [--main 1280x720:2000000 --sub 640x360:512000 --codec h264
                                         --window 150 --reps 3]

The simulator renders one counter scene (the insured person at the counter, a passer-by, an empty
counter) at the main stream's size and bitrate and at the sub-stream's, H.264 or H.265 (``--codec``),
keyframe every 2 s, 25 fps; each is remuxed (no transcoding) into 10 s fragmented-MP4 segments as
the recorder writes them, looped over a settlement window of ``--window`` seconds (the default
window is 120 s before to 30 s after). For each stream, in the same run:

* storage: bytes per camera-hour of the segments;
* check CPU per settlement: process CPU seconds of what a check does with the footage of one camera
  window - reading the frames (correlate/footage.py ``sample_frames``: key frames only, one every
  ``correlate_sample_interval_s``), the presence analysis, and the face detector on every sampled
  frame (at ``correlate_detect_max_side``) - median over ``--reps``.
The main stream's figures are the baseline; the ratios are what to read on a shared machine.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
SEG_S = 10


@dataclass
class Seg:  # what sample_frames reads of a segments row
    object_key: str
    start_at: datetime
    duration_s: float


class Files:
    """Segments kept in memory (the store's transfer is not what is measured)."""

    def __init__(self):
        self.data: dict[str, bytes] = {}

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.data[key]


def segments(footage, window_s: float, files: Files, name: str) -> list[Seg]:
    """The footage looped over ``window_s`` as 10 s fMP4 segments (remuxed as the recorder does)."""
    import av

    from ingest.spool import FMP4_OPTIONS, remux_stream

    fps = int(footage.fps)
    per_seg = SEG_S * fps
    out: list[Seg] = []
    src = av.open(str(footage.h264_path), format="hevc" if footage.codec == "h265" else "h264")
    try:  # the input stream is the output's template: kept open while muxing
        ist = src.streams.video[0]
        pkts = [(bytes(p), p.is_keyframe) for p in src.demux(ist) if p.size]
        n = int(window_s * fps)
        tb = Fraction(1, 90000)
        for s0 in range(0, n, per_seg):
            buf = io.BytesIO()
            with av.open(buf, "w", format="mp4", options=FMP4_OPTIONS) as dst:
                ost = remux_stream(dst, ist)
                for i in range(s0, min(s0 + per_seg, n)):
                    data, key = pkts[i % len(pkts)]
                    pkt = av.Packet(data)
                    pkt.pts = pkt.dts = int((i - s0) * 90000 / fps)
                    pkt.duration = int(90000 / fps)
                    pkt.is_keyframe = key
                    pkt.time_base = tb
                    pkt.stream = ost
                    dst.mux(pkt)
            name_ = f"{name}/{s0 // per_seg:04d}.mp4"
            files.data[name_] = buf.getvalue()
            out.append(Seg(name_, T0 + timedelta(seconds=s0 / fps), SEG_S))
    finally:
        src.close()
    return out


def check_cpu(files: Files, segs: list[Seg], window_s: float, pipeline, settings) -> tuple[float, int, tuple]:
    """CPU seconds of reading, analysing and searching the frames of one camera window."""
    from correlate import footage as footage_mod
    from correlate import presence as presence_mod
    from correlate.check import detect_wide

    c0 = time.process_time()
    frames = footage_mod.sample_frames(files, "b", "CAM", segs, T0, T0 + timedelta(seconds=window_s),
                                       settings.correlate_sample_interval_s)
    presence_mod.analyze([f.image for f in frames], [f.blind for f in frames])
    for f in frames:
        detect_wide(pipeline, f.image, settings.correlate_detect_max_side)
    return time.process_time() - c0, len(frames), frames[0].image.shape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--main", default="1280x720:2000000", help="WxH:bitrate of the main stream")
    ap.add_argument("--sub", default="640x360:512000", help="WxH:bitrate of the sub-stream")
    ap.add_argument("--codec", choices=("h264", "h265"), default="h264")
    ap.add_argument("--window", type=float, default=150.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from camsim.footage import Event, render
    from kernel.settings import Settings
    from vision.pipeline import FacePipeline

    settings = Settings(models_dir=Path(os.environ.get("DUALCHECK_TEST_MODELS", "var/models")))
    pipeline = FacePipeline.from_settings(settings)
    scene = [Event(0, 12, "face", {"image": "obama.jpg"}), Event(12, 20, "empty"),
             Event(20, 30, "face", {"image": "biden.jpg"})]
    files, rows = Files(), {}
    for name, spec in (("main", args.main), ("sub", args.sub)):
        size, bitrate = spec.split(":")
        w, h = (int(x) for x in size.split("x"))
        fp = render(scene, width=w, height=h, fps=25, bitrate=int(bitrate), keyint_s=2.0, codec=args.codec)
        segs = segments(fp, args.window, files, name)
        total = sum(len(files.data[s.object_key]) for s in segs)
        check_cpu(files, segs, args.window, pipeline, settings)  # warm-up
        runs = [check_cpu(files, segs, args.window, pipeline, settings) for _ in range(args.reps)]
        rows[name] = {"size": f"{w}x{h}", "mb_per_hour": total / args.window * 3600 / 1e6,
                      "cpu": statistics.median(r[0] for r in runs), "frames": runs[0][1]}
    m, s = rows["main"], rows["sub"]
    print(f"{args.codec.upper()}, 25 fps, keyframe every 2 s; window {args.window:g} s; reps {args.reps}; "
          f"{os.cpu_count()} cores")
    print("| stream | size | storage MB per camera-hour | check CPU s per settlement (one camera) | frames read |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['size']} | {r['mb_per_hour']:.0f} | {r['cpu']:.2f} | {r['frames']} |")
    print(f"sub / main: storage {s['mb_per_hour'] / m['mb_per_hour']:.2f}x, check CPU {s['cpu'] / m['cpu']:.2f}x; "
          f"recording both adds {s['mb_per_hour'] / m['mb_per_hour'] * 100:.0f} % to the main stream's bytes")


if __name__ == "__main__":
    main()
