"""Records in the national platform's field names in: POST /v1/claims (the platform's messages) and
`dualcheck claims import` (JSON Lines, CSV). Idempotent by natural key, per-record errors, good
records kept, limits, organisation scoping; platform settlements become settlements the existing API
serves. Real SQLite and PostgreSQL, real SeaweedFS."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from api.keys import add_service_key
from ingest.cameras import add_camera
from storage.db import session_scope
from storage.models import ClaimFeeDetail, ClaimSettlement, ClaimStockMove, ClaimVisit, Settlement
from tests.api.conftest import start_env
from tests.cli.conftest import make_cli

FEE = {"feedetl_sn": "F1", "mdtrt_id": "MD1", "psn_no": "PSN1", "rxno": "RX1", "rx_circ_flag": "0",
       "fee_ocur_time": "2026-11-02 09:15:00", "med_list_codg": "XJ01CAA040A001010100839", "medins_list_codg": "H0839",
       "det_item_fee_sumamt": "25.60", "cnt": "2", "pric": "12.8", "prd_days": "5", "bilg_dr_codg": "D1001"}


def msg(infno: str, block: str, rows, org: str = "CLINIC-A", **extra) -> dict:
    return {"infno": infno, "fixmedins_code": org, "input": {block: rows, **extra}}


@pytest.fixture
def env(db_url, make_settings):
    e = start_env(make_settings(db_url), None)
    with session_scope(e.rt.sessions) as db:
        add_camera(db, camera_id="CAM-S", org_id="CLINIC-A", name="收费处", role="settlement_counter",
                   url="rtsp://10.0.0.8/s", covers=["counter-1"])
        e.keys["ingest_b"] = add_service_key(db, "ingest", "exchange south", org_id="PHARM-B")
    yield e
    e.client.__exit__(None, None, None)
    e.rt.close()


def post(env, body, who="ingest"):
    return env.client.post("/v1/claims", json=body, headers=env.h(who))


def count(env, model) -> int:
    with session_scope(env.rt.sessions) as db:
        return db.scalar(select(func.count()).select_from(model))


def test_every_kind_imports_and_again_is_unchanged(env):
    body = [
        msg("2201", "data", {"mdtrt_id": "MD1", "psn_no": "PSN1", "begntime": "2026-11-02 09:00:00", "dept_code": "A03",
                             "dept_name": "内科", "atddr_no": "D1001", "dr_name": "张医师", "insutype": "310"}),
        msg("2203", "mdtrtinfo", {"mdtrt_id": "MD1", "psn_no": "PSN1", "med_type": "11", "begntime": "2026-11-02 09:00:00"},
            diseinfo=[{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}]),
        {"infno": "7101", "fixmedins_code": "CLINIC-A", "input": {
            "data": {"rxno": "RX1", "prsc_time": "2026-11-02 09:08:00"}, "mdtrtinfo": {"mdtrt_id": "MD1", "psn_no": "PSN1"},
            "rxdrugdetail": [{"med_list_codg": FEE["med_list_codg"], "drug_cnt": 2, "drug_pric": 12.8, "medc_days": 5}]}},
        msg("2204", "feedetail", [FEE, {**FEE, "feedetl_sn": "F2", "cnt": "-2", "det_item_fee_sumamt": "-25.60",
                                        "init_feedetl_sn": "F1"}]),
        msg("3505", "selinfo", {"med_list_codg": FEE["med_list_codg"], "fixmedins_bchno": "B1", "rtal_docno": "R1",
                                "psn_no": "PSN1", "setl_id": "SETL1", "sel_retn_cnt": 2,
                                "sel_retn_time": "2026-11-02 09:20:00",
                                "drugtracinfo": [{"drug_trac_codg": "81234567890123456789"}]}),
        msg("3501", "invinfo", {"med_list_codg": FEE["med_list_codg"], "fixmedins_bchno": "B1", "inv_cnt": 100,
                                "invdate": "2026-11-01"}),
        msg("2207", "setlinfo", {"setl_id": "SETL1", "mdtrt_id": "MD1", "psn_no": "PSN1", "med_type": "11",
                                 "setl_time": "2026-11-02 09:25:00", "medfee_sumamt": 35.6}),
    ]
    r = post(env, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["by_kind"] == {"fee": 2, "rx": 1, "settlement": 1, "stock": 2, "visit": 2}
    assert out["errors"] == []
    # the settlement is a settlement: the existing API serves it, in UTC (09:25 in Shanghai is 01:25Z)
    s = env.client.get("/v1/settlements/SETL1", headers=env.h("ingest")).json()
    assert s["settlement"]["settled_at"] == "2026-11-02T01:25:00Z"
    assert s["settlement"]["insured_id"] == "PSN1" and s["settlement"]["amount"] == "35.60"
    assert s["settlement"]["counter"] == "counter-1" and s["settlement"]["type"] == "outpatient"
    assert s["check"]["status"] == "pending"  # queued for its footage check as any settlement
    with session_scope(env.rt.sessions) as db:
        assert db.get(ClaimSettlement, "SETL1").mdtrt_id == "MD1"
        sale = db.scalar(select(ClaimStockMove).where(ClaimStockMove.kind == "sale"))
        assert sale.drug_trac_codg == ["81234567890123456789"] and sale.psn_no == "PSN1"
        visit = db.scalar(select(ClaimVisit).where(ClaimVisit.infno == "2203"))
        assert visit.diag_codes == ["J06.900"]
    again = post(env, body)
    assert again.status_code == 200 and again.json()["imported"] == 0 and again.json()["unchanged"] == 8


def test_bad_records_are_refused_one_by_one_and_the_good_kept(env):
    body = [msg("2204", "feedetail", [
        FEE,
        {**FEE, "feedetl_sn": "F2", "cnt": "1e3"},  # an exponent
        {**FEE, "feedetl_sn": "F3", "cnt": "-1"},  # a refund that names no line
        {**FEE, "feedetl_sn": "F4", "fee_ocur_time": "02/11/2026"},
        {**FEE, "feedetl_sn": "F5", "fee_ocur_time": "9999-12-31 23:00:00"},
        {k: v for k, v in FEE.items() if k != "mdtrt_id"} | {"feedetl_sn": "F6"},
    ]), {"infno": "9999", "fixmedins_code": "CLINIC-A", "input": {}},
        msg("2204", "feedetail", [FEE | {"feedetl_sn": "F7"}], org="NOWHERE")]
    r = post(env, body)
    assert r.status_code == 207, r.text
    out = r.json()
    assert out["imported"] == 1 and out["refused"] == 7
    why = {(e["message"], e["record"]): e["reason"] for e in out["errors"]}
    assert "ASCII digits" in why[(0, 1)]
    assert "init_feedetl_sn" in why[(0, 2)]
    assert "not a time" in why[(0, 3)]
    assert "range" in why[(0, 4)] or "future" in why[(0, 4)]
    assert "missing mdtrt_id" in why[(0, 5)]
    assert "infno must be one of" in why[(1, None)]
    assert "unknown organisation" in why[(2, 0)]
    # the same key with other content: a conflict, and the stored record stays as it was
    r = post(env, [msg("2204", "feedetail", [FEE | {"cnt": "3", "det_item_fee_sumamt": "38.40"}])])
    assert r.status_code == 422 and "conflict" in r.json()["error"]["errors"][0]["reason"]
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(ClaimFeeDetail.cnt).where(ClaimFeeDetail.feedetl_sn == "F1")) == 2.0


def test_limits_and_organisation_scope(env, make_settings):
    env.rt.settings.claims_max_lines = 3
    r = post(env, [msg("2204", "feedetail", [FEE | {"feedetl_sn": f"F{i}"} for i in range(4)])])
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_records"
    assert count(env, ClaimFeeDetail) == 0
    env.rt.settings.claims_max_lines = 20000
    # an ingest key of pharmacy B may not send clinic A's records
    r = post(env, [msg("2204", "feedetail", [FEE])], who="ingest_b")
    assert r.status_code == 422 and "may not import" in r.json()["error"]["errors"][0]["reason"]
    assert post(env, [msg("2204", "feedetail", [FEE])], who="terminal").status_code == 403
    # a settlement at an organisation without a counter camera and without a counter: said so
    r = post(env, [msg("2207", "setlinfo", {"setl_id": "S9", "psn_no": "P", "setl_time": "2026-11-02 09:00:00",
                                            "medfee_sumamt": "1", "med_type": "41"}, org="PHARM-B")])
    assert r.status_code == 422 and "pharmacy_counter" in r.json()["error"]["errors"][0]["reason"]


def test_the_settlement_import_keeps_working(env):
    """POST /v1/settlements with the existing fields still imports beside the platform's records."""
    r = env.client.post("/v1/settlements", json=[{"settlement_id": "OLD-1", "insured_id": "P-1", "org_id": "CLINIC-A",
                                                  "counter": "counter-1", "settled_at": "2026-11-02T01:00:00Z",
                                                  "amount": "12.00", "type": "outpatient"}], headers=env.h("ingest"))
    assert r.status_code == 200 and r.json()["created"] == ["OLD-1"]
    # the platform's message for the same id with other content is the settlement import's conflict
    r = post(env, [msg("2207", "setlinfo", {"setl_id": "OLD-1", "psn_no": "P-2", "setl_time": "2026-11-02 09:00:00",
                                            "medfee_sumamt": "12", "med_type": "11"})])
    assert r.status_code == 422 and "conflict" in r.json()["error"]["errors"][0]["reason"]
    with session_scope(env.rt.sessions) as db:
        assert db.get(Settlement, "OLD-1").insured_id == "P-1"


@pytest.mark.slow
def test_cli_imports_json_lines_and_csv_with_line_numbers(env, tmp_path, db_url):
    run = make_cli(env.rt.settings, db_url)
    lines = [json.dumps(msg("2204", "feedetail", [FEE, FEE | {"feedetl_sn": "F2"}]), ensure_ascii=False),
             "{not json",
             json.dumps({**FEE, "feedetl_sn": "F3", "infno": "2204", "fixmedins_code": "CLINIC-A"}),
             json.dumps({**FEE, "feedetl_sn": "F4", "cnt": "abc", "infno": "2204", "fixmedins_code": "CLINIC-A"})]
    f = tmp_path / "fees.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    p = run("claims", "import", str(f), "--json", ok=False)
    assert p.returncode == 3, p.stderr
    rep = json.loads(p.stdout)
    assert rep["imported"] == 3 and rep["refused"] == 2
    assert {e["line"] for e in rep["errors"]} == {2, 4}
    # CSV: the platform's field names as the header; infno and organisation given for the whole file
    csv = tmp_path / "stock.csv"
    csv.write_text("med_list_codg,fixmedins_bchno,purc_retn_cnt,purc_retn_stoin_time,finl_trns_pric\n"
                   "XJ01CAA040A001010100839,B7,100,2026-11-01 10:00:00,9.5\n"
                   "XJ01CAA040A001010100839,B8,-5,2026-11-01 11:00:00,9.5\n", encoding="utf-8")
    p = run("claims", "import", str(csv), "--infno", "3503", "--org", "CLINIC-A", "--json", ok=False)
    rep = json.loads(p.stdout)
    assert p.returncode == 3 and rep["imported"] == 1 and rep["errors"][0]["line"] == 3
    assert "negative" in rep["errors"][0]["reason"]
    # again: unchanged, exit 0 for the good line alone
    csv.write_text(csv.read_text().splitlines()[0] + "\n" + csv.read_text().splitlines()[1] + "\n")
    p = run("claims", "import", str(csv), "--infno", "3503", "--org", "CLINIC-A", "--json")
    assert json.loads(p.stdout)["unchanged"] == 1
    # not UTF-8: nothing imported, exit 2
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("med_list_codg,fixmedins_hilist_name\nX1,阿莫西林\n".encode("gbk"))
    p = run("claims", "import", str(gbk), "--infno", "3503", ok=False)
    assert p.returncode == 2 and "not UTF-8" in p.stderr


def test_checks_through_the_api_are_scoped_and_bounded(env):
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        env.keys["insp_north"] = add_service_key(db, "inspector", "north desk", regions=["north"])
        env.keys["insp_south"] = add_service_key(db, "inspector", "south desk", regions=["south"])
    # a fee line of a drug no prescription lists, under a prescription that lists another
    assert post(env, [{"infno": "7101", "fixmedins_code": "CLINIC-A", "input": {
        "data": {"rxno": "RX1", "prsc_time": "2026-11-02 09:08:00"}, "mdtrtinfo": {"mdtrt_id": "MD1", "psn_no": "PSN1"},
        "rxdrugdetail": [{"med_list_codg": "XA02BCA211A001010100043", "drug_cnt": 1, "drug_pric": 80}]}},
        msg("2204", "feedetail", [FEE])]).status_code == 200
    period = {"org_id": "CLINIC-A", "start": "2026-11-02T00:00:00+08:00", "end": "2026-11-03T00:00:00+08:00"}
    check = lambda who, body=period: env.client.post("/v1/claims/check", json=body, headers=env.h(who))  # noqa: E731
    assert check("insp_south").status_code == 404  # not its region: as if it did not exist
    assert check("ingest").status_code == 403
    assert check("admin", {**period, "end": "2026-12-30T00:00:00+08:00"}).json()["error"]["code"] == "period_too_long"
    assert check("admin", {**period, "start": "2026-11-02 00:00"}).status_code == 422
    r = check("insp_north")
    assert r.status_code == 200, r.text
    assert [f["type"] for f in r.json()["flags"]] == ["claims_not_prescribed"]
    flag = env.client.get(f"/v1/flags/{r.json()['flags'][0]['id']}", headers=env.h("insp_north")).json()
    assert flag["evidence"]["lines"]["billed"][0]["feedetl_sn"] == "F1"
    assert flag["evidence"]["lines"]["prescribed"][0]["med_list_codg"] == "XA02BCA211A001010100043"
    assert "XJ01CAA040A001010100839 billed under prescription RX1" in flag["reason"]
    assert [f["id"] for f in check("insp_north").json()["flags"]] == [flag["id"]]  # known, not raised again


def test_odd_shapes_are_refused_with_a_reason_never_a_500(env):
    odd = [[], 5, "x", {"infno": "2204"}, {"infno": "2204", "fixmedins_code": ["CLINIC-A"], "input": {"feedetail": [FEE]}},
           msg("2201", "data", {"mdtrt_id": "M", "psn_no": "P", "begntime": "2026-11-02 09:00:00", "diseinfo": 5}),
           msg("2203", "mdtrtinfo", {"mdtrt_id": "M"}, diseinfo="J06"),
           msg("3505", "selinfo", [7, {"med_list_codg": "X1", "fixmedins_bchno": "B", "rtal_docno": "R",
                                       "sel_retn_cnt": "NaN", "sel_retn_time": "2026-11-02 09:00:00",
                                       "drugtracinfo": {"drug_trac_codg": 1}}]),
           msg("2204", "feedetail", [FEE | {"cnt": 1e300, "feedetl_sn": "F9"}, FEE | {"pric": True, "feedetl_sn": "F8"},
                                     FEE | {"fee_ocur_time": 20261102, "feedetl_sn": "F7"}])]
    r = post(env, odd)
    assert r.status_code == 207, r.text  # the 2201 without a usable diseinfo is still a visit
    out = r.json()
    assert out["imported"] == 1 and out["by_kind"] == {"visit": 1}
    assert all(e["reason"] for e in out["errors"]) and out["refused"] == len(out["errors"]) == 11
    assert post(env, []).status_code == 422 and post(env, {}).status_code == 422
