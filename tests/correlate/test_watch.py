"""The watch rules end to end on a generated population (camsim/watchgen.py) with every threshold's edge
exactly at, one unit below and one unit above: population lists in (1101 outputs and list lines, API and
`dualcheck watch import`), admissions, discharges and settlements in through POST /v1/claims, the monthly
run (API, CLI and the worker's schedule), and the warning lists out as xlsx (read back with openpyxl)
and CSV. Real SQLite and PostgreSQL, real SeaweedFS."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from api.keys import add_service_key
from camsim.watchgen import generate
from correlate import rulebook
from correlate.watch import run_due
from storage.db import session_scope
from storage.models import ClaimSettlement, Household, PersonCategory, WatchRun, WatchWarning
from tests.api.conftest import start_env
from tests.cli.conftest import make_cli

MONTH = "2026-11"


@pytest.fixture
def env(db_url, make_settings):
    e = start_env(make_settings(db_url), None)
    with session_scope(e.rt.sessions) as db:
        e.keys["admin"] = add_service_key(db, "admin", "operator")
        e.keys["inspector_south"] = add_service_key(db, "inspector", "south desk", regions=["south"])
    yield e
    e.client.__exit__(None, None, None)
    e.rt.close()


@pytest.fixture
def ds():
    return generate(MONTH)


def load(env, ds):
    r = env.client.post("/v1/watch/population", json=ds.population, headers=env.h("ingest"))
    assert r.status_code == 200, r.text
    r = env.client.post("/v1/claims", json=ds.messages, headers=env.h("ingest"))
    assert r.status_code == 200, r.text
    return r.json()


def run(env, month=MONTH, who="admin"):
    return env.client.post("/v1/watch/runs", json={"month": month}, headers=env.h(who))


def warned(env, month=MONTH, who="admin") -> dict[str, set[str]]:
    r = env.client.get("/v1/watch/warnings", params={"month": month}, headers=env.h(who))
    assert r.status_code == 200, r.text
    out: dict[str, set[str]] = {}
    for w in r.json()["warnings"]:
        out.setdefault(w["rule_id"], set()).add(f"psn:{w['psn_no']}" if w["psn_no"] else f"hh:{w['household_id']}")
    return out


def test_edges_warn_only_above_each_threshold_and_the_xlsx_lists_them(env, ds):
    out = load(env, ds)
    assert out["by_kind"]["settlement"] > 20 and out["by_kind"]["admission"] > 20
    # the settlements keep the person's burden as the platform gave it
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(ClaimSettlement)
                         .where(ClaimSettlement.psn_part_amt.is_not(None))) == out["by_kind"]["settlement"]
    r = run(env)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["settlements_without_psn_part_amt"] == 0
    got = warned(env)
    for rule, subjects in ds.truth.items():
        assert got.get(rule, set()) == subjects, rule  # exactly the ones above: none at or below the threshold
        assert not (got.get(rule, set()) & ds.near[rule])
    assert summary["warnings"] == sum(len(v) for v in ds.truth.values()) == summary["new"]

    # levels: the 因病返贫 warnings are reminders (no inquiry), the admissions rules need checking
    ws = env.client.get("/v1/watch/warnings", params={"month": MONTH}, headers=env.h("admin")).json()["warnings"]
    for w in ws:
        assert w["reminder"] == w["rule_id"].startswith("watch_oop"), w
        assert w["rule_version"] == f"{w['rule_id']}@1" and w["unit"] in ("谭坝镇", "关庙镇")
    above = {w["rule_id"]: w for w in ws}
    assert above["watch_oop_person"]["figure"] == "10000.01" and above["watch_oop_person"]["threshold"] == "10000.00"
    assert above["watch_inpatient_days_year"]["figure"] == "91"
    assert above["watch_admissions_month"]["figure"] == "6"
    assert above["watch_oop_per_capita"]["figure"] == "6000.01"

    # the xlsx: one sheet per responsible unit, each listing exactly that unit's warnings
    r = env.client.get("/v1/watch/warnings.xlsx", params={"month": MONTH}, headers=env.h("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    listed = {}
    for sheet in wb.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[1][0] == "责任单位" and sheet.title in rows[0][0]
        for row in rows[2:]:
            assert row[0] == sheet.title
            listed[(row[5], row[2] if row[2] != "（全户）" else row[3])] = row
    expected = {(w["rule_id"], w["psn_no"] or w["household_id"]) for w in ws}
    from correlate.watch_rules import BY_ID
    assert {(next(k for k, v in BY_ID.items() if v.name_zh == name), who) for name, who in listed} == expected
    row = next(v for (name, _), v in listed.items() if name == BY_ID["watch_oop_person"].name_zh)
    assert row[6] == "10000.01 元" and row[7] == "超过 10000.00 元" and row[9] == "警示提醒（无需质询）"

    # the CSV: the same rows; one unit only when asked
    r = env.client.get("/v1/watch/warnings.csv", params={"month": MONTH, "unit": "谭坝镇"}, headers=env.h("admin"))
    assert r.status_code == 200
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0][0] == "责任单位" and len(lines) > 1 and all(x[0] == "谭坝镇" for x in lines[1:])
    assert len(lines) - 1 == sum(1 for w in ws if w["unit"] == "谭坝镇")


def test_a_settlement_stored_without_the_burden_gets_it_when_sent_again(env):
    setl = {"setl_id": "SB1", "mdtrt_id": "MB1", "psn_no": "PB1", "med_type": "21", "setl_time": "2026-11-03 10:00:00",
            "medfee_sumamt": "30000.00", "counter": "counter-1"}
    msg = {"infno": "2304", "fixmedins_code": "CLINIC-A", "input": {"setlinfo": setl}}
    assert env.client.post("/v1/claims", json=msg, headers=env.h("ingest")).status_code == 200
    assert run(env).json()["settlements_without_psn_part_amt"] == 1
    msg["input"]["setlinfo"] = {**setl, "psn_part_amt": "26000.01", "psn_cash_pay": "20000.00"}
    r = env.client.post("/v1/claims", json=msg, headers=env.h("ingest"))
    assert r.status_code == 200 and r.json()["unchanged"] == 1
    with session_scope(env.rt.sessions) as db:
        row = db.get(ClaimSettlement, "SB1")
        assert (row.psn_part_amt, row.psn_cash_pay) == ("26000.01", "20000.00")
    assert run(env).json()["settlements_without_psn_part_amt"] == 0
    assert warned(env)["watch_oop_resident"] == {"psn:PB1"}


def test_rerun_replaces_the_month_and_a_threshold_edit_takes_effect(env, ds):
    load(env, ds)
    assert run(env).status_code == 200
    first = warned(env)
    assert run(env).status_code == 200  # the same month again: the same list, not twice
    assert warned(env) == first
    # the supervisor lowers the person threshold to 9,999.99: the 10,000.00 person is now above it
    with session_scope(env.rt.sessions) as db:
        rulebook.change(db, "watch_oop_person", actor="test", note="阈值调整", thresholds={"max_amount": 9999.99})
    assert run(env).status_code == 200
    got = warned(env)["watch_oop_person"]
    at = next(s for s in ds.near["watch_oop_person"] if s in got)  # exactly one of the near ones is now above
    assert len(got) == 2 and at
    ws = env.client.get("/v1/watch/warnings", params={"month": MONTH, "rule": "watch_oop_person"},
                        headers=env.h("admin")).json()["warnings"]
    assert {w["rule_version"] for w in ws} == {"watch_oop_person@2"}


def test_bad_input_is_refused_with_reasons_and_nothing_good_is_lost(env, ds):
    good = ds.population[:4]
    bad = [{"psn_no": "PX1"}, {"psn_no": "PX2", "psn_idet_type": "低保", "begntime": "2026-13-01"},
           {"psn_no": "PX3", "household_id": "HX", "unit": "谭坝镇", "psn_idet_type": "低保", "begntime": "2026-02-01",
            "endtime": "2026-01-01"}, {"infno": "1101", "output": {"baseinfo": {}, "idetinfo": "x"}}, "nonsense"]
    r = env.client.post("/v1/watch/population", json=good + bad, headers=env.h("ingest"))
    assert r.status_code == 207, r.text
    out = r.json()
    assert out["refused"] == 5 and out["imported"] >= 4
    reasons = {e["line"]: e["reason"] for e in out["errors"]}
    assert "household_id" in reasons["4"] and "begntime" in reasons["5"] and "endtime" in reasons["6"]
    # the same again: nothing new; a category that ended since is updated, not duplicated
    r = env.client.post("/v1/watch/population", json=good, headers=env.h("ingest"))
    assert r.json()["unchanged"] == r.json()["records"]
    cat = next(p for p in ds.population if p.get("infno") == "1101")
    ended = json.loads(json.dumps(cat))
    ended["output"]["idetinfo"][0]["endtime"] = "2026-10-31 00:00:00"
    r = env.client.post("/v1/watch/population", json=[ended], headers=env.h("ingest"))
    assert r.json()["updated"] == 1
    with session_scope(env.rt.sessions) as db:
        psn = cat["output"]["baseinfo"]["psn_no"]
        rows = list(db.scalars(select(PersonCategory).where(PersonCategory.psn_no == psn)))
        assert len(rows) == 1 and rows[0].endtime is not None
    # a civil-affairs list as CSV through the API: the good line kept, the bad one named by its line
    body = ("psn_no,household_id,unit,region,psn_idet_type,begntime,endtime\n"
            "PC1,HC1,谭坝镇,south,低保,2026-01-01,\n"
            "PC2,HC1,谭坝镇,south,低保,2026-02-30,\n").encode()
    r = env.client.post("/v1/watch/population.csv", content=body, headers={**env.h("ingest"),
                                                                           "Content-Type": "text/csv"})
    assert r.status_code == 207, r.text
    assert r.json()["by_kind"] == {"category": 1, "household": 1} and r.json()["errors"][0]["line"] == 3
    r = env.client.post("/v1/watch/population.csv", content="psn_no\nP1\n".encode("gbk") + b"\xff\xfe",
                        headers={**env.h("ingest"), "Content-Type": "text/csv"})
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["reason"]
    r = env.client.post("/v1/watch/population.csv", content=b"name,unit\nx,y\n", headers=env.h("ingest"))
    assert r.status_code == 422 and "psn_no" in r.json()["error"]["reason"]
    for month, why in (("2026-13", "YYYY-MM"), ("2099-01", "not ended"), ("11/2026", "YYYY-MM")):
        r = run(env, month)
        assert r.status_code == 422 and why in r.json()["error"]["reason"], r.text
    assert env.client.post("/v1/watch/runs", json={"month": MONTH}, headers=env.h("ingest")).status_code == 403
    assert env.client.post("/v1/watch/population", json=[], headers=env.h("ingest")).status_code == 422


def test_inspectors_see_their_regions_households_only(env, ds):
    load(env, ds)
    assert run(env).status_code == 200
    everyone = warned(env)
    south = warned(env, who="inspector_south")
    assert south and all(s <= everyone.get(r, set()) for r, s in south.items())
    ws = env.client.get("/v1/watch/warnings", params={"month": MONTH}, headers=env.h("inspector_south")).json()
    assert {w["region"] for w in ws["warnings"]} == {"south"}
    north_person = next(w["psn_no"] for w in env.client.get("/v1/watch/warnings", params={"month": MONTH},
                        headers=env.h("admin")).json()["warnings"] if w["region"] == "north" and w["psn_no"])
    r = env.client.get(f"/v1/watch/persons/{north_person}", params={"month": MONTH}, headers=env.h("inspector_south"))
    assert r.status_code == 404


def test_person_history_month_by_month(env, ds):
    load(env, ds)
    assert run(env).status_code == 200
    psn = next(iter(ds.truth["watch_inpatient_days_year"]))[4:]
    r = env.client.get(f"/v1/watch/persons/{psn}", params={"month": MONTH}, headers=env.h("admin"))
    assert r.status_code == 200, r.text
    h = r.json()
    days = [f["inpatient_days"] for f in h["figures"]]
    assert len(days) == 11 and days[1] == 28 and days[8] == 28 + 2 and days[10] == 91  # February; 29-30 September; to 30 November
    assert days == sorted(days)  # cumulative over the year
    assert h["household"]["unit"] in ("谭坝镇", "关庙镇") and h["categories"][0]["category"] == "tekun"
    assert [w["rule_id"] for w in h["warnings"]] == ["watch_inpatient_days_year"]


def test_cli_import_run_export_and_the_schedule(env, ds, tmp_path, db_url):
    cli = make_cli(env.rt.settings, db_url)
    lines = tmp_path / "population.jsonl"
    lines.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in ds.population) + "\nnot json\n",
                     encoding="utf-8")
    res = cli("watch", "import", str(lines), "--json", ok=False)
    assert res.returncode == 3, res.stdout + res.stderr
    rep = json.loads(res.stdout)
    assert rep["refused"] == 1 and rep["errors"][0]["line"] == len(ds.population) + 1
    # a civil-affairs CSV moving one person to another unit
    moved = next(p for p in ds.population if p.get("household_id"))
    csv_file = tmp_path / "households.csv"
    csv_file.write_text("psn_no,household_id,unit,region\n"
                        f"{moved['psn_no']},{moved['household_id']},新城街道,south\n", encoding="utf-8")
    cli("watch", "import", str(csv_file))
    with session_scope(env.rt.sessions) as db:
        assert db.get(Household, moved["psn_no"]).unit == "新城街道"
    r = env.client.post("/v1/claims", json=ds.messages, headers=env.h("ingest"))
    assert r.status_code == 200
    res = cli("watch", "run", "--month", "2026-13", ok=False)
    assert res.returncode == 2 and "YYYY-MM" in res.stderr
    # the worker's schedule: on the 1st of December (local) November is run, once
    now = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
    assert run_due(env.rt.sessions, env.rt.settings, now=now) == MONTH
    assert run_due(env.rt.sessions, env.rt.settings, now=now) is None
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(WatchRun)) == 1
        assert db.scalar(select(func.count()).select_from(WatchWarning)) == sum(len(v) for v in ds.truth.values())
    out = tmp_path / "list.xlsx"
    cli("watch", "export", str(out), "--month", MONTH)
    wb = load_workbook(out)
    assert sum(ws.max_row - 2 for ws in wb.worksheets) == sum(len(v) for v in ds.truth.values())
