"""The rule library over the API, driving the footage checks: admins edit (a note required, bad input
refused with a reason, audited), inspectors and auditors read, institutions are refused; the edited
thresholds and switch are what the next footage check applies, its flag records the new version; a
rule's reference data imports as CSV with per-row errors; precision per rule and version after a
decision. Real footage gaps in a real SeaweedFS, the API over a real database."""
from __future__ import annotations

from sqlalchemy import select

from api.keys import add_service_key
from storage.db import session_scope
from storage.models import AuditEvent
from tests.correlate import scenarios as sc


def test_rules_edited_through_the_api_drive_the_footage_checks(world_sqlite, testdata):
    w = world_sqlite
    c = w.client
    assert c.get("/v1/rules", headers=w.h("clinic_a")).status_code == 403
    listed = c.get("/v1/rules", headers=w.h("inspector_north"))
    assert listed.status_code == 200
    by_id = {r["id"]: r for r in listed.json()["rules"]}
    assert by_id["repeated_footage_missing"]["tag"] == "repeated_footage_missing@1"
    assert by_id["claims_substitution"]["class_zh"] == "药品类"
    assert c.patch("/v1/rules/footage_missing", json={"enabled": False, "note": "x"},
                   headers=w.h("inspector_north")).status_code == 403
    # refused with a reason, nothing changed
    for body, status, code in (({"thresholds": {"count": 2}}, 400, "note_required"),
                               ({"thresholds": {"count": 2}, "note": "   "}, 400, "note_required"),
                               ({"thresholds": {"cnt": 2}, "note": "x"}, 400, "unknown_threshold"),
                               ({"thresholds": {"count": "two"}, "note": "x"}, 400, "bad_threshold"),
                               ({"level": 9, "note": "x"}, 400, "bad_level"),
                               ({"effective_from": "tomorrow", "note": "x"}, 422, "invalid_time"),
                               ({"effective_from": "2026-12-02T00:00:00Z", "effective_to": "2026-12-01T00:00:00Z",
                                 "note": "x"}, 400, "bad_dates"),
                               ({"colour": "red", "note": "x"}, 422, "invalid_request")):
        r = c.patch("/v1/rules/repeated_footage_missing", json=body, headers=w.h("admin"))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        assert r.json()["error"]["reason"]
    assert c.patch("/v1/rules/no_such_rule", json={"level": 2, "note": "x"}, headers=w.h("admin")).status_code == 404
    assert c.get("/v1/rules/repeated_footage_missing", headers=w.h("admin")).json()["version"] == 1
    # two missing windows now make a repeat, and single ones are not flagged at all
    r = c.patch("/v1/rules/repeated_footage_missing", json={"thresholds": {"count": 2}, "level": 4,
                                                            "note": "2024年第一批动态调整"}, headers=w.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["tag"] == "repeated_footage_missing@2"
    assert c.patch("/v1/rules/footage_missing", json={"enabled": False, "note": "单次缺失不再预警"},
                   headers=w.h("admin")).status_code == 200
    gaps = [w.gap_block() for _ in range(2)]
    w.add_block("ghost", testdata)  # the recorder came back: the gaps are final
    assert w.post([sc.settlement(f"G-{i}", "P-OBAMA", "CLINIC-A", b.settled_at, counter="counter-1")
                   for i, b in enumerate(gaps)]).status_code == 200
    w.run_jobs()
    flags = w.flags()
    assert not [f for f in flags if f["rule"] == "footage_missing"]
    rep = [f for f in flags if f["rule"] == "repeated_footage_missing"]
    assert len(rep) == 1 and rep[0]["level"] == 4 and sorted(rep[0]["settlement_ids"]) == ["G-0", "G-1"]
    assert rep[0]["rule_version"] == "repeated_footage_missing@2"
    # the history: who, when, why, before -> after; the change audited
    with session_scope(w.rt.sessions) as db:
        w.env.keys["auditor"] = add_service_key(db, "auditor", "audit office")
    one = c.get("/v1/rules/repeated_footage_missing", headers=w.h("auditor"))
    assert one.status_code == 200
    h = one.json()["history"]
    assert [x["version"] for x in h] == [2, 1] and h[0]["note"] == "2024年第一批动态调整"
    assert (h[0]["before"]["thresholds"]["count"], h[0]["after"]["thresholds"]["count"]) == (3, 2)
    assert h[0]["actor"].startswith("key:")
    with session_scope(w.rt.sessions) as db:
        acts = db.scalars(select(AuditEvent).where(AuditEvent.action == "rule.change")).all()
        assert {(a.subject, a.detail["version"]) for a in acts} == {("rule:repeated_footage_missing", 2),
                                                                     ("rule:footage_missing", 2)}
    # precision: the repeat confirmed
    case_id = c.get(f"/v1/flags/{rep[0]['id']}", headers=w.h("admin")).json()["case_id"]
    r = c.post(f"/v1/cases/{case_id}/review", json={"decision": "confirm", "note": "核实确认"},
               headers=w.h("inspector_north"))
    assert r.status_code == 200, r.text
    stats = {s["rule"]: s for s in c.get("/v1/rules/stats", headers=w.h("inspector_north")).json()["rules"]}
    s = stats["repeated_footage_missing"]
    assert (s["confirmed"], s["decided"], s["precision"]) == (1, 1, 1.0)
    assert s["versions"] == [{"version": 2, "confirmed": 1, "dismissed": 0, "decided": 1, "flags": 1,
                              "precision": 1.0}]
    assert c.get("/v1/rules/stats", headers=w.h("inspector_south")).json()["rules"] == []  # not their region


def test_reference_data_imports_as_csv_through_the_api(world_sqlite):
    w = world_sqlite
    c = w.client
    url = "/v1/rules/claims_over_quantity/reference"
    csv = "med_list_codg,max_days\nXA01,7\nXA02,lots\nXA03,14\n".encode()
    hdr = {**w.h("admin"), "Content-Type": "text/csv"}
    assert c.post(url, params={"kind": "days_supply", "note": "x"}, content=csv,
                  headers={**w.h("inspector_north"), "Content-Type": "text/csv"}).status_code == 403
    r = c.post(url, params={"kind": "days_supply"}, content=csv, headers=hdr)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "note_required")
    r = c.post(url, params={"kind": "price_band", "note": "x"}, content=csv, headers=hdr)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "reference_kind")
    r = c.post(url, params={"kind": "days_supply", "note": "知识库第1批"}, content=csv, headers=hdr)
    assert r.status_code == 207, r.text
    out = r.json()
    assert (out["imported"], out["version"]) == (2, 2)
    assert [(e["line"], e["key"]) for e in out["errors"]] == [(3, "XA02")] and "max_days" in out["errors"][0]["reason"]
    r = c.post(url, params={"kind": "days_supply", "note": "再次导入"}, content=csv, headers=hdr)
    assert (r.status_code, r.json()["unchanged"], r.json()["version"]) == (207, 2, None)
    r = c.post(url, params={"kind": "days_supply", "note": "x"}, content=b"med_list_codg,max_days\nXA09,0\n",
               headers=hdr)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_rows")
    one = c.get("/v1/rules/claims_over_quantity", headers=w.h("inspector_north")).json()
    assert one["version"] == 2 and one["reference"] == {"days_supply": 2}
    assert {(x["med_list_codg"], x["value"]) for x in one["reference_rows"]} == {("XA01", 7), ("XA03", 14)}
    assert one["history"][0]["after"]["import"]["refused"] == 1
