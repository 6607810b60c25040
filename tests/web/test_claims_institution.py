"""An institution answering an inquiry about a data check's findings sees each finding's conflicting
lines (处方 | 收费明细 | 进销存) on its inquiry page, in Chinese, never a score; another institution
sees nothing of them. Records in through POST /v1/claims, checks through POST /v1/claims/check, the
inquiry sent through the cases API, the pages read without a browser (TestClient, real database)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import checked_claims
from tests.web.test_auth import login

pytestmark = pytest.mark.slow


def _section(html: str, flag_id: str) -> str:
    """The finding's part of the page: from its section to the next finding or the end of the findings."""
    start = html.index(f'id="finding-{flag_id}"')
    ends = [i for i in (html.find('<section class="finding card"', start), html.find('<div class="grid2">', start))
            if i > 0]
    return html[start:min(ends)]


def test_the_institution_sees_each_findings_own_lines_and_no_scores(web):
    ds, checked = checked_claims(web, visits_per_day=8, cases=1, decoys=1, seed=3)
    flags = {f["type"]: f for f in checked["flags"]}
    sub = web.client.get(f"/v1/flags/{flags['claims_substitution']['id']}", headers=web.h("admin")).json()
    # the substituted line billed a second time a minute later: a duplicate charge in the same case
    line = sub["evidence"]["lines"]["billed"][0]
    psn = web.client.get(f"/v1/settlements/{sub['settlement_id']}", headers=web.h("admin")).json()["settlement"]["insured_id"]
    at = datetime.fromisoformat(line["fee_ocur_time"].replace("Z", "+00:00")) + timedelta(minutes=1)
    again = {**{k: line[k] for k in ("mdtrt_id", "rxno", "med_list_codg", "cnt", "pric", "det_item_fee_sumamt")},
             "feedetl_sn": "DUP-9", "psn_no": psn, "fee_ocur_time": at.isoformat()}
    r = web.client.post("/v1/claims", json={"infno": "2204", "fixmedins_code": "CLINIC-A",
                                            "input": {"feedetail": [again]}}, headers=web.h("ingest"))
    assert r.status_code == 200, r.text
    r = web.client.post("/v1/claims/check", json={"org_id": "CLINIC-A", "start": ds.start.isoformat(),
                                                  "end": ds.end.isoformat()}, headers=web.h("admin"))
    case_id = sub["case_id"]
    case = web.client.get(f"/v1/cases/{case_id}", headers=web.h("admin")).json()
    findings = {f["id"]: f for f in case["findings"]}
    assert sorted(f["type"] for f in findings.values()) == ["claims_duplicate_charge", "claims_substitution"]
    r = web.client.post(f"/v1/cases/{case_id}/inquiry", json={"note": "请说明串换药品的情况"}, headers=web.h("admin"))
    assert r.status_code == 200, r.text

    inst = TestClient(web.client.app)
    assert login(inst, "clinic-a").status_code == 303
    page = inst.get(f"/inquiries/{case_id}")
    assert page.status_code == 200
    html = page.text
    # every finding shows its own lines in its own columns: the second charge (DUP-9) only under the duplicate
    for fid, f in findings.items():
        sec = _section(html, fid)
        assert "处方" in sec and "收费明细" in sec and "进销存" in sec
        sns = [b["feedetl_sn"] for b in f["evidence"]["lines"]["billed"]]
        assert line["feedetl_sn"] in sns and all(sn in sec for sn in sns)
        assert ("DUP-9" in sec) == (f["type"] == "claims_duplicate_charge"), (f["type"], sns)
    sub_sec = _section(html, sub["id"])
    billed, prescribed = sub["evidence"]["lines"]["billed"][0], sub["evidence"]["lines"]["prescribed"][0]
    assert prescribed["med_list_codg"] in sub_sec and billed["med_list_codg"] in sub_sec
    assert "费用发生时间" in sub_sec and "2026年" in sub_sec  # labels in Chinese, times local
    assert "score" not in html.lower() and "相似度" not in html and "Prescribed" not in html
    # the API gives the institution the same lines, without scores or the rule's thresholds
    api = inst.get(f"/v1/cases/{case_id}").json()
    got = {f["id"]: f["evidence"] for f in api["findings"]}
    assert got[sub["id"]]["lines"]["billed"][0]["med_list_codg"] == billed["med_list_codg"]
    assert "rule" not in got[sub["id"]] and "score" not in str(api).lower()
    # another institution: neither the page nor the lines
    other = TestClient(web.client.app)
    assert login(other, "clinic-b").status_code == 303
    assert other.get(f"/inquiries/{case_id}").status_code == 404
    assert other.get(f"/v1/flags/{sub['id']}").status_code == 404
