"""Issue 14's operations through the JSON API and the CLI: operators manage their region's cameras
(and only those), the stream test against a real RTSP camera, institutions see their cameras' health
but no picture, and organisations' footage retention set by admins (API, CLI, admin page)."""
from __future__ import annotations

import json

from sqlalchemy import select

from api.keys import add_service_key
from storage.db import session_scope
from storage.models import AuditEvent, Camera, Organisation
from storage.retention import org_cutoffs
from tests.cli.conftest import make_cli
from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.web.test_auth import csrf_of, login


def _cam(org, cid, url="rtsp://10.0.0.9/stream", **kw):
    return {"id": cid, "org_id": org, "name": cid, "role": "settlement_counter", "url": url, **kw}


def test_operators_manage_their_regions_cameras_and_test_the_stream(web, camera_factory):  # noqa: F811
    sim = camera_factory(user="cam", password="pw-123456")
    c = web.client
    login(c, "ops")  # operator of the north region: CLINIC-A
    h = {"X-CSRF-Token": csrf_of(c)}
    r = c.post("/v1/cameras", json=_cam("PHARM-B", "B-NEW"), headers=h)
    assert r.status_code == 403 and "PHARM-B" in r.json()["error"]["reason"]
    r = c.post("/v1/cameras", json=_cam("CLINIC-A", "A-NEW", sim.url_without_credentials, username="cam",
                                        password="pw-123456"), headers=h)
    assert r.status_code == 201, r.text
    r = c.post("/v1/cameras/A-NEW/test", headers=h)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["codec"] == "h264" and (r.json()["width"], r.json()["height"]) == (640, 360)
    assert "pw-123456" not in r.text
    # a camera that does not answer: an answer with the reason, not an error of the call
    r = c.post("/v1/cameras", json=_cam("CLINIC-A", "A-DEAD", "rtsp://127.0.0.1:9/none"), headers=h)
    assert r.status_code == 201
    r = c.post("/v1/cameras/A-DEAD/test", headers=h)
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["error"]
    assert c.delete("/v1/cameras/A-DEAD", headers=h).status_code == 200
    assert c.delete("/v1/cameras/A-DEAD", headers=h).status_code == 404
    # an inspector sees cameras but neither manages nor tests them
    c.cookies.clear()
    login(c, "insp-north")
    h = {"X-CSRF-Token": csrf_of(c)}
    assert c.post("/v1/cameras/A-NEW/test", headers=h).status_code == 403
    assert c.delete("/v1/cameras/A-NEW", headers=h).status_code == 403
    with session_scope(web.rt.sessions) as db:
        tests = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "camera.test")))
    assert [(e.actor, e.outcome) for e in tests] == [("user:ops", "ok"), ("user:ops", "failed")]


def test_institutions_see_their_cameras_health_not_pictures(web):
    c = web.client
    login(c, "admin")
    h = {"X-CSRF-Token": csrf_of(c)}
    for org, cid in (("CLINIC-A", "A-1"), ("PHARM-B", "B-1")):
        assert c.post("/v1/cameras", json=_cam(org, cid), headers=h).status_code == 201
    c.cookies.clear()
    login(c, "clinic-a")
    assert c.get("/v1/cameras/A-1/health").status_code == 200
    assert c.get("/v1/cameras/B-1/health").status_code == 404
    assert c.get("/v1/cameras/A-1/still.jpg").status_code == 403
    page = c.get("/cameras")
    assert page.status_code == 200 and 'data-camera="A-1"' in page.text and 'data-camera="B-1"' not in page.text
    assert 'href="/cameras"' in page.text  # in the institution's navigation


def test_retention_per_organisation_api_cli_and_page(web):
    with session_scope(web.rt.sessions) as db:
        admin_key = add_service_key(db, "admin", "ops admin")
        insp_key = add_service_key(db, "inspector", "insp", regions=["north"])
    a, i = {"Authorization": f"Bearer {admin_key}"}, {"Authorization": f"Bearer {insp_key}"}
    c = web.client
    r = c.get("/v1/orgs/CLINIC-A/retention", headers=a)
    assert r.json() == {"org_id": "CLINIC-A", "retention_days": None, "effective_days": 183, "default_days": 183}
    assert c.put("/v1/orgs/CLINIC-A/retention", json={"days": 365}, headers=i).status_code == 403
    for bad in (6, 3651, "a year", 1.5, True):
        r = c.put("/v1/orgs/CLINIC-A/retention", json={"days": bad}, headers=a)
        assert r.status_code in (400, 422) and "error" in r.json(), (bad, r.text)
    assert c.put("/v1/orgs/NOPE/retention", json={"days": 30}, headers=a).status_code == 404
    r = c.put("/v1/orgs/CLINIC-A/retention", json={"days": 365}, headers=a)
    assert r.status_code == 200 and r.json()["effective_days"] == 365
    # the retention run's cutoffs follow it
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    with session_scope(web.rt.sessions) as db:
        cut = org_cutoffs(db, 183, now)
    assert (now - cut["CLINIC-A"]).days == 365 and "PHARM-B" not in cut
    # the CLI
    cli = make_cli(web.settings, web.settings.effective_database_url)
    out = cli("orgs", "retention", "PHARM-B", "--days", "30", "--json")
    assert json.loads(out.stdout) == {"org_id": "PHARM-B", "retention_days": 30, "effective_days": 30}
    bad = cli("orgs", "retention", "PHARM-B", "--days", "3", ok=False)
    assert bad.returncode == 2 and "from 7 to 3650" in bad.stderr
    assert "kept 183 days (the default)" in cli("orgs", "retention", "CLINIC-A", "--default").stdout
    # the admin page: set, refuse out of range, reset
    login(c, "admin")
    token = csrf_of(c, "/orgs")
    page = c.get("/orgs").text
    assert "30 天" in page and "默认（183 天）" in page
    r = c.post("/orgs/CLINIC-A/retention", data={"csrf_token": token, "days": "400", "action": "set"})
    assert "录像保存期限已改为 400 天" in r.text
    r = c.post("/orgs/CLINIC-A/retention", data={"csrf_token": token, "days": "5", "action": "set"})
    assert "保存期限须为 7 到 3650 之间的整数天" in r.text
    r = c.post("/orgs/PHARM-B/retention", data={"csrf_token": token, "action": "default"})
    assert "录像保存期限已改为 默认（183 天）" in r.text
    with session_scope(web.rt.sessions) as db:
        assert (db.get(Organisation, "CLINIC-A").retention_days, db.get(Organisation, "PHARM-B").retention_days) == (400, None)
        trail = [(e.actor, e.detail) for e in db.scalars(select(AuditEvent).where(AuditEvent.action == "org.retention")
                                                          .order_by(AuditEvent.id))]
    assert trail[0][1] == {"before": None, "after": 365} and trail[-1] == ("user:admin", {"before": 30, "after": None})
    c.cookies.clear()
    login(c, "ops")
    assert c.get("/orgs").status_code == 403


def test_bad_page_parameters_get_a_friendly_400(web):
    c = web.client
    login(c, "admin")
    for path in ("/cameras?page=abc", "/cameras?page=-1", "/cameras?state=sleeping", "/cameras?role=kitchen",
                 "/cameras?day=2026-13-01", "/overview?weeks=0", "/overview?weeks=53", "/overview?weeks=x"):
        r = c.get(path)
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
    assert c.get("/cameras?page=999").status_code == 200  # past the last page: the last page
    c.cookies.clear()
    login(c, "clinic-a")
    assert c.get("/cameras/new").status_code == 403 and c.get("/orgs").status_code == 403


def test_what_the_cameras_day_bar_calls_a_gap():
    """Presentation rules of api/web/camera_pages.py over camera_health's holes."""
    from datetime import datetime, timedelta, timezone

    from api.web.camera_pages import day_view, installed_at

    a = datetime(2026, 12, 2, 16, 0, tzinfo=timezone.utc)  # local midnight in Asia/Shanghai
    b, now = a + timedelta(days=1), a + timedelta(hours=10)
    reg = a + timedelta(hours=2)
    # connecting after registration is not a gap; a camera silent for an hour after it is
    assert installed_at(reg, reg + timedelta(seconds=40), 90) == reg + timedelta(seconds=40)
    assert installed_at(reg, reg + timedelta(hours=1), 90) == reg
    assert installed_at(reg, reg - timedelta(days=3), 90) == reg - timedelta(days=3)

    def hole(s, e, reason="not_recorded"):
        return {"start": s.isoformat(), "end": e.isoformat() if e else None, "reason": reason}

    # online: before installation and the last 30 s are apart; the 10-minute hole at 05:00 is a gap
    h = {"state": "online", "recorded_s": 7.8 * 3600, "gaps": [
        hole(a, reg), hole(a + timedelta(hours=5), a + timedelta(hours=5, minutes=10), "camera_offline"),
        hole(now - timedelta(seconds=30), now)]}
    v = day_view(h, a, b, now, reg, 90)
    assert [(g["start"], g["reason"]) for g in v.gaps] == [(a + timedelta(hours=5), "camera_offline")]
    assert v.before["w"] == round(2 / 24 * 1000, 2) and v.pending["start"] == now - timedelta(seconds=30)
    assert v.expected_s == 8 * 3600 - 30 and abs(v.coverage - 7.8 / (8 - 30 / 3600)) < 1e-9
    # offline: the hole up to now is a gap (lasting), nothing is "being recorded"
    h = {"state": "offline", "recorded_s": 0, "gaps": [hole(now - timedelta(minutes=30), None, "camera_offline")]}
    v = day_view(h, a, b, now, a - timedelta(days=9), 90)
    assert len(v.gaps) == 1 and v.pending is None and v.gaps[0]["end"] == now
    # online, but nothing stored for 20 minutes: the last 90 s are being recorded, the rest is a gap
    h = {"state": "online", "recorded_s": 0, "gaps": [hole(now - timedelta(minutes=20), now)]}
    v = day_view(h, a, b, now, a - timedelta(days=9), 90)
    assert v.gaps[0]["end"] == now - timedelta(seconds=90) and v.pending["start"] == now - timedelta(seconds=90)


def test_main_and_sub_stream_settings_through_the_api_and_the_camera_page(web):
    c = web.client
    login(c, "ops")
    h = {"X-CSRF-Token": csrf_of(c)}
    sub = "rtsp://10.0.0.9/sub"
    r = c.post("/v1/cameras", json=_cam("CLINIC-A", "A-DUAL", analyse_stream="sub"), headers=h)
    assert r.status_code == 400 and "record_streams to both" in r.json()["error"]["reason"]
    r = c.post("/v1/cameras", json=_cam("CLINIC-A", "A-DUAL", sub_url=sub, record_streams="both",
                                        analyse_stream="sub"), headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["rtsp_sub_url"], r.json()["record_streams"], r.json()["analyse_stream"]) == (sub, "both", "sub")
    r = c.patch("/v1/cameras/A-DUAL", json={"sub_url": None}, headers=h)  # recorded and read: needed
    assert r.status_code == 400 and "sub-stream URL" in r.json()["error"]["reason"]
    r = c.patch("/v1/cameras/A-DUAL", json={"record_streams": "main", "analyse_stream": "main"}, headers=h)
    assert r.status_code == 200 and (r.json()["record_streams"], r.json()["analyse_stream"]) == ("main", "main")
    assert r.json()["rtsp_sub_url"] == sub  # kept when not named
    r = c.patch("/v1/cameras/A-DUAL", json={"analyse_stream": "both"}, headers=h)
    assert r.status_code == 400 and "analyse_stream must be one of" in r.json()["error"]["reason"]
    # the camera's page: the three fields in Chinese, and a refused combination said in Chinese
    page = c.get("/cameras/A-DUAL/edit")
    assert page.status_code == 200 and "子码流地址" in page.text and "核查读取的录像" in page.text
    form = {"csrf_token": csrf_of(c, "/cameras/A-DUAL/edit"), "name": "A-DUAL", "covers": "",
            "sub_url": "", "record_streams": "both", "analyse_stream": "sub"}
    r = c.post("/cameras/A-DUAL/edit", data=form, follow_redirects=True)
    assert "录制两路码流需要子码流地址" in r.text
    r = c.post("/cameras/A-DUAL/edit", data={**form, "sub_url": sub}, follow_redirects=True)
    assert "已保存" in r.text
    with session_scope(web.rt.sessions) as db:
        cam = db.get(Camera, "A-DUAL")
        assert (cam.rtsp_sub_url, cam.record_streams, cam.analyse_stream) == (sub, "both", "sub")
    with session_scope(web.rt.sessions) as db:
        ev = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "camera.update",
                                                      AuditEvent.subject == "camera:A-DUAL")))
    assert ev and ev[-1].detail["after"]["analyse_stream"] == "sub"
