"""The audit trail, readable (issue 17): GET /v1/audit and /v1/audit.csv for admins and auditors, filtered
by actor, organisation, insured person, flag, camera, action and time; each read audited itself. On
SQLite and PostgreSQL (the filters and the migration's backfill are SQL)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from api.keys import KeyError_, add_service_key
from api.web.auth import UserError, add_user
from storage.audit import audit
from storage.db import alembic_config, make_engine, migrate, session_scope
from tests.api import images


@pytest.fixture
def trail(api, testdata):
    """Real enrolments and a real face check through the API, plus events of flags and cameras."""
    with session_scope(api.rt.sessions) as db:
        for role, kw in (("admin", {}), ("auditor", {}), ("inspector", {"regions": ["north"]})):
            api.keys[role] = add_service_key(db, role, f"{role} key", **kw)
    for pid, face in (("P-AUD-1", "obama.jpg"), ("P-AUD-2", "biden.jpg")):
        r = api.client.put(f"/v1/insured/{pid}/photos", headers=api.h("ingest"),
                           files=[("photos", (face, images.read(testdata / "faces" / face), "image/jpeg"))])
        assert r.status_code == 200, r.text
    r = api.client.post("/v1/verify", data={"insured_id": "P-AUD-1"}, headers=api.h("terminal"),
                        files={"image": ("c.jpg", images.read(testdata / "faces/obama2.jpg"), "image/jpeg")})
    assert r.status_code == 200, r.text
    api.verification_id = r.json()["verification_id"]
    old = datetime(2025, 1, 10, 3, 0, tzinfo=timezone.utc)
    with session_scope(api.rt.sessions) as db:
        audit(db, actor="user:wang", action="clip.view", outcome="ok", org_id="CLINIC-A", subject="camera:CAM-X")
        audit(db, actor="user:wang", action="evidence.face.view", outcome="ok", org_id="CLINIC-A",
              subject="face_evidence:FE1", detail={"flag_id": "FLAG-1"})
        audit(db, actor="user:li", action="flag.view", outcome="ok", org_id="PHARM-B", subject="flag:FLAG-2")
        audit(db, actor="cli", action="=HYPERLINK(\"x\")", outcome="ok", note="-2+3 @evil").at = old
    return api


def get(api, who, **q):
    return api.client.get("/v1/audit", params=q, headers=api.h(who))


def test_filters_by_insured_actor_org_flag_camera_action_and_time(trail):
    api = trail
    r = get(api, "auditor", insured="P-AUD-1")
    assert r.status_code == 200, r.text
    body = r.json()
    actions = sorted(e["action"] for e in body["events"])
    assert actions == ["enroll", "verify"], actions  # the face check names its person through its detail
    assert body["total"] == 2 and all(e["insured_id"] == "P-AUD-1" for e in body["events"])
    # a read of the verification record is filed under its person too (looked up from the subject)
    assert api.client.get(f"/v1/verifications/{api.verification_id}", headers=api.h("admin")).status_code == 200
    assert get(api, "admin", insured="P-AUD-1", action="verification.read").json()["total"] == 1

    assert {e["action"] for e in get(api, "admin", actor="wang").json()["events"]} == {"clip.view", "evidence.face.view"}
    assert get(api, "admin", actor="user:wang", camera="CAM-X").json()["total"] == 1
    assert [e["action"] for e in get(api, "admin", flag="FLAG-1").json()["events"]] == ["evidence.face.view"]
    assert [e["action"] for e in get(api, "admin", org="PHARM-B").json()["events"]] == ["flag.view"]
    assert get(api, "admin", action="evidence.*").json()["total"] == 1
    ev = get(api, "admin", action="verify").json()["events"]
    assert len(ev) == 1 and ev[0]["org_id"] == "CLINIC-A" and ev[0]["outcome"] == "match"
    # time: the old event only, by date and by instant with a zone (+08:00 is 2025-01-10T03:00Z)
    assert [e["note"] for e in get(api, "admin", to="2025-01-10").json()["events"]] == ["-2+3 @evil"]
    assert get(api, "admin", **{"from": "2025-01-10T11:00:01+08:00", "to": "2025-01-11"}).json()["total"] == 0
    assert get(api, "admin", **{"from": "2025-01-10T11:00:00+08:00", "to": "2025-01-11"}).json()["total"] == 1


def test_pages_and_bounds(trail):
    api = trail
    total = get(api, "admin").json()["total"]
    assert total >= 7
    first = get(api, "admin", limit=3, offset=0).json()
    a = first["events"]
    b = get(api, "admin", limit=3, offset=3, max_id=first["max_id"]).json()["events"]
    assert len(a) == 3 and len(b) == 3 and not {e["id"] for e in a} & {e["id"] for e in b}
    assert [e["at"] for e in a] == sorted((e["at"] for e in a), reverse=True)  # newest first
    assert get(api, "admin", limit=501).status_code == 422
    assert get(api, "admin", offset=-1).status_code == 422
    for bad in ({"to": "9999-12-31"}, {"from": "0001-01-01T00:00:00+14:00"}, {"from": "yesterday"},
                {"from": "2025-01-10T10:00:00"}, {"from": "2025-02-01", "to": "2025-01-01"}):
        r = get(api, "admin", **bad)
        assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_time", "invalid_range"), (bad, r.text)


def test_only_admins_and_auditors_read_it_and_each_read_is_audited(trail):
    api = trail
    for who in ("inspector", "ingest", "terminal"):
        r = get(api, who)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", who
        assert api.client.get("/v1/audit.csv", headers=api.h(who)).status_code == 403
    assert api.client.get("/v1/audit").status_code == 401
    auditor = "key:" + api.keys["auditor"].split("_")[1]
    r = get(api, "auditor", insured="P-AUD-1", limit=5)
    assert r.status_code == 200
    reads = get(api, "admin", actor=auditor, action="audit.read").json()["events"]
    assert reads and reads[0]["detail"]["filters"]["insured_id"] == "P-AUD-1" and reads[0]["detail"]["count"] == 2
    # read-only: an auditor sees no flags, footage, faces or settlements
    for path in ("/v1/flags", "/v1/flags/stats", f"/v1/verifications/{api.verification_id}", "/v1/settlements/S1"):
        assert api.client.get(path, headers=api.h("auditor")).status_code == 403, path


def test_csv_has_the_filtered_rows_is_bounded_and_safe_in_a_spreadsheet(trail):
    api = trail
    r = api.client.get("/v1/audit.csv", params={"insured": "P-AUD-1"}, headers=api.h("auditor"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;") and r.headers["x-truncated"] == "false"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(x["action"] for x in rows) == ["enroll", "verify"] and rows[0]["insured_id"] == "P-AUD-1"
    r = api.client.get("/v1/audit.csv", params={"actor": "cli"}, headers=api.h("admin"))
    [row] = [x for x in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))) if x["note"]]
    assert row["action"].startswith("'=") and row["note"] == "'-2+3 @evil"  # never a formula
    r = api.client.get("/v1/audit.csv", params={"limit": 2}, headers=api.h("admin"))
    assert len(list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))) == 2
    assert r.headers["x-truncated"] == "true" and int(r.headers["x-total-count"]) > 2
    assert api.client.get("/v1/audit.csv", params={"limit": 100_001}, headers=api.h("admin")).status_code == 422
    exports = get(api, "admin", action="audit.export").json()["events"]
    assert len(exports) == 3 and {e["detail"]["rows"] for e in exports} == {2, len(rows), 1}


def test_auditor_role_for_keys_and_users(api):
    with session_scope(api.rt.sessions) as db:
        assert add_service_key(db, "auditor", "the fund's auditor").startswith("dck_")
        with pytest.raises(KeyError_):
            add_service_key(db, "auditor", "x", regions=["north"])
        with pytest.raises(KeyError_):
            add_service_key(db, "auditor", "x", org_id="CLINIC-A")
        assert add_user(db, "aud1", "long-enough-pw", "auditor").role == "auditor"
        with pytest.raises(UserError):
            add_user(db, "aud2", "long-enough-pw", "auditor", regions=["north"])


def test_migration_backfills_references_of_older_events(db_url):
    """Events written before 0010 are found by person, flag and camera too (its backfill is plain SQL,
    run here on both databases)."""
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0009")
    engine = make_engine(db_url)
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO organisations (id, name, region, uses_face_pay, created_at) "
                          "VALUES ('O7', 'O7', 'r', :t, :now)"), {"t": True, "now": now})
        c.execute(sa.text("INSERT INTO settlements (id, insured_id, org_id, settled_at, amount, type, content_sha256, "
                          "imported_at, imported_by, status, attempts) VALUES ('S7', 'P8', 'O7', :now, '1.00', "
                          "'outpatient', 'x', :now, 'test', 'done', 0)"), {"now": now})
        for subject in ("insured:P7", "flag:F7", "camera:C7", "settlement:S7", "export:E7"):
            c.execute(sa.text("INSERT INTO audit_events (at, actor, action, outcome, subject, detail) "
                              "VALUES (:at, 'x', 'old', 'ok', :s, '{}')"), {"at": now, "s": subject})
    engine.dispose()
    migrate(db_url)
    engine = make_engine(db_url)
    with engine.connect() as c:
        rows = {r.subject: r for r in c.execute(sa.text(
            "SELECT subject, insured_id, flag_id, camera_id FROM audit_events WHERE action = 'old'"))}
    engine.dispose()
    assert tuple(rows["insured:P7"][1:]) == ("P7", None, None)
    assert tuple(rows["flag:F7"][1:]) == (None, "F7", None)
    assert tuple(rows["camera:C7"][1:]) == (None, None, "C7")
    assert tuple(rows["settlement:S7"][1:]) == ("P8", None, None)
    assert tuple(rows["export:E7"][1:]) == (None, None, None)
