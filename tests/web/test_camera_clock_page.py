"""Camera clocks on the cameras page (issue 18): a camera whose own clock is off by more than
camera_clock_alert_s is shown with its offset, in Chinese; one within it is not."""
from __future__ import annotations

from ingest.cameras import add_camera
from storage.db import session_scope
from storage.models import CameraStatus, utcnow
from tests.web.test_auth import login


def test_a_camera_clock_off_is_shown_on_the_cameras_page(web):
    with session_scope(web.rt.sessions) as db:
        for cam_id, offset in (("CAM-OFF", -31.2), ("CAM-OK", 0.4)):
            add_camera(db, camera_id=cam_id, org_id="CLINIC-A", name=cam_id, role="entrance", url="rtsp://10.0.0.9/s")
            db.flush()
            db.add(CameraStatus(camera_id=cam_id, recorder_id="r1", state="online", last_packet_at=utcnow(),
                                updated_at=utcnow(), clock_offset_s=offset, clock_jumps=1))
    c = web.client
    login(c, "ops")
    page = c.get("/cameras")
    assert page.status_code == 200
    assert page.text.count("摄像头时钟偏差") == 1 and "摄像头时钟偏差 -31.2 秒" in page.text
    assert "camera clock" not in page.text  # no English on the zh-CN page
