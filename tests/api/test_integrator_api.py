"""For the integrator, over real footage in a real SeaweedFS and real checks: a settlement's outcome by
API, flags by settlement, unknown counters warned of on import, and a camera's covers, zones and latest
frame (SQLite and PostgreSQL where the database matters)."""
from __future__ import annotations

import cv2
import numpy as np
from sqlalchemy import select

from storage.db import session_scope
from storage.models import AuditEvent
from tests.correlate import scenarios as sc
from tests.correlate.conftest import world, world_sqlite  # noqa: F401  (fixtures)

CUSTOMER = {"kind": "customer", "label": "柜台前", "points": [[0.4, 0.3], [1, 0.3], [1, 0.9], [0.4, 0.9]]}


def _audits(w, action):
    with session_scope(w.rt.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_settlement_outcome_people_faces_and_flags_by_api(world, testdata):  # noqa: F811
    w = world
    imp = w.add_block("impostor", testdata)
    # a settlement id with '_' (a LIKE wildcard) and a neighbour that a careless match would include
    rows = [sc.settlement("A_IMP", "P-OBAMA", "CLINIC-A", imp.settled_at, counter="counter-1"),
            sc.settlement("AXIMP-2", "P-OBAMA", "CLINIC-A", imp.settled_at, counter="counter-9")]
    assert w.post(rows).status_code == 200
    r = w.client.get("/v1/settlements/A_IMP", headers=w.h("ingest"))
    assert r.status_code == 200, r.text
    before = r.json()
    assert before["check"]["status"] == "pending" and before["outcome"] is None and before["flags"] == []
    assert before["settlement"] == {k: v for k, v in {**rows[0], "terminal_id": None, "verification_id": None,
                                                      "settled_at": before["settlement"]["settled_at"]}.items()}
    w.run_jobs()
    full = w.client.get("/v1/settlements/A_IMP", headers=w.h("inspector_north")).json()
    assert full["check"]["status"] == "done" and full["check"]["attempts"] == 0 and full["check"]["last_error"] is None
    assert full["outcome"] == "impersonation" and "insured person" in full["reason"]
    assert full["reason_parts"] and full["people"]["frames"] > 0
    assert full["faces"] and all(f["camera_id"] == "CAM-A" and not f["is_insured"] for f in full["faces"])
    f0 = full["faces"][0]
    assert f0["insured_score"] is not None and f0["crop_url"].endswith(f0["evidence_id"])
    assert w.client.get(f0["crop_url"], headers=w.h("inspector_north")).headers["content-type"] == "image/jpeg"
    # the flags it raised, and the flag list filtered by the settlement (exactly, '_' is no wildcard)
    flags = w.flags("admin", settlement="A_IMP")
    assert {f["id"] for f in flags} == set(full["flags"]) and full["flags"]
    assert all("A_IMP" in f["settlement_ids"] for f in flags)
    assert w.flags("admin", settlement="AXIMP") == [] and w.flags("admin", settlement="A_IM") == []
    # an integrator's key: outcome, reason and who was where, but no scores, boxes or crops
    lim = w.client.get("/v1/settlements/A_IMP", headers=w.h("terminal")).json()
    assert lim["outcome"] == "impersonation" and lim["flags"] == full["flags"]
    assert lim["faces"] and not {"insured_score", "crop_url", "box"} & set(lim["faces"][0])
    assert "model" not in lim["check"]
    # scope: another region, another organisation's key, an institution: not found / forbidden
    for who, status in (("inspector_south", 404), ("ingest_b", 404), ("terminal_b", 404), ("clinic_a", 403)):
        assert w.client.get("/v1/settlements/A_IMP", headers=w.h(who)).status_code == status, who
    assert w.client.get("/v1/settlements/NOPE", headers=w.h("admin")).status_code == 404
    assert len(_audits(w, "settlement.view")) >= 3
    # a settlement no camera covers is no_camera: readable, not flagged for footage (face-pay is absent)
    other = w.client.get("/v1/settlements/AXIMP-2", headers=w.h("admin")).json()
    assert other["outcome"] == "footage_missing" and other["faces"] == [] and other["people"].get("no_camera")
    assert [f["rule"] for f in w.flags("admin", settlement="AXIMP-2")] == ["face_pay_absent"]


def test_import_warns_of_unknown_counters_and_covers_are_edited_in_place(world_sqlite):  # noqa: F811
    w = world_sqlite
    t = sc.at(0)
    rows = [sc.settlement("S-1", "P-OBAMA", "CLINIC-A", t, counter="counter-1"),
            sc.settlement("S-2", "P-OBAMA", "CLINIC-A", t, counter="Counter-1"),
            sc.settlement("S-3", "P-OBAMA", "PHARM-B", t, counter="counter-1", terminal="PHARM-B-T1"),
            {"settlement_id": "S-4"}]
    r = w.post(rows, who="admin")
    assert r.status_code == 207
    warn = r.json()["warnings"]
    assert [(x["index"], x["settlement_id"], x["warning"]) for x in warn] == [(1, "S-2", "unknown_counter")]
    assert "'Counter-1'" in warn[0]["reason"] and "'CLINIC-A-T1', 'counter-1'" in warn[0]["reason"]
    # an admin renames the counter on the camera: recording goes on, the warning goes away
    r = w.client.patch("/v1/cameras/CAM-A", json={"covers": ["counter-1", "Counter-1", "CLINIC-A-T1"]},
                       headers=w.h("admin"))
    assert r.status_code == 200 and r.json()["enabled"] and r.json()["covers"][1] == "Counter-1"
    assert w.post(rows[:3], who="admin").json()["warnings"] == []
    assert w.client.patch("/v1/cameras/CAM-A", json={"covers": ["a/b"]}, headers=w.h("admin")).status_code == 400
    assert w.client.patch("/v1/cameras/CAM-A", json={"name": "x"}, headers=w.h("inspector_north")).status_code == 403
    assert w.client.patch("/v1/cameras/CAM-A", json={"name": "x"}, headers=w.h("inspector_south")).status_code == 404
    assert _audits(w, "camera.update")[0].detail["before"]["covers"] == ["CLINIC-A-T1", "counter-1"]


def test_zones_are_validated_replaced_and_audited(world_sqlite):  # noqa: F811
    w = world_sqlite
    url = "/v1/cameras/CAM-A/zones"
    assert w.client.get(url, headers=w.h("admin")).json() == {"camera_id": "CAM-A", "zones": []}
    poster = {"kind": "ignore", "points": [[0.05, 0.05], [0.2, 0.05], [0.2, 0.3]]}
    r = w.client.put(url, json={"zones": [CUSTOMER, poster]}, headers=w.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["zones"][1] == {**poster, "label": ""}
    assert w.client.get(url, headers=w.h("inspector_north")).json()["zones"][0] == {
        **CUSTOMER, "points": [[0.4, 0.3], [1.0, 0.3], [1.0, 0.9], [0.4, 0.9]]}
    assert w.client.get("/v1/cameras/CAM-A", headers=w.h("admin")).json()["zones"][0]["kind"] == "customer"
    bad = [({"zones": [{**CUSTOMER, "kind": "queue"}]}, "zone 1: kind must be one of customer, staff, ignore"),
           ({"zones": [{**CUSTOMER, "points": [[0, 0], [1, 1]]}]}, "3-32"),
           ({"zones": [{**CUSTOMER, "points": [[0, 0], [0.5, 0.5], [1, 1]]}]}, "no area"),
           ({"zones": [CUSTOMER, {**CUSTOMER, "points": [[0, 0], [1.2, 0], [1, 1]]}]}, "zone 2, point 2"),
           ({"zones": [{**CUSTOMER, "points": [[0, 0], ["a", 0], [1, 1]]}]}, "two numbers"),
           ({"zones": [{**CUSTOMER, "label": "x" * 101}]}, "at most 100"),
           ({"zones": [CUSTOMER] * 17}, "at most 16"),
           ({"zones": [{**CUSTOMER, "colour": "red"}]}, "unknown field"),
           ({"zone": []}, '{"zones": [...]}')]
    for body, said in bad:
        r = w.client.put(url, json=body, headers=w.h("admin"))
        assert r.status_code == 400 and said in r.json()["error"]["reason"], (body, r.text)
    # inspectors see zones but do not change them; another region's camera is not found
    assert w.client.put(url, json={"zones": []}, headers=w.h("inspector_north")).status_code == 403
    assert w.client.put(url, json={"zones": []}, headers=w.h("inspector_south")).status_code == 404
    assert w.client.get(url, headers=w.h("inspector_south")).status_code == 404
    assert w.client.get(url, headers=w.h("ingest")).status_code == 404
    assert len(w.client.get(url, headers=w.h("admin")).json()["zones"]) == 2  # refusals changed nothing
    assert w.client.put(url, json={"zones": []}, headers=w.h("admin")).json()["zones"] == []
    assert [a.detail["before"] for a in _audits(w, "camera.zones")] == [0, 2]


def test_still_frame_is_the_latest_keyframe_private_and_audited(world_sqlite, testdata):  # noqa: F811
    w = world_sqlite
    r = w.client.get("/v1/cameras/CAM-A/still.jpg", headers=w.h("admin"))
    assert r.status_code == 404 and "no recorded footage" in r.json()["error"]["reason"]
    w.add_block("ghost", testdata)
    newest = w.add_block("impostor", testdata)  # the newest segment shows a face
    r = w.client.get("/v1/cameras/CAM-A/still.jpg", headers=w.h("inspector_north"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "private, no-store"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (360, 640) and float(img.std()) > 5
    assert r.headers["x-dualcheck-frame-at"] > newest.start.isoformat()[:19]
    faces = w.rt.pipeline.analyze(img, max_embed=0)
    assert len(faces) == 1  # the impostor of the newest block, not the empty counter of the older one
    assert [a.subject for a in _audits(w, "camera.still.view")] == ["camera:CAM-A"]
    for who, status in (("inspector_south", 404), ("ingest", 404), ("terminal", 404)):
        assert w.client.get("/v1/cameras/CAM-A/still.jpg", headers=w.h(who)).status_code == status, who
