"""Unknown regulars: the same unenrolled face at one counter in most checks over two days becomes a
pending staff suggestion; while it is pending the one-face-many-cards flag does not grow with that
face; confirming it makes a staff member. Real footage in a real SeaweedFS, real checks, real models."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import select

from correlate.regulars import known_regular
from storage.db import session_scope
from storage.models import FaceEvidence, StaffMember, StaffSuggestion, StaffTemplate
from tests.correlate import scenarios as sc


def _block(w, testdata, day: int, slot: int):
    """The usual stranger (biden) at CLINIC-A's counter, ``day`` days after the tests' epoch."""
    start = sc.T0 + timedelta(days=day, seconds=slot * 100.0)
    with session_scope(w.rt.sessions) as db:
        sc.write_block(db, w.rt.store, w.settings.bucket_footage, sc.scene_footage("impostor", testdata),
                       org_id="CLINIC-A", camera_id="CAM-A", start=start, workdir=w.tmp)
    return start + timedelta(seconds=sc.SETTLE_AT)


def _settle(w, sid: str, insured: str, at) -> None:
    assert w.post([sc.settlement(sid, insured, "CLINIC-A", at, terminal="CLINIC-A-T1")]).status_code == 200
    w.run_jobs()


def _many_cards(w) -> list[dict]:
    return [f for f in w.flags() if f["rule"] == "one_face_many_cards"]


def _suggestions(w, who="admin", status="pending") -> list[dict]:
    r = w.client.get("/v1/orgs/CLINIC-A/staff-suggestions", params={"status": status}, headers=w.h(who))
    assert r.status_code == 200, r.text
    return r.json()["suggestions"]


def test_a_regular_becomes_a_suggestion_stops_repeating_flags_and_is_confirmed(world_sqlite, testdata):
    w = world_sqlite
    times = [_block(w, testdata, day, slot) for day in (0, 1) for slot in range(3)]
    for i, at in enumerate(times[:4]):
        _settle(w, f"R-{i}", f"P-{i}", at)
    [flag] = _many_cards(w)  # one face, four cards: the rule works as before
    assert sorted(flag["settlement_ids"]) == ["R-0", "R-1", "R-2", "R-3"]
    assert _suggestions(w) == []  # four checks: not yet a regular (at least five)

    _settle(w, "R-4", "P-4", times[4])
    [sg] = _suggestions(w)
    assert sg["camera_id"] == "CAM-A" and sg["checks"] == 5 and sg["checks_total"] == 5 and sg["days"] == 2
    assert sg["share"] == 1.0 and sg["crop_urls"]
    crop = w.client.get(sg["crop_urls"][0], headers=w.h("admin"))
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    # another organisation's keys do not see it
    assert w.client.get("/v1/orgs/CLINIC-A/staff-suggestions", headers=w.h("ingest_b")).status_code == 404
    assert w.client.get(sg["crop_urls"][0], headers=w.h("ingest_b")).status_code == 404

    # pending: the same face settling again is not added to the flag, nor flagged anew
    _settle(w, "R-5", "P-5", times[5])
    [flag] = _many_cards(w)
    assert "R-5" not in flag["settlement_ids"]
    [sg] = _suggestions(w)
    assert sg["checks"] == 6
    with session_scope(w.rt.sessions) as db:
        fe = db.scalar(select(FaceEvidence).where(FaceEvidence.settlement_id == "R-5",
                                                  FaceEvidence.embedding.is_not(None)))
        assert known_regular(db, "CLINIC-A", fe.model, np.frombuffer(fe.embedding, np.float32, count=fe.dim),
                             w.rt.pipeline.threshold)
        assert not known_regular(db, "PHARM-B", fe.model, np.frombuffer(fe.embedding, np.float32, count=fe.dim),
                                 w.rt.pipeline.threshold)

    # the operator confirms: a staff member with a template from the suggestion
    url = f"/v1/orgs/CLINIC-A/staff-suggestions/{sg['id']}"
    r = w.client.post(f"{url}/confirm", json={"staff_id": "NEW-CASHIER", "name": "新收银员", "role": "bogus"},
                      headers=w.h("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_role"
    r = w.client.post(f"{url}/confirm", json={"staff_id": "NEW-CASHIER", "name": "新收银员", "role": "cashier"},
                      headers=w.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["suggestion"]["status"] == "confirmed"
    staff = r.json()["staff"]
    assert staff["staff_id"] == "NEW-CASHIER" and staff["role"] == "cashier"
    assert [p["source"] for p in staff["photos"]] == ["suggestion"]
    assert w.client.get(staff["photos"][0]["photo_url"], headers=w.h("admin")).status_code == 200
    assert w.client.post(f"{url}/dismiss", headers=w.h("admin")).status_code == 409
    assert _suggestions(w) == [] and len(_suggestions(w, status="confirmed")) == 1
    with session_scope(w.rt.sessions) as db:
        m = db.scalar(select(StaffMember).where(StaffMember.staff_id == "NEW-CASHIER"))
        [tpl] = db.scalars(select(StaffTemplate).where(StaffTemplate.member_id == m.id))
        assert m.org_id == "CLINIC-A" and tpl.photo_key.startswith(f"staff/CLINIC-A/{m.id}/")
        assert db.get(StaffSuggestion, sg["id"]).member_id == m.id
    # erasing the member takes the copied photo and the suggestion's face, never the evidence crops
    evidence = list(w.rt.store.list_keys(w.settings.bucket_biometrics, prefix="evidence/CLINIC-A/"))
    assert w.client.delete("/v1/orgs/CLINIC-A/staff/NEW-CASHIER", headers=w.h("admin")).status_code == 200
    assert list(w.rt.store.list_keys(w.settings.bucket_biometrics, prefix="staff/")) == []
    assert list(w.rt.store.list_keys(w.settings.bucket_biometrics, prefix="evidence/CLINIC-A/")) == evidence
    assert _suggestions(w, status="all") == []


def test_a_dismissed_face_is_a_customer_again(world_sqlite, testdata):
    w = world_sqlite
    times = [_block(w, testdata, day, slot) for day in (0, 1) for slot in range(3)]
    for i, at in enumerate(times[:5]):
        _settle(w, f"D-{i}", f"P-{i}", at)
    [sg] = _suggestions(w)
    r = w.client.post(f"/v1/orgs/CLINIC-A/staff-suggestions/{sg['id']}/dismiss", headers=w.h("admin"))
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    _settle(w, "D-5", "P-5", times[5])
    [flag] = _many_cards(w)
    assert "D-5" in flag["settlement_ids"]  # one face, many cards again
    assert _suggestions(w) == []  # and it is not suggested anew
