"""The rule library (规则库) in Debian's Chromium: an admin edits a threshold with a note and the history
shows who, when, why and the value before and after; a change without a note is refused with a Chinese
message and the typed values stay; reference data uploads as CSV with its refused lines in Chinese;
inspectors read without the form, institutions are refused; the overview shows the precision of each
rule and version. Records through POST /v1/claims, checks through POST /v1/claims/check, decisions
through the cases API, a real uvicorn."""
from __future__ import annotations

import pytest

from tests.web.conftest import checked_claims, logged_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rules_site(served_site):
    def seed(env):
        _, checked = checked_claims(env, visits_per_day=8, cases=2, decoys=0, seed=3)
        dup = [f["id"] for f in checked["flags"] if f["type"] == "claims_duplicate_charge"]
        assert len(dup) == 2
        for fid, decision in zip(dup, ("confirm", "dismiss")):
            case_id = env.client.get(f"/v1/flags/{fid}", headers=env.h("admin")).json()["case_id"]
            r = env.client.post(f"/v1/cases/{case_id}/review", json={"decision": decision, "note": "核实"},
                                headers=env.h("admin"))
            assert r.status_code == 200, r.text
        return dup[0]

    _, url, flag_id = served_site("rules-site", seed)
    return url, flag_id


def test_an_admin_edits_a_threshold_with_a_note_and_the_history_shows_it(browser, rules_site, tmp_path):
    url, flag_id = rules_site
    ctx, page = logged_in(browser, url, "admin")
    page.click("#nav-rules")
    page.wait_for_load_state()
    assert [page.locator(".rule-class h2").nth(i).inner_text() for i in range(3)] == ["医保管理类", "临床诊疗类",
                                                                                     "药品类"]
    row = page.locator("#class-clinical tr[data-rule=claims_over_quantity]")
    assert "最长用药天数：30" in row.locator(".thresholds").inner_text()
    assert row.locator(".version").inner_text() == "第1版" and row.locator(".switch").inner_text() == "启用"
    dup = page.locator("tr[data-rule=claims_duplicate_charge] .precision").inner_text()
    assert dup.startswith("50.00%") and "1/2" in dup
    row.locator("a").click()
    page.wait_for_load_state()
    assert page.locator("#rule-name").inner_text().startswith("超量开药")
    # no note: refused in Chinese, the value typed stays, nothing saved
    page.fill("#th-max_days_supply", "7")
    page.click("#f-save")
    page.wait_for_load_state()
    assert "请填写变更说明" in page.locator("#form-error").inner_text()
    assert page.input_value("#th-max_days_supply") == "7"
    assert page.locator("#rule-version").inner_text() == "第1版"
    # a threshold that is not a number: refused, naming it
    page.fill("#th-max_days_supply", "七天")
    page.fill("#f-note", "第3批")
    page.click("#f-save")
    page.wait_for_load_state()
    assert page.locator("#form-error").inner_text() == "「最长用药天数」须为不小于0的数"
    page.fill("#th-max_days_supply", "7")
    page.fill("#f-note", "广西2024年动态调整第一批：最长7天")
    page.click("#f-save")
    page.wait_for_load_state()
    assert page.locator("#saved").inner_text() == "已保存为第2版"
    assert page.locator("#rule-version").inner_text() == "第2版"
    first = page.locator("#rule-history tbody tr").first
    cells = [first.locator("td").nth(i).inner_text() for i in range(5)]
    assert cells[0] == "第2版" and "年" in cells[1]
    assert cells[2] == "管理员" and cells[3] == "广西2024年动态调整第一批：最长7天"
    assert cells[4] == "最长用药天数：30 → 7"
    assert page.locator("#rule-history tbody tr").count() == 2
    # reference data: a drug's own days of supply, one line refused
    csv = tmp_path / "days.csv"
    csv.write_text("med_list_codg,max_days,drug_genname\nXB01,7,头孢克肟片\nXB02,很多,\n", encoding="utf-8")
    page.select_option("#reference-form select[name=kind]", "days_supply")
    page.set_input_files("#reference-file", str(csv))
    page.fill("#reference-note", "知识库第1批")
    page.click("#reference-upload")
    page.wait_for_load_state()
    result = page.locator("#upload-result").inner_text()
    assert "共2行：新增1，更新0，未变0，拒绝1" in result and "规则已更新为第3版" in result
    assert page.locator("#upload-errors li[data-line='3']").inner_text() == \
        "第3行（XB02）：最长用药天数须为1至3650的整数"
    assert "头孢克肟片" in page.locator("#reference-rows").inner_text()
    page.goto(f"{url}/rules/claims_over_quantity")
    assert "药品最长用药天数：0条 → 1条" in page.locator("#rule-history tbody tr").first.inner_text()
    ctx.close()
    # an inspector reads without the form; an institution is refused
    ctx, page = logged_in(browser, url, "insp-north")
    # a finding names the version of its rule that raised it, linked to the rule's page
    page.goto(f"{url}/flags/{flag_id}")
    ref = page.locator(f"#finding-{flag_id} .rule-ref")
    assert ref.inner_text() == "触发规则版本：第1版" and ref.locator("a").get_attribute("href") == \
        "/rules/claims_duplicate_charge"
    page.goto(f"{url}/rules/claims_over_quantity")
    assert page.locator("#rule-version").inner_text() == "第3版" and page.locator("#rule-form").count() == 0
    page.goto(f"{url}/overview?weeks=52")
    total = page.locator("#rule-precision tr.rule-total[data-rule=claims_duplicate_charge]").inner_text()
    assert "重复收费" in total and "50.00%" in total
    ver = page.locator("#rule-precision tr.rule-version[data-rule=claims_duplicate_charge]")
    assert ver.count() == 1 and "第1版" in ver.inner_text()
    ctx.close()
    ctx, page = logged_in(browser, url, "clinic-a")
    assert page.locator("#nav-rules").count() == 0
    assert page.goto(f"{url}/rules").status == 403
    ctx.close()
