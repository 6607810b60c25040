"""Remux (no transcoding) of one camera's packets (H.264 or H.265) into fragmented-MP4 segments cut at keyframes.

Timestamps in a segment file start at 0 at the segment's ``start_at``: the wall time of a packet is
``start_at + pts * time_base`` (the replay/clip code relies on this). Segment times are integer
microseconds so that a segment's ``start_at`` can equal its predecessor's ``end_at`` exactly.
"""
from __future__ import annotations

import logging
from fractions import Fraction

import av

from ingest.clock import ticks_to_us
from ingest.spool import (
    FMP4_OPTIONS,
    SegmentMeta,
    Spool,
    SpoolItem,
    object_key,
    remux_stream,
    spool_name,
    write_part_sidecar,
)
from storage.objects import file_sha256

log = logging.getLogger(__name__)


class SegmentWriter:
    """One ``.part`` file being written."""

    def __init__(self, spool: Spool, camera_id: str, org_id: str, in_stream, first_pts: int, start_us: int,
                 provisional: bool, stream: str = "main"):
        self.spool = spool
        self.camera_id, self.org_id, self.stream = camera_id, org_id, stream
        self.tb = Fraction(in_stream.time_base)
        self.first_pts = first_pts
        self.start_us = start_us
        # provisional: the first segment of a connection, whose start is refined while the clock
        # estimate settles (RTCP sender report, smallest receive latency); chained segments are fixed.
        self.provisional = provisional
        self.path = spool.new_part(spool_name(camera_id, stream))
        write_part_sidecar(self.path, camera_id, org_id, start_us, stream)
        self.out = av.open(str(self.path), "w", format="mp4", options=FMP4_OPTIONS)
        self.ost = remux_stream(self.out, in_stream)  # H.264 avc1, H.265 hvc1
        self.counted = 0  # bytes added to the spool account so far
        self.end_ticks = first_pts  # pts just after the last written packet
        self.packets = 0

    def write(self, pkt, pts: int, dts: int, duration: int) -> None:
        pkt.pts = pts - self.first_pts
        pkt.dts = dts - self.first_pts
        pkt.stream = self.ost
        self.out.mux(pkt)
        self.packets += 1
        self.end_ticks = max(self.end_ticks, pts + duration)
        self.spool.add(pkt.size)
        self.counted += pkt.size

    def refine_start(self, start_us: int) -> None:
        if self.provisional and abs(start_us - self.start_us) > 20_000:
            self.start_us = start_us
            write_part_sidecar(self.path, self.camera_id, self.org_id, start_us, self.stream)

    def end_us_at(self, pts: int) -> int:
        return self.start_us + ticks_to_us(pts - self.first_pts, self.tb)

    def finish(self, end_pts: int | None = None) -> tuple[SpoolItem, SegmentMeta] | None:
        """Close the file; ``end_pts`` is the pts of the keyframe that starts the next segment (so the
        two are back to back), default the end of the last packet."""
        self.out.close()
        size = self.path.stat().st_size
        self.spool.add(size - self.counted)
        self.counted = size
        if self.packets == 0:
            self.path.unlink(missing_ok=True)
            self.path.with_name(self.path.name + ".json").unlink(missing_ok=True)
            self.spool.add(-size)
            return None
        end_us = self.end_us_at(self.end_ticks if end_pts is None else end_pts)
        meta = SegmentMeta(self.camera_id, self.org_id, self.start_us, end_us, size, file_sha256(self.path),
                           object_key(self.org_id, self.camera_id, self.start_us, self.stream), stream=self.stream)
        return self.spool.finish(self.path, meta), meta

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:
            pass
