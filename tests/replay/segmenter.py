"""Make real footage segments the way the recorder does, without the recorder.

Footage from the simulator's renderer (an Annex-B H.264 elementary stream with a frame index) is
remuxed with PyAV - no transcoding - into fragmented MP4 segments
(``movflags=frag_keyframe+empty_moov+default_base_moof``), cut at keyframes, each with timestamps
starting at 0 at its ``start_at``. Segments are uploaded with ``ObjectStore.put_file`` under
``<org>/<camera>/YYYY/MM/DD/HH/<start>.mp4`` and indexed as :class:`Segment` rows. The footage loops
when more time is asked for than it lasts; ``gaps`` leaves holes (no segment) in the timeline.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av

from ingest.spool import remux_stream
from storage.models import Segment
from storage.objects import ObjectStore

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def segment_key(org_id: str, camera_id: str, start: datetime) -> str:
    return f"{org_id}/{camera_id}/{start:%Y/%m/%d/%H}/{start:%Y%m%dT%H%M%S.%fZ}.mp4"


@dataclass
class MadeSegment:
    start_at: datetime
    end_at: datetime
    key: str
    sha256: str
    size: int


def _gop_packets(footage):
    """The footage's frames as (bytes, is_key) grouped by GOP (each GOP starts with a keyframe)."""
    data = footage.h264_path.read_bytes()
    gops: list[list[tuple[bytes, bool]]] = []
    for off, size, key in footage.frame_index():
        if key or not gops:
            gops.append([])
        gops[-1].append((data[off:off + size], key))
    return gops


def write_segments(footage, out_dir: Path, seconds: list[float]) -> list[tuple[Path, float]]:
    """Write one fMP4 file per requested length (rounded to whole GOPs), footage looping on.

    Returns (path, actual duration) pairs."""
    gops = _gop_packets(footage)
    fps = footage.fps
    tb = Fraction(1, 90000)
    step = int(round(90000 / fps))
    gop_i = 0
    out: list[tuple[Path, float]] = []
    with av.open(str(footage.h264_path), format=footage.decoder) as src:
        template = src.streams.video[0]
        for n, want in enumerate(seconds):
            path = out_dir / f"seg{n:05d}.mp4"
            frames = 0
            with av.open(str(path), "w", format="mp4", options={"movflags": MOVFLAGS}) as dst:
                ost = remux_stream(dst, template)  # as the recorder does: H.265 tagged hvc1
                ost.time_base = tb
                while frames == 0 or frames / fps < want - 1e-6:
                    for data, key in gops[gop_i % len(gops)]:
                        pkt = av.Packet(data)
                        pkt.pts = pkt.dts = frames * step
                        pkt.duration = step
                        pkt.time_base = tb
                        pkt.is_keyframe = key
                        pkt.stream = ost
                        dst.mux(pkt)
                        frames += 1
                    gop_i += 1
            out.append((path, frames / fps))
    return out


def make_segments(db, store: ObjectStore, bucket: str, footage, *, org_id: str, camera_id: str,
                  start: datetime, total_s: float, segment_s: float = 10.0,
                  gaps: list[tuple[float, float]] = (), workdir: Path | None = None) -> list[MadeSegment]:
    """Record ``total_s`` seconds of wall time from ``start`` (minus ``gaps``, given as (offset_s,
    length_s) from ``start``) as real segments in the store and the index. Gap boundaries should be
    on segment boundaries for exact times; segments are whole GOPs."""
    made: list[MadeSegment] = []
    gaps = sorted(gaps)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t = 0.0
        plan: list[tuple[float, float]] = []  # (offset, length)
        while t < total_s - 1e-6:
            g = next((g for g in gaps if g[0] <= t + 1e-6 < g[0] + g[1]), None)
            if g is not None:
                t = g[0] + g[1]
                continue
            nxt = min([g[0] for g in gaps if g[0] > t + 1e-6] + [total_s, t + segment_s])
            plan.append((t, nxt - t))
            t = nxt
        files = write_segments(footage, Path(tmp), [length for _, length in plan])
        for (off, length), (path, dur) in zip(plan, files):
            if abs(dur - length) > 1e-6:
                raise ValueError(f"segment of {length} s is not a whole number of GOPs ({dur} s)")
            s = start + timedelta(seconds=off)
            e = s + timedelta(seconds=dur)
            key = segment_key(org_id, camera_id, s)
            obj = store.put_file(bucket, key, path, content_type="video/mp4")
            db.add(Segment(camera_id=camera_id, org_id=org_id, start_at=s, end_at=e, duration_s=dur,
                           bytes=obj.size, sha256=obj.sha256, object_key=key, recorder_id="test-segmenter"))
            made.append(MadeSegment(s, e, key, obj.sha256, obj.size))
    db.flush()
    return made
