"""Footage of a window: is it all there yet, and the frames to look at.

Sampling (measured, docs/correlation.md): decoding every frame of a 150 s window of 640x360 H.264
costs ~8.5 s of CPU; decoding only the keyframes (``skip_frame=NONKEY``) costs ~0.33 s and gives one
frame per GOP (1-4 s on counter cameras). People stand at a counter for tens of seconds, so one
frame every ``correlate_sample_interval_s`` (2 s) is plenty: keyframes are used whenever the camera's
keyframe interval is at most 1.5x that; keyframes closer than 0.75x are thinned out. A camera with
sparse keyframes (long GOP) is decoded in full and sampled at the interval.

A camera whose sub-stream is recorded beside the main one (``record_streams`` "both") and set to be
analysed on it (``analyse_stream`` "sub") is checked on the sub-stream's segments whenever they cover
the window as well as the main ones: fewer pixels to decode per frame (measured, docs/benchmarks.md).
Otherwise, and for replay and export always, the main stream.

Frames that are black (a stalled camera writes none, but a lens cap or a dead sensor does) count as
not covered.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import av
import numpy as np
from sqlalchemy.orm import Session

from storage.clips import segments_in
from storage.models import CameraStatus, Segment

log = logging.getLogger(__name__)

TOLERANCE_S = 0.6  # holes shorter than this (timestamp rounding, segment joins) are not gaps


@dataclass
class Frame:
    camera_id: str
    at: datetime
    image: np.ndarray
    blind: bool = False


@dataclass
class Readiness:
    ready: bool
    reason: str
    covered_s: float
    span_s: float
    segments: list[Segment]
    stream: str = "main"  # whose segments: the main stream's, or the sub-stream's

    @property
    def coverage(self) -> float:
        return self.covered_s / self.span_s if self.span_s > 0 else 0.0


def covered_seconds(segs: list[Segment], start: datetime, end: datetime) -> tuple[float, datetime]:
    """Seconds of [start, end) covered by segments, and how far the contiguous cover from ``start`` reaches."""
    total, cursor = 0.0, start
    reach = start
    for s in sorted(segs, key=lambda x: x.start_at):
        a, b = max(s.start_at, start), min(s.end_at, end)
        if b <= cursor:
            continue
        total += (b - max(a, cursor)).total_seconds()
        if (a - reach).total_seconds() <= TOLERANCE_S:
            reach = max(reach, b)
        cursor = b
    return total, reach


def readiness(db: Session, settings, camera_id: str, start: datetime, end: datetime,
              now: datetime, stream: str = "main") -> Readiness:
    """:func:`main_readiness`; with ``stream`` "sub", the sub-stream's segments instead of the main
    ones when the main footage is ready and the sub-stream covers the window as much (else main)."""
    rd = main_readiness(db, settings, camera_id, start, end, now)
    if rd.ready and stream == "sub":
        segs = segments_in(db, camera_id, start, end, "sub")
        covered, _reach = covered_seconds(segs, start, end)
        if segs and covered >= rd.covered_s - TOLERANCE_S:
            return Readiness(True, rd.reason, covered, rd.span_s, segs, "sub")
        if (now - end).total_seconds() < settings.correlate_footage_grace_s:
            # the sub-stream's own connection cuts its segments at other moments than the main one's:
            # its last segment of the window may still be on its way
            return Readiness(False, "waiting for the sub-stream's segments", covered, rd.span_s, segs, "sub")
    return rd


def main_readiness(db: Session, settings, camera_id: str, start: datetime, end: datetime,
                   now: datetime) -> Readiness:
    """Should the check of this window run now, or wait for footage still on its way?

    Ready when the segments reach the window end; otherwise wait while (a) the window ended less than
    ``correlate_footage_grace_s`` ago, or (b) the camera is being recorded (its status, written by the
    recorder, is fresh and says online, or it holds spooled bytes not yet uploaded) and the window
    ended less than ``correlate_footage_max_wait_s`` ago. Otherwise decide with what is there.
    """
    segs = segments_in(db, camera_id, start, end)
    covered, _reach = covered_seconds(segs, start, end)
    span = (end - start).total_seconds()
    last_end = max((s.end_at for s in segs), default=None)
    if last_end is not None and (end - last_end).total_seconds() <= TOLERANCE_S:
        return Readiness(True, "footage reaches the window end", covered, span, segs)
    # a later segment means the recorder has moved past the window: what is missing is a gap
    later = db.query(Segment.id).filter(Segment.camera_id == camera_id, Segment.stream == "main",
                                        Segment.start_at >= end).first()
    if later is not None:
        return Readiness(True, "the recording continues after the window; missing parts are gaps", covered, span,
                         segs)
    since_end = (now - end).total_seconds()
    if since_end < settings.correlate_footage_grace_s:
        return Readiness(False, "the window ended recently; its segments may still be uploading", covered, span,
                         segs)
    st = db.get(CameraStatus, camera_id)
    recording = False
    if st is not None and st.updated_at is not None:
        fresh = (now - st.updated_at).total_seconds() <= max(settings.camera_offline_after_s * 2, 60)
        recording = fresh and (st.state == "online" or (st.spool_bytes or 0) > 0)
    if recording and since_end < settings.correlate_footage_max_wait_s:
        return Readiness(False, "the camera is being recorded; waiting for its segments to be uploaded", covered,
                         span, segs)
    why = "camera offline or not recorded" if not recording else "waited the longest allowed"
    return Readiness(True, f"deciding with the footage there is ({why})", covered, span, segs)


def _is_blind(img: np.ndarray) -> bool:
    small = img[::8, ::8]
    return float(small.mean()) < 12 and float(small.std()) < 6


def _decode(data: bytes, keyframes_only: bool) -> tuple[list[tuple[float, np.ndarray]], float]:
    """(seconds from segment start, BGR frame) pairs, and the median keyframe spacing (s)."""
    out: list[tuple[float, np.ndarray]] = []
    with av.open(io.BytesIO(data)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO" if not keyframes_only else "SLICE"
        if keyframes_only:
            st.codec_context.skip_frame = "NONKEY"
        # a segment's time 0 is its first key frame: with B-frames the muxer moved it to the reorder
        # delay (a frame or two), which start_time says
        t0 = st.start_time or 0
        for fr in c.decode(st):
            if fr.pts is None:
                continue
            out.append((float((fr.pts - t0) * fr.time_base), fr.to_ndarray(format="bgr24")))
    ts = [t for t, _ in out]
    spacing = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
    return out, spacing


def sample_frames(store, bucket: str, camera_id: str, segs: list[Segment], start: datetime, end: datetime,
                  interval_s: float) -> list[Frame]:
    """Frames of [start, end) about ``interval_s`` apart, in time order (see the module docstring)."""
    frames: list[Frame] = []
    last: datetime | None = None
    for seg in sorted(segs, key=lambda s: s.start_at):
        data = store.get_bytes(bucket, seg.object_key)
        decoded, spacing = _decode(data, keyframes_only=True)
        if spacing > interval_s * 1.5 or (len(decoded) <= 1 and seg.duration_s > interval_s * 1.5):
            decoded, _ = _decode(data, keyframes_only=False)
        for off, img in decoded:
            at = seg.start_at + timedelta(seconds=off)
            if at < start or at >= end:
                continue
            if last is not None and (at - last).total_seconds() < interval_s * 0.75:
                continue
            frames.append(Frame(camera_id, at.astimezone(timezone.utc), img, _is_blind(img)))
            last = at
    return frames
