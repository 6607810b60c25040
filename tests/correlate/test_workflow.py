"""Review and inquiry workflow, holds, statistics and role scoping, on SQLite and PostgreSQL.

No role sees another region's flags, face crops or clips; institution users see only their own
inquiries, without biometric evidence."""
from __future__ import annotations

from sqlalchemy import select

from storage.db import session_scope
from storage.models import EvidenceHold
from tests.correlate import scenarios as sc


def _q(t: str) -> str:
    return t.replace("+", "%2B")


def test_review_inquiry_holds_stats_and_scoping(world, testdata):
    w = world
    ghost_a = w.add_block("ghost", testdata, camera_id="CAM-A", org_id="CLINIC-A")
    imp_a = w.add_block("impostor", testdata, camera_id="CAM-A", org_id="CLINIC-A")
    ghost_b = w.add_block("ghost", testdata, camera_id="CAM-B", org_id="PHARM-B")
    rows_a = [sc.settlement("A-1", "P-OBAMA", "CLINIC-A", ghost_a.settled_at, terminal="CLINIC-A-T1"),
              sc.settlement("A-2", "P-OBAMA", "CLINIC-A", imp_a.settled_at, counter="counter-1")]
    rows_b = [sc.settlement("B-1", "P-OBAMA", "PHARM-B", ghost_b.settled_at, terminal="PHARM-B-T1")]
    # an ingest key scoped to PHARM-B may not post CLINIC-A's settlements
    r = w.post(rows_a + rows_b, who="ingest_b")
    assert r.status_code == 207, r.text
    assert r.json()["created"] == ["B-1"]
    assert {e["settlement_id"] for e in r.json()["errors"]} == {"A-1", "A-2"}
    assert "may not import" in r.json()["errors"][0]["reason"]
    assert w.post(rows_a).status_code == 200
    w.run_jobs()

    def ids(who, **p):
        return {f["settlement_id"]: f for f in w.flags(who, **p) if f["rule"] in ("ghost_visit", "impersonation")}

    all_flags = ids("admin")
    assert set(all_flags) == {"A-1", "A-2", "B-1"}
    north, south = ids("inspector_north"), ids("inspector_south")
    assert set(north) == {"A-1", "A-2"} and set(south) == {"B-1"}
    fa, fimp, fb = all_flags["A-1"], all_flags["A-2"], all_flags["B-1"]
    # another region's flag, face crop and clip do not exist for an inspector
    assert w.client.get(f"/v1/flags/{fb['id']}", headers=w.h("inspector_north")).status_code == 404
    crop_url = fimp["evidence"]["faces"][0]["crop_url"]
    assert w.client.get(crop_url, headers=w.h("inspector_north")).status_code == 200
    assert w.client.get(crop_url, headers=w.h("inspector_south")).status_code == 404
    cam = fa["evidence"]["cameras"][0]
    clip = f"/v1/cameras/CAM-A/clip?start={_q(cam['start'])}&end={_q(cam['end'])}"
    assert w.client.get(clip, headers=w.h("inspector_north")).status_code in (200, 206)
    assert w.client.get(clip, headers=w.h("inspector_south")).status_code == 404
    # machines see no flags
    for who in ("ingest", "terminal"):
        assert w.client.get("/v1/flags", headers=w.h(who)).status_code == 403
    # institutions see nothing until an inquiry is sent to them
    assert ids("clinic_a") == {}
    assert w.client.get(f"/v1/flags/{fimp['id']}", headers=w.h("clinic_a")).status_code == 404
    r = w.client.post(f"/v1/flags/{fimp['id']}/inquiry", json={"action": "send", "note": "Who was at the counter?"},
                      headers=w.h("inspector_north"))
    assert r.status_code == 200 and r.json()["status"] == "inquiry", r.text
    assert w.client.post(f"/v1/flags/{fb['id']}/inquiry", json={"action": "send", "note": "x"},
                         headers=w.h("inspector_north")).status_code == 404
    seen = w.client.get(f"/v1/flags/{fimp['id']}", headers=w.h("clinic_a"))
    assert seen.status_code == 200
    body = seen.json()
    assert "faces" not in body["evidence"] and "face_pay" not in body["evidence"] and "model" not in body
    assert w.client.get(crop_url, headers=w.h("clinic_a")).status_code == 404
    assert w.client.get(f"/v1/flags/{fimp['id']}", headers=w.h("pharm_b")).status_code == 404
    assert w.client.get(clip, headers=w.h("clinic_a")).status_code == 404
    # the institution answers; it cannot decide
    assert w.client.post(f"/v1/flags/{fimp['id']}/review", json={"decision": "dismiss", "note": "no"},
                         headers=w.h("clinic_a")).status_code == 403
    assert w.client.post(f"/v1/flags/{fimp['id']}/inquiry", json={"action": "send", "note": "x"},
                         headers=w.h("clinic_a")).status_code == 403
    r = w.client.post(f"/v1/flags/{fimp['id']}/inquiry", json={"action": "answer", "note": "His son collected the "
                      "medicine for him."}, headers=w.h("clinic_a"))
    assert r.status_code == 200 and r.json()["inquiry_state"] == "answered", r.text
    # decisions: bad input is refused with a reason
    r = w.client.post(f"/v1/flags/{fimp['id']}/review", json={"decision": "maybe", "note": "x"},
                      headers=w.h("inspector_north"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert w.client.post(f"/v1/flags/{fimp['id']}/review", json={"decision": "confirm"},
                         headers=w.h("inspector_north")).status_code == 422
    r = w.client.post(f"/v1/flags/{fimp['id']}/review", json={"decision": "confirm", "note": "Card lent; "
                      "on-site check confirmed."}, headers=w.h("inspector_north"))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = w.client.post(f"/v1/flags/{fimp['id']}/review", json={"decision": "dismiss", "note": "x"},
                      headers=w.h("inspector_north"))
    assert r.status_code == 409
    r = w.client.post(f"/v1/flags/{fa['id']}/review", json={"decision": "dismiss", "note": "Camera moved; "
                      "patient seen in the register."}, headers=w.h("inspector_north"))
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    # holds: kept for the confirmed flag, released for the dismissed one
    with session_scope(w.rt.sessions) as db:
        holds = {h.flag_id: h for h in db.scalars(select(EvidenceHold).where(EvidenceHold.camera_id.is_not(None)))}
    assert holds[fimp["id"]].released_at is None
    assert holds[fa["id"]].released_at is not None
    # the history: who did what, when, with which note
    hist = w.client.get(f"/v1/flags/{fimp['id']}", headers=w.h("admin")).json()["events"]
    assert [e["action"] for e in hist] == ["created", "inquiry_sent", "inquiry_answered", "confirmed"]
    assert [e["role"] for e in hist] == ["system", "inspector", "institution", "inspector"]
    assert hist[2]["note"].startswith("His son") and all(e["at"] for e in hist)
    # filters and statistics
    assert set(ids("admin", status="confirmed")) == {"A-2"}
    assert set(ids("admin", level=4, org_id="PHARM-B")) == {"B-1"}
    assert w.client.get("/v1/flags?status=bogus", headers=w.h("admin")).status_code == 400
    st = w.client.get("/v1/flags/stats", headers=w.h("inspector_north")).json()
    by = {(r["rule"], r["org_id"]): r for r in st["rows"]}
    assert by[("impersonation", "CLINIC-A")]["confirmed"] == 1
    assert by[("ghost_visit", "CLINIC-A")]["dismissed"] == 1
    assert all(r["org_id"] == "CLINIC-A" for r in st["rows"])
    tot = {r["rule"]: r for r in st["by_rule"]}
    assert tot["impersonation"]["confirmation_rate"] == 1.0 and tot["ghost_visit"]["confirmation_rate"] == 0.0
    south_stats = w.client.get("/v1/flags/stats", headers=w.h("inspector_south")).json()
    assert {r["org_id"] for r in south_stats["rows"]} == {"PHARM-B"}
