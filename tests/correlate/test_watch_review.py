"""The inspectors' work on watch warnings (correlate/watch_review.py) through the API: take for review,
assign, confirm or dismiss with a note; every step in the warning's history and the audit trail; refusals
as 4xx with an English and a Chinese reason; a re-run of the month keeps what was done; a year-to-date
rule's closed warning stays closed in the next month; the state in the lists and the export; institutions
see nothing. Real SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from sqlalchemy import select

from api.keys import add_service_key
from api.web.auth import add_user
from camsim.watchgen import generate
from storage.db import session_scope
from storage.models import AuditEvent, WatchWarning, WatchWarningEvent
from tests.api.conftest import start_env
from tests.correlate.test_watch import MONTH, load, run

PASSWORD = "correct-horse-42"


@pytest.fixture
def env(db_url, make_settings):
    e = start_env(make_settings(db_url), None)
    with session_scope(e.rt.sessions) as db:
        e.keys["admin"] = add_service_key(db, "admin", "operator")
        e.keys["south"] = add_service_key(db, "inspector", "south desk", regions=["south"])
        e.keys["clinic"] = add_service_key(db, "institution", "clinic a", org_id="CLINIC-A")
        add_user(db, "insp-south", PASSWORD, "inspector", regions=["south"], display_name="李稽核")
        add_user(db, "insp-north", PASSWORD, "inspector", regions=["north"], display_name="王稽核")
        add_user(db, "clinic-a", PASSWORD, "institution", org_id="CLINIC-A")
    load(env=e, ds=generate(MONTH))
    assert run(e).status_code == 200
    yield e
    e.client.__exit__(None, None, None)
    e.rt.close()


def warnings(env, who="admin", **params) -> list[dict]:
    r = env.client.get("/v1/watch/warnings", params={"month": MONTH, **params}, headers=env.h(who))
    assert r.status_code == 200, r.text
    return r.json()["warnings"]


def patch(env, wid, who="south", **body):
    return env.client.patch(f"/v1/watch/warnings/{wid}", json=body, headers=env.h(who))


def south_warning(env, rule="watch_oop_person") -> dict:
    return next(w for w in warnings(env) if w["region"] == "south" and w["rule_id"] == rule)


def test_review_assign_and_close_with_history_and_audit(env):
    w = south_warning(env)
    assert w["state"] == "open" and w["assignee"] is None
    r = patch(env, w["id"], state="reviewing", assignee="insp-south")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["assignee"]) == ("reviewing", "insp-south")
    # closing needs a note: refused with a reason in English and in Chinese, nothing changed
    r = patch(env, w["id"], state="confirmed", note="  ")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "note_required" and "note" in err["reason"] and err["reason_zh"] == "核实或排除须填写核查说明"
    r = patch(env, w["id"], state="confirmed", note="入户核实：确因大病自负过高，已转乡村振兴局")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "confirmed" and out["state_note"].startswith("入户核实") and out["closed_at"]
    assert [(e["action"], e["from_status"], e["to_status"], e["from_assignee"], e["to_assignee"])
            for e in out["events"]] == [("review", "open", "reviewing", None, "insp-south"),
                                        ("confirmed", "reviewing", "confirmed", "insp-south", "insp-south")]
    assert all(e["actor"].startswith("key:") and e["at"] for e in out["events"])
    with session_scope(env.rt.sessions) as db:
        lines = list(db.scalars(select(AuditEvent).where(AuditEvent.subject == f"watch_warning:{w['id']}",
                                                         AuditEvent.action.like("watch_warning.%"))
                                .order_by(AuditEvent.id)))
    assert [a.action for a in lines] == ["watch_warning.review", "watch_warning.confirmed"]
    assert lines[1].detail["from"] == "reviewing" and lines[1].detail["to"] == "confirmed"
    assert lines[1].note.startswith("入户核实") and lines[1].insured_id == w["psn_no"]  # the person's trail has it
    # the state filter and the exported lists
    assert [x["id"] for x in warnings(env, state="confirmed")] == [w["id"]]
    assert w["id"] not in {x["id"] for x in warnings(env, state="active")}
    r = env.client.get("/v1/watch/warnings.csv", params={"month": MONTH, "state": "confirmed"}, headers=env.h("admin"))
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][-3:] == ["核查状态", "核查人", "核查说明"] and len(rows) == 2
    assert rows[1][-3] == "已核实" and rows[1][-2] == "李稽核（insp-south）" and rows[1][-1].startswith("入户核实")
    r = env.client.get("/v1/watch/warnings.xlsx", params={"month": MONTH, "state": "confirmed"}, headers=env.h("admin"))
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    header, line = [c.value for c in sheet[2]], [c.value for c in sheet[3]]
    assert line[header.index("核查人")] == "李稽核（insp-south）"  # the inspector's name beside the login
    r = env.client.get("/v1/watch/warnings.csv", params={"month": MONTH}, headers=env.h("admin"))
    states = [x[-3] for x in csv.reader(io.StringIO(r.content.decode("utf-8-sig")))][1:]
    assert states.count("已核实") == 1 and states.count("待核查") == len(states) - 1


def test_bad_transitions_are_refused_with_reasons(env):
    w = south_warning(env)
    north = next(x for x in warnings(env) if x["region"] == "north")
    cases = [
        (dict(state="open"), 409, "cannot_reopen", "预警不能退回待核查"),
        (dict(state="closed"), 422, "invalid_state", "状态只能是：核查中、已核实、已排除"),
        (dict(), 422, "nothing_to_change", "请填写要更改的状态或核查人"),
        (dict(state="reviewing"), 422, "assignee_required", "请指定核查人"),  # a key is nobody: name someone
        (dict(state="reviewing", assignee="nobody"), 422, "unknown_assignee", None),
        (dict(state="reviewing", assignee="clinic-a"), 422, "unknown_assignee", None),
        (dict(state="reviewing", assignee="insp-north"), 422, "assignee_out_of_region", "核查人不负责该预警所在地区"),
        (dict(state="dismissed"), 422, "note_required", None),
    ]
    for body, status, code, zh in cases:
        r = patch(env, w["id"], **body)
        assert r.status_code == status and r.json()["error"]["code"] == code, (body, r.text)
        assert r.json()["error"]["reason_zh"] == (zh or r.json()["error"]["reason_zh"]) and r.json()["error"]["reason"]
    assert patch(env, w["id"], state="reviewing", assignee="insp-south").status_code == 200
    r = patch(env, w["id"], state="reviewing")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_reviewing"
    r = patch(env, w["id"], assignee="insp-south")
    assert r.status_code == 409 and r.json()["error"]["code"] == "same_assignee"
    assert patch(env, w["id"], state="dismissed", note="系统外已报销，不属实").status_code == 200
    for body in (dict(state="confirmed", note="x"), dict(assignee="insp-south")):
        r = patch(env, w["id"], **body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_closed", r.text
        assert r.json()["error"]["reason_zh"] == "该预警已核实或已排除：如需更改，请说明原因重新核查"
    # reopening a closed warning needs the reason; with one it is back in review, its assignee kept
    r = patch(env, w["id"], state="reviewing", assignee="insp-south", note="  ")
    assert r.status_code == 422 and r.json()["error"]["code"] == "reopen_note_required"
    assert r.json()["error"]["reason_zh"] == "重新核查须说明原因"
    r = patch(env, w["id"], state="reviewing", assignee="insp-north", note="报销凭证为他人所有")
    assert r.status_code == 422 and r.json()["error"]["code"] == "assignee_out_of_region"
    got = env.client.get(f"/v1/watch/warnings/{w['id']}", headers=env.h("south")).json()
    assert (got["state"], got["state_note"]) == ("dismissed", "系统外已报销，不属实")  # the refusals changed nothing
    r = patch(env, w["id"], state="reviewing", note="报销凭证为他人所有，需重新核查")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["state"], out["assignee"], out["state_note"], out["closed_at"]) == ("reviewing", "insp-south", None, None)
    assert [(e["action"], e["from_status"], e["to_status"], e["note"]) for e in out["events"]][-2:] == [
        ("dismissed", "reviewing", "dismissed", "系统外已报销，不属实"),
        ("reopen", "dismissed", "reviewing", "报销凭证为他人所有，需重新核查")]
    r = patch(env, w["id"], state="reviewing", note="again")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_reviewing"
    assert patch(env, w["id"], state="confirmed", note="入户核实属实").json()["state"] == "confirmed"
    # out of the caller's regions: not found; institutions and unknown ids: refused, never a 500
    assert patch(env, north["id"], state="reviewing", assignee="insp-south").status_code == 404
    assert env.client.get(f"/v1/watch/warnings/{north['id']}", headers=env.h("south")).status_code == 404
    assert patch(env, w["id"], who="clinic", state="reviewing", assignee="insp-south").status_code == 403
    assert env.client.get("/v1/watch/warnings", headers=env.h("clinic")).status_code == 403
    assert env.client.get(f"/v1/watch/warnings/{w['id']}", headers=env.h("clinic")).status_code == 403
    assert patch(env, 10**9, state="reviewing", assignee="insp-south").status_code == 404
    assert env.client.patch("/v1/watch/warnings/abc", json={}, headers=env.h("south")).status_code == 422
    r = env.client.get("/v1/watch/warnings", params={"state": "nonsense"}, headers=env.h("admin"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_state"
    with session_scope(env.rt.sessions) as db:  # only the accepted steps are in the history
        assert [e.action for e in db.scalars(select(WatchWarningEvent).order_by(WatchWarningEvent.id))] == \
            ["review", "dismissed", "reopen", "confirmed"]


def test_a_rerun_keeps_the_inspectors_work_and_never_duplicates(env):
    ws = {x["id"]: x for x in warnings(env)}
    closed, reviewing = south_warning(env, "watch_oop_person"), south_warning(env, "watch_oop_household")
    assert patch(env, closed["id"], state="dismissed", note="已核实为误报").status_code == 200
    assert patch(env, reviewing["id"], state="reviewing", assignee="insp-south").status_code == 200
    assert run(env).status_code == 200
    again = {x["id"]: x for x in warnings(env)}
    assert set(again) == set(ws)  # the same rows (ids), not new ones
    assert (again[closed["id"]]["state"], again[closed["id"]]["state_note"]) == ("dismissed", "已核实为误报")
    assert (again[reviewing["id"]]["state"], again[reviewing["id"]]["assignee"]) == ("reviewing", "insp-south")
    assert again[closed["id"]]["run_id"] != ws[closed["id"]]["run_id"]  # raised again by the new run
    assert all(x["state"] == "open" for i, x in again.items() if i not in (closed["id"], reviewing["id"]))
    with session_scope(env.rt.sessions) as db:
        n = len(list(db.scalars(select(WatchWarning).where(WatchWarning.month == MONTH))))
    assert n == len(ws)


def test_a_closed_year_to_date_warning_stays_closed_next_month(env):
    """A year-to-date figure only grows: the decision on October's warning holds for November's (a month's
    admissions are that month's: those warnings start open)."""
    # October first: the people over a year-to-date threshold by then are warned again in November
    assert run(env, "2026-10").status_code == 200
    octo = warnings(env, month="2026-10")
    nov = warnings(env)
    both = [o for o in octo if o["rule_id"] != "watch_admissions_month" and any(
        (n["rule_id"], n["psn_no"], n["household_id"]) == (o["rule_id"], o["psn_no"], o["household_id"]) for n in nov)]
    assert both, "the generated year has people over a year-to-date threshold in October and November"
    w = both[0]
    assert patch(env, w["id"], who="admin", state="confirmed", note="十月已核实").status_code == 200
    assert run(env).status_code == 200  # November again: its untouched warning takes October's decision
    n = next(x for x in warnings(env) if (x["rule_id"], x["psn_no"], x["household_id"]) ==
             (w["rule_id"], w["psn_no"], w["household_id"]))
    assert (n["state"], n["state_note"]) == ("confirmed", "十月已核实")
    detail = env.client.get(f"/v1/watch/warnings/{n['id']}", headers=env.h("admin")).json()
    assert [e["action"] for e in detail["events"]] == ["carried_over"]
