"""Dates and numbers at the edges of what Python can represent: each a 4xx with a reason, never a
500 (issue 17: OverflowError on 9999-12-31, 0001-01-01T00:00:00+14:00 and huge segment numbers)."""
from __future__ import annotations

from fastapi.testclient import TestClient

from api.keys import add_service_key
from api.web.auth import add_user
from storage.db import session_scope

LOW = "0001-01-01T00:00:00%2B14:00"
HIGH = "9999-12-31T23:59:59-14:00"


def _reason(r) -> str:
    return r.json()["error"]["reason"] if r.headers.get("content-type", "").startswith("application/json") else r.text


def test_edge_dates_and_numbers_are_4xx_with_a_reason(api_sqlite):
    env = api_sqlite
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "desk")
        add_user(db, "insp", "correct-horse-42", "inspector", regions=["north", "south"])
    c, h = env.client, env.h("admin")
    body = {"id": "CAM-E", "org_id": "CLINIC-A", "name": "c", "role": "settlement_counter", "url": "rtsp://10.0.0.7/s"}
    assert c.post("/v1/cameras", json=body, headers=h).status_code == 201

    gets = ["/v1/flags?to=9999-12-31", "/v1/flags?from=0001-01-01", "/v1/flags/stats?to=9999-12-31",
            "/v1/flags?to=9999-12-31T23:59:59Z", f"/v1/flags?from={LOW}",
            f"/v1/cameras/CAM-E/health?start={LOW}&end=2026-01-01T00:00:00Z",
            f"/v1/cameras/CAM-E/health?start=2026-01-01T00:00:00Z&end={HIGH}",
            f"/v1/cameras/CAM-E/clip?start={LOW}&end=2026-01-01T00:00:00Z",
            f"/v1/cameras/CAM-E/clip.json?start={LOW}&end=2026-01-01T00:00:00Z",
            "/v1/cameras/CAM-E/hls/99999999999999999999999/init.mp4",
            "/v1/cameras/CAM-E/hls/99999999999999999999999/media.m4s",
            "/v1/flags?offset=99999999999999999999999"]
    for url in gets:
        r = c.get(url, headers=h)
        assert 400 <= r.status_code < 500 and _reason(r), (url, r.status_code, r.text[:200])
    for path, payload in [("/v1/holds", {"reason": "case", "camera_id": "CAM-E", "start": LOW.replace("%2B", "+"),
                                         "end": "2026-01-01T00:00:00Z"}),
                          ("/v1/exports", {"camera_id": "CAM-E", "start": "2026-01-01T00:00:00Z", "end": HIGH})]:
        r = c.post(path, json=payload, headers=h)
        assert 400 <= r.status_code < 500 and "supported range" in _reason(r), (path, r.status_code, r.text[:200])
    r = c.post("/v1/settlements", headers=env.h("ingest"), json=[
        {"settlement_id": "S-E1", "insured_id": "P-1", "org_id": "CLINIC-A", "terminal_id": "CLINIC-A-T1",
         "settled_at": "0001-01-01T00:00:00+14:00", "amount": "1.00", "type": "outpatient"},
        {"settlement_id": "S-E2", "insured_id": "P-1", "org_id": "CLINIC-A", "terminal_id": "CLINIC-A-T1",
         "settled_at": "2026-01-01T00:00:00+08:00", "amount": "1.00", "type": "outpatient"}])
    assert r.status_code < 500, r.text
    assert "supported range" in str(r.json()) and "S-E2" in str(r.json())

    web = TestClient(c.app)
    assert web.post("/login", data={"username": "insp", "password": "correct-horse-42"},
                    follow_redirects=False).status_code == 303
    for url in ["/flags?date_to=9999-12-31", "/flags?date_from=0001-01-01", "/cameras?day=0001-01-01",
                "/cameras?day=9999-12-31"]:
        r = web.get(url)
        assert 400 <= r.status_code < 500 and "supported range" in r.text, (url, r.status_code)
