"""Issue 17, scopes and promises: institutions see no face-match scores, holds name only flags of
their own scope, camera ids are never reused across organisations, settlement ids taken elsewhere
answer like any conflict, ids are matched in full (no trailing newline), RTSP credentials in the
query string are sealed and masked. Real SQLite and PostgreSQL, real SeaweedFS."""
from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from api.keys import add_service_key
from api.web.auth import add_user
from correlate.flags import raise_flag
from correlate.reasons import Reason
from ingest.cameras import add_camera, seal_credentials, split_credentials
from ingest.credentials import CredentialBox
from kernel.ids import (
    check_insured_id,
    is_camera_id,
    is_counter,
    is_entity_id,
    is_settlement_ref,
    is_staff_id,
    is_username,
)
from storage.db import session_scope
from storage.models import AuditEvent, Camera, EvidenceHold, Settlement, SettlementCheck, Verification, utcnow

SCORES = re.compile(r"0\.215|0\.45|0\.22|0\.2153|0\.3871|similarity|score|相似度|分数")


def _keys(env):
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "admin")
        env.keys["north"] = add_service_key(db, "inspector", "north desk", regions=["north"])
        env.keys["south"] = add_service_key(db, "inspector", "south desk", regions=["south"])
        env.keys["clinic_a"] = add_service_key(db, "institution", "clinic A office", org_id="CLINIC-A")
        env.keys["ingest_a"] = add_service_key(db, "ingest", "exchange A", org_id="CLINIC-A")
        env.keys["ingest_b"] = add_service_key(db, "ingest", "exchange B", org_id="PHARM-B")
        for cam, org in (("CAM-A", "CLINIC-A"), ("CAM-B", "PHARM-B")):
            add_camera(db, camera_id=cam, org_id=org, name="counter", role="settlement_counter",
                       url="rtsp://10.0.0.5/s", covers=["counter-1"])


def _flag(db, org: str, sid: str, *, face_check=True):
    """A flag as the checker raises it: an impersonation whose reason quotes similarities, with the
    settlement, its check (summary with parts, payer and staff scores) and a failed face check."""
    at = utcnow() - timedelta(hours=1)
    v = None
    if face_check:
        v = Verification(org_id=org, terminal_id="CLINIC-A-T1" if org == "CLINIC-A" else "PHARM-B-T1",
                         insured_id="P-1", decision="mismatch", score=0.22, threshold=0.45, model="m")
        db.add(v)
        db.flush()
    db.add(Settlement(id=sid, insured_id="P-1", org_id=org, counter="counter-1", settled_at=at, amount="12.00",
                      type="pharmacy", verification_id=v.id if v else None, content_sha256="x", imported_by="t",
                      status="done", outcome="impersonation"))
    reason = (Reason.of("payer_not_insured", faces=3, best=0.2153, thr=0.45)
              + Reason.of("face_check_failed_score", decision="mismatch", score=0.22)
              + Reason.of("capture_mismatch", best=0.3871, thr=0.45))
    db.add(SettlementCheck(settlement_id=sid, org_id=org, outcome="impersonation", reason=str(reason),
                           window_start=at - timedelta(seconds=60), window_end=at + timedelta(seconds=30),
                           summary={"frames": 10, "threshold": 0.45, "reason_parts": reason.to_json(),
                                    "payer": {"track": 1, "best_insured": 0.2153, "best_staff": 0.1},
                                    "staff_at_settlement": [{"staff_id": "S1", "score": 0.71}]},
                           best_insured_score=0.2153, capture_score=0.3871, rule_version="t"))
    ev = {"settlement": {"id": sid}, "outcome": "impersonation", "threshold": 0.45,
          "people_seen": {"frames": 10}, "faces": [{"insured_score": 0.2153}],
          "face_pay": {"verification_id": v.id if v else None, "score": 0.22, "decision": "mismatch"}}
    f, _ = raise_flag(db, type="impersonation", rule="impersonation", level=4, org_id=org, settlement_ids=[sid],
                      occurred_at=at, reason=reason, evidence=ev, model={"m": 1}, rule_version="t",
                      dedup_key=f"imp:{sid}", legal=None)
    db.flush()
    return f.id


def test_institution_sees_no_scores_api_and_inquiry_page(api):
    env = api
    _keys(env)
    with session_scope(env.rt.sessions) as db:
        fid = _flag(db, "CLINIC-A", "S-SCORE-1")
        add_user(db, "clinic-a-user", "correct horse battery", "institution", org_id="CLINIC-A")
    c = env.client
    # the inspector sees the scores (full evidence) ...
    full = c.get(f"/v1/flags/{fid}", headers=env.h("north")).json()
    assert "0.215" in full["reason"] and full["evidence"]["reason_parts"][0]["args"]["best"] == 0.2153
    r = c.post(f"/v1/flags/{fid}/inquiry", json={"action": "send", "note": "Who paid?"}, headers=env.h("north"))
    assert r.status_code == 200, r.text
    # ... the institution none: not in the reason, its parts, the evidence or the history
    for body in (c.get(f"/v1/flags/{fid}", headers=env.h("clinic_a")).json(),
                 c.get("/v1/flags", headers=env.h("clinic_a")).json()["flags"][0]):
        text = json.dumps(body, ensure_ascii=False)
        assert not SCORES.search(text), text
        assert "the payer is not the insured person (3 usable faces)" in body["reason"]
        codes = [p["code"] for p in body["evidence"]["reason_parts"]]
        assert codes == ["payer_not_insured_limited", "face_check_failed", "capture_mismatch_limited"]
    # a terminal and an ingest key read the settlement without scores too
    for who in ("terminal", "ingest_a"):
        r = c.get("/v1/settlements/S-SCORE-1", headers=env.h(who))
        assert r.status_code == 200, r.text
        assert not SCORES.search(json.dumps(r.json(), ensure_ascii=False)), r.text
    assert "0.215" in c.get("/v1/settlements/S-SCORE-1", headers=env.h("north")).json()["reason"]
    # the inquiry page: no "不匹配 (0.22)", no similarity in the check's reason (zh and en)
    r = c.post("/login", data={"username": "clinic-a-user", "password": "correct horse battery", "next": "/"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    for lang in ("zh", "en"):
        c.cookies.set("dualcheck_lang", lang)
        page = c.get(f"/inquiries/{fid}")
        assert page.status_code == 200
        html = page.text
        assert "不匹配" in html or "mismatch" in html
        assert not SCORES.search(html), re.findall(r".{60}(?:0\.2|similarity|相似度).{20}", html)
    c.cookies.clear()


def test_a_hold_names_only_a_flag_of_its_scope(api):
    env = api
    _keys(env)
    with session_scope(env.rt.sessions) as db:
        fa, fb = _flag(db, "CLINIC-A", "S-H-A"), _flag(db, "PHARM-B", "S-H-B")
    c = env.client
    t0 = (utcnow() - timedelta(hours=2)).isoformat()
    t1 = (utcnow() - timedelta(hours=1)).isoformat()
    base = {"reason": "case 7", "camera_id": "CAM-A", "start": t0, "end": t1}
    for flag_id in (fb, "no-such-flag"):  # another region's flag, an unknown one: refused alike
        r = c.post("/v1/holds", json={**base, "flag_id": flag_id}, headers=env.h("north"))
        assert r.status_code == 404, r.text
    # the admin sees both regions but still cannot tie CAM-A's hold to PHARM-B's flag
    assert c.post("/v1/holds", json={**base, "flag_id": fb}, headers=env.h("admin")).status_code == 404
    ok = c.post("/v1/holds", json={**base, "flag_id": fa}, headers=env.h("north"))
    assert ok.status_code == 201, ok.text
    # a stray hold written before the check (another organisation's, naming fb) is neither shown
    # with fb nor released when fb is dismissed
    with session_scope(env.rt.sessions) as db:
        stray = EvidenceHold(camera_id="CAM-A", org_id="CLINIC-A", reason="old", flag_id=fb, created_by="t",
                             start_at=utcnow() - timedelta(hours=2), end_at=utcnow() - timedelta(hours=1))
        db.add(stray)
        db.flush()
        stray_id = stray.id
    seen = c.get(f"/v1/flags/{fb}", headers=env.h("south")).json()
    assert stray_id not in {h["id"] for h in seen["holds"]}
    r = c.post(f"/v1/flags/{fb}/review", json={"decision": "dismiss", "note": "fine"}, headers=env.h("south"))
    assert r.status_code == 200, r.text
    with session_scope(env.rt.sessions) as db:
        assert db.get(EvidenceHold, stray_id).released_at is None


def test_camera_ids_are_never_reused_across_organisations(api):
    env = api
    _keys(env)
    c = env.client
    body = {"id": "CAM-X", "org_id": "CLINIC-A", "name": "c", "role": "settlement_counter",
            "url": "rtsp://10.0.0.7/s"}
    assert c.post("/v1/cameras", json=body, headers=env.h("admin")).status_code == 201
    assert c.delete("/v1/cameras/CAM-X", headers=env.h("admin")).status_code in (200, 204)
    r = c.post("/v1/cameras", json={**body, "org_id": "PHARM-B"}, headers=env.h("admin"))
    assert r.status_code == 409, r.text
    assert "never reused" in r.json()["error"]["reason"] and "CLINIC-A" not in r.text
    # its own organisation may bring it back
    assert c.post("/v1/cameras", json=body, headers=env.h("admin")).status_code == 201


def test_a_settlement_id_taken_elsewhere_answers_like_any_conflict(api):
    env = api
    _keys(env)
    c = env.client
    at = (utcnow() - timedelta(hours=1)).isoformat()
    row = {"settlement_id": "SETL-1", "insured_id": "P-1", "counter": "counter-1", "settled_at": at,
           "amount": "10.00", "type": "pharmacy"}
    assert c.post("/v1/settlements", json=[{**row, "org_id": "PHARM-B"}], headers=env.h("ingest_b")).status_code == 200
    same_org = c.post("/v1/settlements", json=[{**row, "org_id": "PHARM-B", "amount": "11.00"}],
                      headers=env.h("ingest_b"))
    other_org = c.post("/v1/settlements", json=[{**row, "org_id": "CLINIC-A"}], headers=env.h("ingest_a"))
    assert same_org.status_code == other_org.status_code == 422
    assert other_org.json() == same_org.json()  # nothing says where the id lives or what it holds
    assert "PHARM-B" not in other_org.text and "10.00" not in other_org.text
    with session_scope(env.rt.sessions) as db:
        taken = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "settlement.id_taken")))
        assert [(a.org_id, a.detail["claimed_for"]) for a in taken] == [("PHARM-B", "CLINIC-A")]
        assert db.get(Settlement, "SETL-1").org_id == "PHARM-B"


def test_ids_are_matched_in_full(api_sqlite, testdata):
    for ok in (is_camera_id, is_counter, is_entity_id, is_settlement_ref, is_staff_id, is_username):
        assert ok("A-1") and not ok("A-1\n") and not ok("A-1\r\n") and not ok("")
    try:
        check_insured_id("SECNL\n")
        raise AssertionError("a trailing newline passed")
    except ValueError:
        pass
    env = api_sqlite
    _keys(env)
    c = env.client
    photo = (testdata / "faces" / "obama2.jpg").read_bytes()
    r = c.put("/v1/insured/SECNL%0A/photos", files={"photos": ("a.jpg", photo, "image/jpeg")},
              headers=env.h("ingest"))
    assert r.status_code == 400, r.text
    r = c.post("/v1/verify", data={"insured_id": "SECNL", "settlement_ref": "R-1\n"},
               files={"capture": ("a.jpg", photo, "image/jpeg")}, headers=env.h("terminal"))
    assert r.status_code in (400, 422), r.text
    r = c.post("/v1/cameras", json={"id": "CAM-NL\n", "org_id": "CLINIC-A", "name": "c",
                                    "role": "settlement_counter", "url": "rtsp://10.0.0.7/s"},
               headers=env.h("admin"))
    assert r.status_code == 400, r.text


def test_rtsp_credentials_in_the_query_are_sealed_and_masked(api_sqlite):
    env = api_sqlite  # sealing is the same on both; PostgreSQL would need the region's key set
    _keys(env)
    c = env.client
    url = "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=admin&password=Dahua%26Secret1"
    r = c.post("/v1/cameras", json={"id": "CAM-DH", "org_id": "CLINIC-A", "name": "dahua",
                                    "role": "settlement_counter", "url": url}, headers=env.h("admin"))
    assert r.status_code == 201, r.text
    for body in (r.json(), c.get("/v1/cameras/CAM-DH", headers=env.h("north")).json(),
                 c.get("/v1/cameras", headers=env.h("north")).json()):
        text = json.dumps(body)
        assert "Dahua" not in text and "admin" not in text, text
    with session_scope(env.rt.sessions) as db:
        cam = db.get(Camera, "CAM-DH")
        assert cam.rtsp_url == "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=***&password=***"
        assert CredentialBox.is_sealed(cam.rtsp_password) and "Dahua" not in cam.rtsp_password
        pw = env.rt.credentials.open(cam.rtsp_password)
        target = split_credentials(cam.rtsp_url)
        opened = type(target)(cam.rtsp_url, cam.rtsp_username, pw).with_credentials()
        assert opened == url  # what the recorder opens
        # a camera stored in clear by an older version is sealed by `dualcheck cameras seal`
        db.add(Camera(id="CAM-OLD", org_id="CLINIC-A", name="old", role="settlement_counter",
                      rtsp_url="rtsp://10.0.0.8/cam/realmonitor?channel=1&user=admin&password=old%21pw", covers=[]))
        db.flush()
        seal_credentials(db, env.rt.credentials)
        old = db.get(Camera, "CAM-OLD")
        assert "old" not in old.rtsp_url.split("/")[-1] and env.rt.credentials.open(old.rtsp_password) == "old!pw"
