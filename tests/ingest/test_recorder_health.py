"""camera_health() over a real index: holes of the segment index, their reasons, online/offline."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ingest.health import camera_health
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import Camera, CameraStatus, Organisation, RecordingGap, Segment

T0 = datetime(2026, 11, 22, 5, 0, 0, tzinfo=timezone.utc)


def _seg(cam: str, a: float, b: float) -> Segment:
    return Segment(camera_id=cam, org_id="o", start_at=T0 + timedelta(seconds=a), end_at=T0 + timedelta(seconds=b),
                   duration_s=b - a, bytes=1, sha256="0" * 64, object_key=f"o/{cam}/{a}.mp4")


def test_health_reports_holes_with_reasons_and_staleness(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as db:
        db.add(Organisation(id="o", name="o"))
        db.flush()
        db.add(Camera(id="c", org_id="o", name="c", role="entrance", rtsp_url="rtsp://h/x", covers=[]))
        db.flush()
        for a, b in ((0, 60), (60, 120), (150, 210), (210, 270), (300, 360)):
            db.add(_seg("c", a, b))
        db.add(RecordingGap(camera_id="c", start_at=T0 + timedelta(seconds=120),
                            end_at=T0 + timedelta(seconds=150), reason="camera_offline"))
        db.add(CameraStatus(camera_id="c", state="online", last_packet_at=T0 + timedelta(seconds=359),
                            updated_at=T0 + timedelta(seconds=359), spool_bytes=90, spool_limit_bytes=100))
    with session_scope(sessions) as db:
        now = T0 + timedelta(seconds=365)
        h = camera_health(db, "c", T0 - timedelta(seconds=30), T0 + timedelta(seconds=400), offline_after_s=30,
                          now=now)
        assert h["online"] and h["state"] == "online"
        assert [(g["duration_s"], g["reason"]) for g in h["gaps"]] == [
            (30.0, "not_recorded"), (30.0, "camera_offline"), (30.0, "not_recorded"), (5.0, "not_recorded")]
        assert h["gaps"][-1]["end"] is not None  # the camera is online: the last hole is just "not yet"
        assert h["recorded_s"] == 300.0 and h["last_segment_end"] == (T0 + timedelta(seconds=360)).isoformat()
        assert h["alert"] and h["spool_bytes"] == 90
        # 2 minutes later nobody reported: offline, and the hole up to now lasts
        later = T0 + timedelta(seconds=480)
        h2 = camera_health(db, "c", T0 + timedelta(seconds=300), later, offline_after_s=30, now=later)
        assert not h2["online"] and h2["state"] == "offline"
        assert h2["gaps"] == [{"start": (T0 + timedelta(seconds=360)).isoformat(), "end": None,
                               "duration_s": 120.0, "reason": "not_recorded"}]
        assert camera_health(db, "nope", T0, later, offline_after_s=30, now=later)["state"] == "unknown"
    engine.dispose()
