"""Cases through the JSON API: one case per settlement at the highest level of its findings, decided once;
level 5 is confirmed, never sent as an inquiry; 已阅 only for levels 1-2; a finding after the decision
reopens the case; answer attachments refused by size, count and sniffed type with nothing lost; paging
past 200 and sorting; working-day deadlines, configurable per level."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from api.keys import add_service_key
from correlate.cases import add_working_days, deadline_days
from correlate.flags import raise_flag
from kernel.settings import Settings
from storage.db import session_scope
from storage.models import Settlement, utcnow


def _keys(env):
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "admin")
        env.keys["north"] = add_service_key(db, "inspector", "north desk", regions=["north"])
        env.keys["south"] = add_service_key(db, "inspector", "south desk", regions=["south"])
        env.keys["clinic_a"] = add_service_key(db, "institution", "clinic A office", org_id="CLINIC-A")


def _finding(env, sid: str, type_: str, level: int, *, amount="12.00", insured="P-1", org="CLINIC-A") -> str:
    with session_scope(env.rt.sessions) as db:
        if db.get(Settlement, sid) is None:
            db.add(Settlement(id=sid, insured_id=insured, org_id=org, counter="counter-1",
                              settled_at=utcnow() - timedelta(hours=1), amount=amount, type="pharmacy",
                              content_sha256="x", imported_by="t", status="done"))
            db.flush()
        f, _ = raise_flag(db, type=type_, rule=type_, level=level, org_id=org, settlement_ids=[sid],
                          occurred_at=utcnow() - timedelta(hours=1), reason=f"{type_} at {sid}", evidence={},
                          model={}, rule_version="t", dedup_key=f"{type_}:{sid}", legal=None)
        return f.id


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.slow
def test_one_case_decided_once_level_5_confirmed_reminders_acknowledged(api):
    """On SQLite and PostgreSQL (the queue's search and filters are SQL of both)."""
    env = api
    _keys(env)
    c, n, a = env.client, env.h("north"), env.h("admin")
    f5 = _finding(env, "S-5", "impersonation_failed_face_check", 5)
    f2 = _finding(env, "S-5", "face_pay_absent", 2)
    cases = c.get("/v1/cases?q=S-5", headers=n).json()["cases"]
    assert len(cases) == 1 and cases[0]["level"] == 5
    case = cases[0]
    assert {x["id"] for x in case["findings"]} == {f5, f2}
    assert c.get(f"/v1/flags/{f2}", headers=n).json()["case_id"] == case["id"]  # findings stay addressable
    r = c.post(f"/v1/cases/{case['id']}/inquiry", json={"note": "why?"}, headers=n)
    assert r.status_code == 409 and r.json()["error"]["code"] == "definite", r.text
    r = c.post(f"/v1/cases/{case['id']}/review", json={"decision": "acknowledge", "note": "seen"}, headers=n)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_reminder", r.text
    r = c.post(f"/v1/cases/{case['id']}/review", json={"decision": "confirm", "note": "确认"}, headers=n)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    assert {x["status"] for x in r.json()["findings"]} == {"confirmed"}
    assert [e["action"] for e in r.json()["events"]].count("confirmed") == 1
    # deciding through a finding is deciding its case: already done
    assert c.post(f"/v1/flags/{f2}/review", json={"decision": "dismiss", "note": "x"}, headers=n).status_code == 409
    # a new finding after the decision reopens the case: the decision did not cover it
    f3 = _finding(env, "S-5", "footage_missing", 2)
    again = c.get(f"/v1/cases/{case['id']}", headers=a).json()
    assert again["status"] == "open" and again["level"] == 5
    assert {x["id"]: x["status"] for x in again["findings"]} == {f5: "confirmed", f2: "confirmed", f3: "open"}
    # reminders: 已阅 in bulk, all or nothing
    r1 = _finding(env, "S-R1", "inconclusive", 1)
    r2 = _finding(env, "S-R2", "footage_missing", 2)
    ids = [c.get(f"/v1/flags/{x}", headers=n).json()["case_id"] for x in (r1, r2)]
    r = c.post("/v1/cases/acknowledge", json={"case_ids": ids + [case["id"]], "note": "已阅"}, headers=n)
    assert r.status_code == 409  # the reopened case is level 5
    assert {c.get(f"/v1/cases/{i}", headers=n).json()["status"] for i in ids} == {"open"}
    r = c.post("/v1/cases/acknowledge", json={"case_ids": ids, "note": "已阅"}, headers=n)
    assert r.status_code == 200 and r.json()["acknowledged"] == ids
    assert {c.get(f"/v1/flags/{x}", headers=n).json()["status"] for x in (r1, r2)} == {"acknowledged"}
    # the south desk sees none of it
    assert c.get(f"/v1/cases/{case['id']}", headers=env.h("south")).status_code == 404
    assert c.get("/v1/cases?status=all", headers=env.h("south")).json()["total"] == 0
    # search: a finding's id, the institution's name, a settlement id with LIKE's wildcards in it
    assert [x["id"] for x in c.get(f"/v1/cases?q={f2}&status=all", headers=n).json()["cases"]] == [case["id"]]
    assert c.get("/v1/cases?q=Clinic A&status=all", headers=n).json()["total"] == 3
    assert c.get("/v1/cases?q=S-_&status=all", headers=n).json()["total"] == 0
    assert c.get("/v1/cases?status=overdue", headers=n).json()["total"] == 0


@pytest.mark.slow
def test_answer_attachments_limits_and_sniffed_type(api_sqlite):
    env = api_sqlite
    _keys(env)
    c, n, inst = env.client, env.h("north"), env.h("clinic_a")
    fid = _finding(env, "S-Q", "face_pay_failed", 3)
    case_id = c.get(f"/v1/flags/{fid}", headers=n).json()["case_id"]
    assert c.get(f"/v1/cases/{case_id}", headers=inst).status_code == 404  # not sent to it yet
    r = c.post(f"/v1/cases/{case_id}/inquiry", json={"note": "请提供处方"}, headers=n)
    assert r.status_code == 200 and r.json()["inquiry"]["state"] == "sent" and r.json()["inquiry"]["answer_due"]
    s = env.settings
    cases = [([("files", ("a.pdf", b"plain text", "application/pdf"))], 415, "unsupported_type"),
             ([("files", ("big.jpg", b"\xff\xd8\xff" + b"0" * s.inquiry_attachment_max_bytes, "image/jpeg"))], 413,
              "too_large"),
             ([("files", (f"p{i}.jpg", _jpeg(), "image/jpeg")) for i in range(s.inquiry_attachment_max_files + 1)],
              400, "too_many_files")]
    for files, status, code in cases:
        r = c.post(f"/v1/cases/{case_id}/answer", data={"note": "见附件"}, files=files, headers=inst)
        assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    assert c.get(f"/v1/cases/{case_id}", headers=n).json()["inquiry"]["state"] == "sent"  # nothing half-done
    jpg = _jpeg()
    r = c.post(f"/v1/cases/{case_id}/answer", data={"note": "处方见附件"},
               files=[("files", ("处方.png", jpg, "image/png"))], headers=inst)  # the content says JPEG
    assert r.status_code == 200, r.text
    att = r.json()["attachments"][0]
    assert att["content_type"] == "image/jpeg" and att["size"] == len(jpg)
    got = c.get(att["url"], headers=n)
    assert got.status_code == 200 and got.content == jpg and got.headers["content-type"] == "image/jpeg"
    key, bucket = f"case-attachments/CLINIC-A/{case_id}/{att['id']}.jpg", env.settings.bucket_footage
    assert env.rt.store.exists(bucket, key)
    # held as evidence of the open case (the bucket has object lock), released when the case is dismissed
    assert env.rt.store.locked(bucket) and env.rt.store.legal_hold(bucket, key)
    assert c.get(att["url"], headers=env.h("south")).status_code == 404
    listed = c.get("/v1/cases?status=replied", headers=n).json()["cases"]
    assert [x["id"] for x in listed] == [case_id] and listed[0]["replied"]
    r = c.post(f"/v1/cases/{case_id}/review", json={"decision": "dismiss", "note": "处方齐全"}, headers=n)
    assert r.status_code == 200 and not env.rt.store.legal_hold(bucket, key)


@pytest.mark.slow
def test_paging_past_200_and_sorting(api_sqlite):
    env = api_sqlite
    _keys(env)
    c, n = env.client, env.h("north")
    for i in range(230):
        _finding(env, f"S-{i:03d}", "inconclusive", 1 + (i % 2), amount=f"{i}.50", insured=f"P-{i}")
    first = c.get("/v1/cases?limit=100&offset=0&sort=amount", headers=n).json()
    assert first["total"] == 230 and first["cases"][0]["settlement_id"] == "S-229"
    last = c.get("/v1/cases?limit=100&offset=200&sort=amount", headers=n).json()["cases"]
    assert len(last) == 30 and last[-1]["settlement_id"] == "S-000"
    everything = [x["id"] for p in (0, 100, 200) for x in
                  c.get(f"/v1/cases?limit=100&offset={p}", headers=n).json()["cases"]]
    assert len(set(everything)) == 230
    levels = [x["level"] for x in c.get("/v1/cases?limit=500", headers=n).json()["cases"]]
    assert levels == sorted(levels, reverse=True)
    assert c.get("/v1/cases?sort=bogus", headers=n).status_code == 400
    assert c.get("/v1/cases?status=bogus", headers=n).status_code == 400
    assert c.get("/v1/cases?q=P-17", headers=n).json()["cases"][0]["insured_id"] == "P-17"


def test_deadlines_count_working_days_and_are_set_per_level():
    tz = ZoneInfo("Asia/Shanghai")
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=tz).astimezone(timezone.utc)
    assert add_working_days(friday, 3, tz).astimezone(tz) == datetime(2026, 12, 2, 10, 0, tzinfo=tz)  # Wednesday
    assert add_working_days(friday, 15, tz).astimezone(tz) == datetime(2026, 12, 18, 10, 0, tzinfo=tz)
    s = Settings(inquiry_deadlines_by_level={4: (2, 10)})
    assert deadline_days(s, 3) == (3, 15) and deadline_days(s, 4) == (2, 10)
