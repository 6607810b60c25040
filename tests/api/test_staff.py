"""The staff gallery through the API: enrol (same gate as insured people), list, view, erase; scoped to
one organisation; every read of biometric data audited. Real SeaweedFS, real models, real faces."""
from __future__ import annotations

import cv2
import numpy as np
from sqlalchemy import select

from api.keys import add_service_key
from camsim.identities import get, portrait
from storage.db import session_scope
from storage.models import AuditEvent, StaffMember, StaffTemplate
from tests.api.images import jpeg, png


def _keys(env) -> None:
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "ops")
        env.keys["ingest_a"] = add_service_key(db, "ingest", "clinic A exchange", org_id="CLINIC-A")
        env.keys["ingest_b"] = add_service_key(db, "ingest", "pharmacy B exchange", org_id="PHARM-B")
        env.keys["inspector"] = add_service_key(db, "inspector", "north desk", regions=["north"])


def _photos(*items) -> list:
    return [("photos", (name, data, "image/jpeg" if name.endswith(".jpg") else "image/png")) for name, data in items]


def _objects(env, prefix: str) -> list[str]:
    return list(env.rt.store.list_keys(env.settings.bucket_biometrics, prefix=prefix))


def test_enrol_list_view_erase_and_duplicates(api, testdata):
    env = api
    _keys(env)
    obama2 = (testdata / "faces" / "obama2.jpg").read_bytes()
    cashier = jpeg(portrait(get("t1_2")))
    url = "/v1/orgs/CLINIC-A/staff/C-007/photos"
    r = env.client.put(url, files=_photos(("obama2.jpg", obama2), ("cashier.jpg", cashier)),
                       data={"name": "王药师", "role": "pharmacist"}, headers=env.h("ingest_a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["enrolled"] == 2 and body["refused"] == 0
    assert body["staff"]["staff_id"] == "C-007" and body["staff"]["name"] == "王药师"
    assert body["staff"]["role"] == "pharmacist" and len(body["staff"]["photos"]) == 2
    # the same photo again is a duplicate, nothing new is stored; the name is kept when omitted
    r = env.client.put(url, files=_photos(("again.jpg", obama2)), headers=env.h("admin"))
    assert r.status_code == 200 and r.json()["duplicates"] == 1 and r.json()["enrolled"] == 0
    assert r.json()["staff"]["name"] == "王药师"

    with session_scope(env.rt.sessions) as db:
        m = db.scalar(select(StaffMember).where(StaffMember.org_id == "CLINIC-A", StaffMember.staff_id == "C-007"))
        tpls = list(db.scalars(select(StaffTemplate).where(StaffTemplate.member_id == m.id)))
        member_id = m.id
    assert len(tpls) == 2 and all(t.photo_key.startswith(f"staff/CLINIC-A/{member_id}/") for t in tpls)
    assert all(t.model == env.rt.pipeline.model_id and t.source == "api" for t in tpls)
    assert len(_objects(env, f"staff/CLINIC-A/{member_id}/")) == 2

    r = env.client.get("/v1/orgs/CLINIC-A/staff", headers=env.h("admin"))
    assert r.status_code == 200
    [listed] = r.json()["staff"]
    assert listed["staff_id"] == "C-007" and len(listed["photos"]) == 2
    r = env.client.get("/v1/orgs/CLINIC-A/staff/C-007", headers=env.h("ingest_a"))
    assert r.status_code == 200 and r.json()["name"] == "王药师"
    photo = env.client.get(r.json()["photos"][0]["photo_url"], headers=env.h("ingest_a"))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "private, no-store"
    with session_scope(env.rt.sessions) as db:
        actions = [(a.action, a.actor) for a in db.scalars(select(AuditEvent).where(AuditEvent.org_id == "CLINIC-A"))]
    ingest_actor = f"key:{env.keys['ingest_a'].split('_')[1]}"
    for action in ("staff.enroll", "staff.list", "staff.view", "staff.photo.view"):
        assert action in {a for a, _ in actions}, action
    assert ("staff.photo.view", ingest_actor) in actions

    r = env.client.delete("/v1/orgs/CLINIC-A/staff/C-007", headers=env.h("ingest_a"))
    assert r.status_code == 200, r.text
    assert r.json()["photos_deleted"] == 2 and r.json()["templates_deleted"] == 2
    assert _objects(env, f"staff/CLINIC-A/{member_id}/") == []
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(StaffMember).where(StaffMember.id == member_id)) is None
        assert not list(db.scalars(select(StaffTemplate).where(StaffTemplate.member_id == member_id)))
        erased = db.scalar(select(AuditEvent).where(AuditEvent.action == "staff.erase"))
        assert erased.detail["photos_deleted"] == 2 and erased.subject == "staff:CLINIC-A/C-007"
    assert env.client.get("/v1/orgs/CLINIC-A/staff/C-007", headers=env.h("admin")).status_code == 404
    assert env.client.delete("/v1/orgs/CLINIC-A/staff/C-007", headers=env.h("admin")).status_code == 404


def test_other_organisation_sees_and_touches_nothing(api_sqlite, testdata):
    env = api_sqlite
    _keys(env)
    obama2 = (testdata / "faces" / "obama2.jpg").read_bytes()
    r = env.client.put("/v1/orgs/CLINIC-A/staff/C-1/photos", files=_photos(("a.jpg", obama2)),
                       headers=env.h("ingest_a"))
    assert r.status_code == 200, r.text
    template = r.json()["staff"]["photos"][0]["template_id"]
    other = env.h("ingest_b")
    for method, url in [("get", "/v1/orgs/CLINIC-A/staff"), ("get", "/v1/orgs/CLINIC-A/staff/C-1"),
                        ("get", f"/v1/orgs/CLINIC-A/staff/C-1/photos/{template}"),
                        ("delete", "/v1/orgs/CLINIC-A/staff/C-1"), ("get", "/v1/orgs/CLINIC-A/staff-suggestions")]:
        r = getattr(env.client, method)(url, headers=other)
        assert r.status_code == 404, (url, r.text)
        assert r.json()["error"]["code"] == "not_found"
    r = env.client.put("/v1/orgs/CLINIC-A/staff/C-2/photos", files=_photos(("a.jpg", obama2)), headers=other)
    assert r.status_code == 404
    # a photo of B's template id under B's own organisation is not A's photo either
    assert env.client.get(f"/v1/orgs/PHARM-B/staff/C-1/photos/{template}", headers=other).status_code == 404
    # roles that never manage staff
    for who in ("terminal", "inspector"):
        assert env.client.get("/v1/orgs/CLINIC-A/staff", headers=env.h(who)).status_code == 403
    assert env.client.get("/v1/orgs/CLINIC-A/staff", headers={"Authorization": "Bearer nope"}).status_code == 401
    # still there, untouched
    r = env.client.get("/v1/orgs/CLINIC-A/staff", headers=env.h("admin"))
    assert [m["staff_id"] for m in r.json()["staff"]] == ["C-1"]


def test_refused_photos_and_bad_input_store_nothing(api_sqlite, testdata):
    env = api_sqlite
    _keys(env)
    wall = np.full((480, 640, 3), 200, np.uint8)
    cv2.rectangle(wall, (100, 100), (300, 300), (40, 90, 160), -1)  # a poster without a face
    r = env.client.put("/v1/orgs/CLINIC-A/staff/C-9/photos", files=_photos(("wall.png", png(wall))),
                       data={"name": "x"}, headers=env.h("admin"))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["refused"] == 1 and body["staff"] is None
    assert body["results"][0]["code"] == "no_face" and body["results"][0]["reason"]
    group = (testdata / "scenes" / "bald_guys.jpg").read_bytes()
    r = env.client.put("/v1/orgs/CLINIC-A/staff/C-9/photos", files=_photos(("group.jpg", group)),
                       headers=env.h("admin"))
    assert r.status_code == 422 and r.json()["results"][0]["status"] == "refused"
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(StaffMember)) is None and db.scalar(select(StaffTemplate)) is None
    assert _objects(env, "staff/") == []

    obama2 = (testdata / "faces" / "obama2.jpg").read_bytes()
    cases = [
        ("/v1/orgs/CLINIC-A/staff/bad%20id/photos", {}, _photos(("a.jpg", obama2)), 400, "invalid_staff_id"),
        ("/v1/orgs/CLINIC-A/staff/C-9/photos", {"role": "janitor"}, _photos(("a.jpg", obama2)), 400, "invalid_role"),
        ("/v1/orgs/NOWHERE/staff/C-9/photos", {}, _photos(("a.jpg", obama2)), 404, "not_found"),
        ("/v1/orgs/CLINIC-A/staff/C-9/photos", {}, _photos(("a.jpg", b"")), 400, "empty"),
        ("/v1/orgs/CLINIC-A/staff/C-9/photos", {}, _photos(("a.jpg", b"not an image at all")), 422, None),
        ("/v1/orgs/CLINIC-A/staff/C-9/photos", {},
         _photos(*[(f"{i}.jpg", obama2) for i in range(env.settings.max_photos_per_request + 1)]), 413,
         "too_many_photos"),
    ]
    for url, data, files, status, code in cases:
        r = env.client.put(url, files=files, data=data, headers=env.h("admin"))
        assert r.status_code == status, (url, data, r.text)
        if code:
            assert r.json()["error"]["code"] == code and r.json()["error"]["reason"]
    # a file that is no image is refused per photo with its code, like insured enrolment
    r = env.client.put("/v1/orgs/CLINIC-A/staff/C-9/photos", files=_photos(("a.jpg", b"not an image at all")),
                       headers=env.h("admin"))
    assert r.json()["results"][0]["code"] == "not_an_image"
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(StaffMember)) is None
    assert _objects(env, "staff/") == []
