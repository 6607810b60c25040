"""Evidence holds through the API: place, list, release, with an audit trail; held footage survives
retention, released footage does not."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from api.keys import add_service_key
from ingest.cameras import add_camera
from storage.db import session_scope
from storage.models import AuditEvent, Segment
from storage.retention import run_retention

T = datetime(2025, 1, 10, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def env(tmp_path, make_settings):
    from tests.api.conftest import start_env

    e = start_env(make_settings(f"sqlite:///{tmp_path / 'holds.db'}"), None)
    e.rt.store.ensure_bucket(e.settings.bucket_footage)
    with session_scope(e.rt.sessions) as db:
        e.keys["admin"] = add_service_key(db, "admin", "inspector desk")
        add_camera(db, camera_id="CAM-1", org_id="CLINIC-A", name="c", role="settlement_counter", url="rtsp://h/1")
        db.flush()
        for i in range(6):  # 6 one-minute segments from T
            key = f"CLINIC-A/CAM-1/seg{i}.mp4"
            e.rt.store.put_bytes(e.settings.bucket_footage, key, b"x" * 10)
            db.add(Segment(camera_id="CAM-1", org_id="CLINIC-A", start_at=T + timedelta(minutes=i),
                           end_at=T + timedelta(minutes=i + 1), duration_s=60, bytes=10, sha256="0" * 64,
                           object_key=key))
    yield e
    e.client.__exit__(None, None, None)
    e.rt.close()


def test_place_list_release_with_audit(env):
    c, h = env.client, env.h("admin")
    body = {"camera_id": "CAM-1", "start": (T + timedelta(minutes=1, seconds=30)).isoformat(),
            "end": (T + timedelta(minutes=3)).isoformat(), "reason": "flag 7: impersonation"}
    # a hold may name only an existing flag of its camera's organisation (issue 17)
    assert c.post("/v1/holds", headers=h, json={**body, "flag_id": "F7"}).status_code == 404
    r = c.post("/v1/holds", headers=h, json=body)
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["active"] and hold["org_id"] == "CLINIC-A" and hold["start"] == "2025-01-10T08:01:30Z"
    assert [x["id"] for x in c.get("/v1/holds?active=true", headers=h).json()["holds"]] == [hold["id"]]
    assert c.get("/v1/holds", headers=env.h("ingest")).json() == {"holds": []}

    # a year later retention runs: only the minutes the hold overlaps (1-2, 2-3) remain
    later = T + timedelta(days=365)
    run_retention(env.rt.sessions, env.rt.store, env.settings, now=later)
    with session_scope(env.rt.sessions) as db:
        left = sorted(s.object_key for s in db.scalars(select(Segment)))
    assert left == ["CLINIC-A/CAM-1/seg1.mp4", "CLINIC-A/CAM-1/seg2.mp4"]
    assert sorted(env.rt.store.list_keys(env.settings.bucket_footage)) == left

    r = c.request("DELETE", f"/v1/holds/{hold['id']}", headers=h, json={"note": "case closed"})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["released_by"].startswith("key:")
    again = c.delete(f"/v1/holds/{hold['id']}", headers=h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_released"
    assert c.get("/v1/holds?active=true", headers=h).json() == {"holds": []}
    run_retention(env.rt.sessions, env.rt.store, env.settings, now=later)
    assert list(env.rt.store.list_keys(env.settings.bucket_footage)) == []

    with session_scope(env.rt.sessions) as db:
        trail = [(e.action, e.note) for e in db.scalars(select(AuditEvent).where(AuditEvent.action.like("hold.%"))
                                                        .order_by(AuditEvent.id))]
    assert trail == [("hold.place", "flag 7: impersonation"), ("hold.release", "case closed")]


def test_bad_holds_are_refused_with_a_reason(env):
    c, h = env.client, env.h("admin")
    base = {"camera_id": "CAM-1", "start": T.isoformat(), "end": (T + timedelta(minutes=1)).isoformat(),
            "reason": "case"}

    def refused(body, status, code, who="admin"):
        r = c.post("/v1/holds", headers=env.h(who), json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code and r.json()["error"]["reason"]

    refused({**base, "reason": "  "}, 400, "missing_reason")
    refused({**base, "end": base["start"]}, 400, "invalid_range")
    refused({**base, "start": "2025-01-10T08:00:00"}, 400, "invalid_time")
    refused({k: v for k, v in base.items() if k != "end"}, 400, "invalid_hold")
    refused({**base, "camera_id": "NOPE"}, 404, "not_found")
    refused({"verification_id": "nope", "reason": "x"}, 404, "not_found")
    refused(base, 404, "not_found", who="ingest")
    assert c.delete("/v1/holds/nope", headers=h).status_code == 404
