"""The audit trail page and the audited flag queue, without a browser (TestClient, real database)."""
from __future__ import annotations

import re

from sqlalchemy import select

from storage.audit import audit
from storage.db import session_scope
from storage.models import AuditEvent
from tests.web.test_auth import login


def events(web, action):
    with session_scope(web.rt.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_the_web_flag_queue_view_is_audited(web):
    c = web.client
    login(c, "insp-north")
    assert c.get("/flags", params={"level": "3", "date_from": "2026-01-01"}).status_code == 200
    [e] = events(web, "flags.list")
    assert e.actor == "user:insp-north" and e.detail["view"] == "web" and e.detail["level"] == "3"
    assert e.detail["date_from"] == "2026-01-01" and e.detail["count"] == 0


def test_audit_page_for_admins_and_auditors_only_in_words_and_local_time(web):
    c = web.client
    with session_scope(web.rt.sessions) as db:
        audit(db, actor="user:insp-north", action="evidence.face.view", outcome="ok", org_id="CLINIC-A",
              subject="face_evidence:FE9", detail={"flag_id": "F9", "insured_id": "P-WEB"})
        audit(db, actor="user:insp-north", action="flag.view", outcome="ok", org_id="CLINIC-A", subject="flag:F8")
    for user in ("insp-north", "clinic-a", "ops"):
        c.cookies.clear()
        login(c, user)
        assert c.get("/audit").status_code == 403, user
        assert "/audit" not in c.get("/cameras" if user == "ops" else "/").text
    c.cookies.clear()
    login(c, "auditor")
    assert c.get("/", follow_redirects=False).headers["location"] == "/audit"
    page = c.get("/audit", params={"insured": "P-WEB"})
    assert page.status_code == 200 and 'id="nav-audit"' in page.text
    rows = re.findall(r'<tr data-event="\d+" data-action="([^"]+)"', page.text)
    assert rows == ["evidence.face.view"]
    assert "查看录像人脸" in page.text  # the action as words, not its code
    assert 'href="/v1/audit.csv?insured=P-WEB"' in page.text
    assert c.get("/flags").status_code == 403  # an auditor sees no flags
    # a day of the form is a day of the UI's timezone (Asia/Shanghai): the CSV link carries its UTC bounds
    page = c.get("/audit", params={"date_from": "2026-03-01", "date_to": "2026-03-01"})
    assert "from=2026-02-28T16%3A00%3A00Z&amp;to=2026-03-01T16%3A00%3A00Z" in page.text
    for bad in ("9999-12-31", "0001-13-01", "x"):
        assert c.get("/audit", params={"date_to": bad}).status_code == 400
    # the auditor's own reads are in the trail, and the CSV link works with the session
    reads = events(web, "audit.read")
    assert reads and all(e.actor == "user:auditor" for e in reads) and reads[0].detail["filters"] == {
        "insured_id": "P-WEB", "max_id": reads[0].detail["filters"]["max_id"]}
    csv_text = c.get("/v1/audit.csv", params={"insured": "P-WEB"}).text
    assert "evidence.face.view" in csv_text and "flag.view" not in csv_text
    c.get("/lang/en")
    assert "Face crop viewed" in c.get("/audit", params={"insured": "P-WEB"}).text
