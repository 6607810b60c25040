"""H.265 replay for browsers without HEVC: time to first byte of an H.264 copy (docs/benchmarks.md).

    .venv/bin/python bench/transcode.py [--width 1280 --height 720 --bitrate 1000000 --clip 30 --reps 3]

Set-up shared with bench/replay.py (bench/replay_setup.py): its own SeaweedFS and SQLite index, 3
minutes of H.265 simulator footage as 60 s segments, the API under uvicorn on localhost. Measures,
for a clip of ``--clip`` seconds:

* the clip as recorded (remux, H.265): time to first byte and total;
* ``hevc=0`` the first time (transcoded on demand to H.264, one transcode slot): time to first byte,
  total, and the API process's CPU seconds per clip second;
* ``hevc=0`` again (cached): time to first byte and total;
* the baseline in the same run: ``ffmpeg -c:v libx264 -preset veryfast -crf 26`` of the same segments
  read from the same store (presigned URLs), fragmented MP4 to a pipe: time to first byte and total.
Each cold run asks for a different clip (start moved by 2 s), so nothing is cached.

and for an HLS range (``hls.m3u8?hevc=0``: a media segment per recorded segment, each transcoded when
first asked for): a media segment as recorded, its H.264 copy the first time (init + media: what a
player needs before the first picture) and cached, beside the same ffmpeg baseline on that segment.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.replay_setup import T0, ffmpeg_to_pipe, q, replay_bench, timed_get, timedelta  # noqa: E402

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-movflags",
        "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--bitrate", type=int, default=1_000_000)
    ap.add_argument("--clip", type=float, default=30.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from camsim.footage import render, scenario_short

    footage = render(scenario_short(), width=args.width, height=args.height, fps=25, bitrate=args.bitrate,
                     keyint_s=2.0, codec="h265")
    segment_s = 60
    with replay_bench(footage, total_s=segment_s * max(3, args.reps + 1), segment_s=segment_s) as rb:
        port, hdr = rb.port, rb.headers

        def clip_path(offset: float):
            a = T0 + timedelta(seconds=30 + offset)
            b = a + timedelta(seconds=args.clip)
            return f"/v1/cameras/CAM/clip?start={q(a)}&end={q(b)}", a, b

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
        lst = rb.concat_list(a, b)
        base_runs = [ffmpeg_to_pipe(["-f", "concat", "-safe", "0", "-protocol_whitelist", "file,http,tcp", "-i",
                                     str(lst), "-t", str(args.clip), *X264]) for _ in range(args.reps)]

        # HLS: one media segment per recorded segment; each rep a segment not asked for before
        segs = rb.segments(T0, T0 + timedelta(seconds=segment_s * (args.reps + 1)))
        hls = f"/v1/cameras/CAM/hls.m3u8?start={q(T0)}&end={q(segs[-1].end_at)}"
        timed_get(port, hls + "&hevc=0", hdr)
        hls_orig, hls_cold, hls_cached, hls_cpu, hls_base = [], [], [], [], []
        for seg in segs[:args.reps]:
            media = f"/v1/cameras/CAM/hls/{seg.id}/media.m4s"
            init = f"/v1/cameras/CAM/hls/{seg.id}/init.mp4"
            hls_orig.append(timed_get(port, media, hdr))
            c0 = sum(os.times()[:2])
            i_ttfb, i_total, _ = timed_get(port, init + "?hevc=0", hdr)  # starts the transcode
            m_ttfb, m_total, _ = timed_get(port, media + "?hevc=0", hdr)  # follows it
            hls_cold.append((i_ttfb, i_total + m_ttfb, i_total + m_total))
            hls_cpu.append(sum(os.times()[:2]) - c0)
            hls_cached.append(timed_get(port, media + "?hevc=0", hdr))
            url = rb.rt.store.presigned_get(rb.settings.bucket_footage, seg.object_key)
            hls_base.append(ffmpeg_to_pipe(["-i", url, *X264]))

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
    print()
    print(f"HLS, {segment_s} s media segments:")
    print("| request | TTFB median s | first media byte median s | total median s |")
    print("|---|---|---|---|")
    print(f"| media segment as recorded (H.265) | {med(x[0] for x in hls_orig):.3f} | {med(x[0] for x in hls_orig):.3f} | "
          f"{med(x[1] for x in hls_orig):.3f} |")
    print(f"| hevc=0 init + media, first time | {med(x[0] for x in hls_cold):.2f} | {med(x[1] for x in hls_cold):.2f} | "
          f"{med(x[2] for x in hls_cold):.2f} |")
    print(f"| hevc=0 media, cached | {med(x[0] for x in hls_cached):.3f} | {med(x[0] for x in hls_cached):.3f} | "
          f"{med(x[1] for x in hls_cached):.3f} |")
    print(f"| baseline: ffmpeg libx264 veryfast of the segment | {med(x[0] for x in hls_base):.2f} | "
          f"{med(x[0] for x in hls_base):.2f} | {med(x[1] for x in hls_base):.2f} |")
    print(f"HLS transcode CPU: {med(hls_cpu):.2f} s per {segment_s} s segment "
          f"({med(hls_cpu) / segment_s:.3f} core-s per second of footage)")


if __name__ == "__main__":
    main()
