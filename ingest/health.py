"""Camera health for operators and the HTTP API: is it recording, and where is footage missing?"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.settings import get_settings
from storage.gaps import hole_reason, recorded_reasons, uncovered
from storage.models import Camera, CameraStatus, Segment


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime given where UTC is required")
    return dt.astimezone(timezone.utc)


def camera_health(db: Session, camera_id: str, start: datetime, end: datetime,
                  offline_after_s: float | None = None, now: datetime | None = None) -> dict:
    """Health of one camera over ``[start, end)``.

    Returns ``{"camera_id", "online", "state", "status_age_s", "last_packet_at", "last_segment_end",
    "reconnects", "recorder_id", "spool_bytes", "spool_limit_bytes", "alert", "clock_offset_s", "clock_jumps", "clock_alert",
    "recorded_s", "coverage", "gaps": [...], "sub": None | {"recorded_s", "coverage", "gaps"}}``
    where each gap is ``{"start", "end", "duration_s", "reason"}`` (ISO 8601 UTC; ``end`` None if it
    lasts). Gaps are the holes of the segment index over the range; each takes the reason of the
    ``recording_gaps`` rows that overlap it (``camera_offline``, ``camera_stalled``, ``spool_full`` ...)
    or ``not_recorded`` when the recorder left no reason (e.g. it was down itself). All of that is the
    main stream's; ``sub`` is the same for the sub-stream's recording of a camera that records both, with
    the sub-stream's own connection beside it (``online``, ``state``, ``last_packet_at``, ``last_segment_end``,
    ``reconnects``, ``error``): the two streams connect apart and one can fail alone.

    ``online`` needs a status row written by a recorder within ``offline_after_s`` (default the
    ``camera_offline_after_s`` setting) that says online and a packet within that time.
    """
    if offline_after_s is None:

        offline_after_s = get_settings().camera_offline_after_s
    start, end = _utc(start), _utc(end)
    now = _utc(now) if now else datetime.now(timezone.utc)
    st = db.get(CameraStatus, camera_id)
    age = (now - st.updated_at).total_seconds() if st and st.updated_at else None
    fresh = age is not None and age <= offline_after_s
    packet_fresh = bool(st and st.last_packet_at and (now - st.last_packet_at).total_seconds() <= offline_after_s)
    online = bool(st and fresh and st.state == "online" and packet_fresh)
    if st is None:
        state = "unknown"
    elif not fresh:
        state = "offline"  # no recorder reports for it: nobody records it
    else:
        state = st.state if (st.state != "online" or packet_fresh) else "offline"

    last_seg = db.scalar(select(Segment.end_at).where(Segment.camera_id == camera_id, Segment.stream == "main")
                         .order_by(Segment.end_at.desc()).limit(1))
    # holes of the index, clipped to the range; "now" bounds a range that reaches into the future
    horizon = min(end, now)
    span = (horizon - start).total_seconds()
    recorded, gaps = _recording(db, camera_id, "main", start, horizon, now, online)
    cam = db.get(Camera, camera_id)
    sub = None
    if cam is not None and (cam.record_streams == "both" or cam.analyse_stream == "sub"):
        sub_online = _stream_state(db, st, camera_id, "sub", fresh, now, offline_after_s)["online"]
        sub_s, sub_gaps = _recording(db, camera_id, "sub", start, horizon, now, sub_online)
        sub = {**_stream_state(db, st, camera_id, "sub", fresh, now, offline_after_s),
               "recorded_s": round(sub_s, 3), "coverage": round(sub_s / span, 4) if span > 0 else None,
               "gaps": sub_gaps}
    alert = None
    if st and st.spool_limit_bytes and st.spool_bytes >= st.spool_limit_bytes * _alert_ratio():
        alert = f"spool {100 * st.spool_bytes / st.spool_limit_bytes:.0f}% full"
    offset = st.clock_offset_s if st else None
    clock_alert = None
    if offset is not None and abs(offset) > get_settings().camera_clock_alert_s:
        clock_alert = f"camera clock {offset:+.1f} s off"
    return {
        "camera_id": camera_id,
        "online": online,
        "state": state,
        "status_age_s": round(age, 3) if age is not None else None,
        "last_packet_at": st.last_packet_at.isoformat() if st and st.last_packet_at else None,
        "last_segment_end": last_seg.isoformat() if last_seg else None,
        "reconnects": st.reconnects if st else 0,
        "recorder_id": st.recorder_id if st else None,  # the recorder holding the camera's lease
        "spool_bytes": st.spool_bytes if st else 0,
        "spool_limit_bytes": st.spool_limit_bytes if st else 0,
        "alert": alert,
        "error": st.error if st else None,
        # the camera's clock minus the receive clock (None: it sends no wall clock), and its jumps
        "clock_offset_s": offset,
        "clock_jumps": st.clock_jumps if st else 0,
        "clock_alert": clock_alert,  # over camera_clock_alert_s: the camera's NTP needs fixing
        "recorded_s": round(recorded, 3),
        "coverage": round(recorded / span, 4) if span > 0 else None,
        "gaps": gaps,
        "sub": sub,
    }


def _stream_state(db: Session, st: CameraStatus | None, camera_id: str, stream: str, fresh: bool, now: datetime,
                  offline_after_s: float) -> dict:
    """The sub-stream's connection as its recorder thread reported it, judged as the main stream's: online
    needs a fresh status row saying so and a packet within ``offline_after_s``."""
    state = st.sub_state if st else None
    packet = st.sub_last_packet_at if st else None
    packet_fresh = bool(packet and (now - packet).total_seconds() <= offline_after_s)
    if state is None:
        shown = "unknown"  # no recorder has recorded it yet (or it is not recorded: record_streams main)
    elif not fresh:
        shown = "offline"
    else:
        shown = state if (state != "online" or packet_fresh) else "offline"
    last_seg = db.scalar(select(Segment.end_at).where(Segment.camera_id == camera_id, Segment.stream == stream)
                         .order_by(Segment.end_at.desc()).limit(1))
    return {"online": shown == "online", "state": shown, "last_packet_at": packet.isoformat() if packet else None,
            "last_segment_end": last_seg.isoformat() if last_seg else None,
            "reconnects": st.sub_reconnects if st else 0, "error": st.sub_error if st and state else None}


def _recording(db: Session, camera_id: str, stream: str, start: datetime, horizon: datetime, now: datetime,
               online: bool) -> tuple[float, list[dict]]:
    """Seconds of ``stream`` recorded over [start, horizon), and its holes with their reasons."""
    segs = db.execute(
        select(Segment.start_at, Segment.end_at)
        .where(Segment.camera_id == camera_id, Segment.stream == stream, Segment.end_at > start,
               Segment.start_at < horizon)
        .order_by(Segment.start_at)
    ).all()
    reasons = recorded_reasons(db, camera_id, start, horizon, stream)
    holes, recorded = uncovered(segs, start, horizon)
    gaps = []
    for hs, he in holes:
        lasting = he == horizon and horizon == now and not online
        gaps.append({
            "start": hs.isoformat(), "end": None if lasting else he.isoformat(),
            "duration_s": round((he - hs).total_seconds(), 3),
            "reason": hole_reason(reasons, hs, he),
        })
    return recorded, gaps


def _alert_ratio() -> float:

    return get_settings().spool_alert_ratio


def since(seconds: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=seconds)
