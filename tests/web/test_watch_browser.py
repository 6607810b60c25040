"""The 监测预警 page in Debian's Chromium: an inspector of the south region opens it from the navigation,
sees the month's warnings of the south's responsible units only, in Chinese with local times (a level-2
warning says it needs no inquiry), downloads the Excel list (read back with openpyxl: the same rows),
opens a person's month-by-month figures; an admin runs another month from the page. Population and
claims imported through the API, the rules run through POST /v1/watch/runs, a real uvicorn."""
from __future__ import annotations

from datetime import timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.web.conftest import logged_in
from tests.web.test_wording_zh import _leftovers

pytestmark = pytest.mark.slow
MONTH = "2026-11"


@pytest.fixture(scope="module")
def watch_site(served_site):
    def seed(env):
        from api.keys import add_service_key
        from camsim.watchgen import generate
        from storage.db import session_scope

        with session_scope(env.rt.sessions) as db:
            env.keys["admin"] = add_service_key(db, "admin", "operator")
        ds = generate(MONTH)
        assert env.client.post("/v1/watch/population", json=ds.population, headers=env.h("ingest")).status_code == 200
        assert env.client.post("/v1/claims", json=ds.messages, headers=env.h("ingest")).status_code == 200
        assert env.client.post("/v1/watch/runs", json={"month": MONTH}, headers=env.h("admin")).status_code == 200
        return ds

    env, url, ds = served_site("watch-site", seed)
    return url, ds, env


def _tokens(ds) -> set[str]:
    toks = set()
    for p in ds.population:
        for k in ("psn_no", "household_id"):
            if p.get(k):
                toks.add(p[k])
    return toks


def test_the_south_inspector_sees_downloads_and_opens_a_person(browser, watch_site, tmp_path):
    from storage.db import session_scope
    from storage.models import WatchRun

    url, ds, env = watch_site
    ctx, page = logged_in(browser, url, "insp-south", accept_downloads=True)
    page.click("#nav-watch")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "监测预警名单"
    units = [page.locator(".watch-unit").nth(i).get_attribute("data-unit") for i in range(page.locator(".watch-unit").count())]
    assert units == ["谭坝镇"]  # 关庙镇 is the north's
    rules = {r.get_attribute("data-rule") for r in page.locator(".watch-list tr[data-rule]").all()}
    south = {"watch_oop_person", "watch_oop_household", "watch_oop_per_capita", "watch_oop_resident"}
    assert rules == south
    row = page.locator(".watch-list tr[data-rule=watch_oop_person]")
    assert "10000.01 元" in row.inner_text() and "超过 10000.00 元" in row.inner_text()
    assert row.locator(".disposition").inner_text() == "警示提醒（无需质询）" and "2级" in row.inner_text()
    # the time of the run in Beijing time, as every page
    with session_scope(env.rt.sessions) as db:
        done = db.scalar(select(WatchRun.finished_at).order_by(WatchRun.id.desc()).limit(1))
    local = done.astimezone(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}" in page.locator("#last-run").inner_text()
    text = page.evaluate("() => document.body.innerText")
    assert not _leftovers(text, _tokens(ds)), _leftovers(text, _tokens(ds))

    # the Excel list: the rows on the page, no more
    with page.expect_download() as dl:
        page.click("#download-xlsx")
    path = tmp_path / "list.xlsx"
    dl.value.save_as(path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["谭坝镇"]
    rows = list(wb["谭坝镇"].iter_rows(values_only=True))[2:]
    assert len(rows) == page.locator(".watch-list tr[data-rule]").count()
    assert any(r[6] == "10000.01 元" and r[9] == "警示提醒（无需质询）" for r in rows)

    # a person's figures month by month
    page.click(".watch-list tr[data-rule=watch_oop_person] a.person")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("参保人监测指标")
    months = page.locator("#figures tr[data-month]")
    assert months.count() == 11
    assert months.nth(10).locator(".burden").inner_text() == "¥10,000.01"
    assert months.nth(1).locator(".burden").inner_text() == "¥0.00" and months.nth(2).locator(".burden").inner_text() != "¥0.00"
    assert "监测对象" in page.locator("#categories").inner_text() or "脱贫人口" in page.locator("#categories").inner_text()
    # valid from local midnight of 23 September 2025 (16:00 the day before in UTC): the local day is shown
    assert "2025年9月23日 — 至今" in page.locator("#categories").inner_text()
    text = page.evaluate("() => document.body.innerText")
    assert not _leftovers(text, _tokens(ds)), _leftovers(text, _tokens(ds))
    # a north person is not there for the south
    north = next(iter(ds.truth["watch_admissions_month"]))[4:]
    r = page.goto(f"{url}/watch/person/{north}?month={MONTH}")
    assert r.status == 404
    ctx.close()


def test_an_admin_runs_a_month_from_the_page(browser, watch_site):
    url, ds, env = watch_site
    ctx, page = logged_in(browser, url, "admin", accept_downloads=True)
    page.goto(f"{url}/watch")
    assert page.locator(".watch-unit").count() == 2
    page.fill("#watch-run-form input[name=month]", "2026-10")
    page.click("#watch-run-do")
    page.wait_for_load_state()
    assert "2026-10 已运行" in page.locator("#notice").inner_text()
    assert page.locator("select[name=month] option").count() == 2
    page.fill("#watch-run-form input[name=month]", "2099-01")
    page.click("#watch-run-do")
    page.wait_for_load_state()
    assert "2099-01 尚未结束" in page.locator("body").inner_text()
    assert not _leftovers(page.locator("body").inner_text(), set())
    ctx.close()


def test_an_inspector_reviews_and_confirms_a_warning_and_filters_by_state(browser, watch_site):
    from storage.db import session_scope
    from storage.models import AuditEvent

    url, ds, env = watch_site
    ctx, page = logged_in(browser, url, "insp-south")
    page.goto(f"{url}/watch")
    row = page.locator(".watch-list tr[data-rule=watch_oop_person]")
    wid = row.get_attribute("data-id")
    assert row.locator(".state .st").inner_text() == "待核查" and "未指派" in row.locator(".assignee").inner_text()

    row.locator(".act-review button").click()
    page.wait_for_load_state()
    assert page.locator("#notice").inner_text() == "预警已更新：核查中"
    row = page.locator(f"#w-{wid}")
    assert row.locator(".state .st").inner_text() == "核查中"
    assert row.locator(".assignee").inner_text() == "核查人：李稽核"  # the inspector's name, not the login
    assert row.locator(".act-review").count() == 0

    # confirming without a note is refused, in Chinese; nothing changes
    with page.expect_navigation() as nav:
        row.locator(".act-close button[value=confirm]").click()
    r = nav.value
    assert r.status == 422 and "核实或排除须填写核查说明" in page.locator("body").inner_text()
    page.goto(f"{url}/watch")
    row = page.locator(f"#w-{wid}")
    assert row.get_attribute("data-state") == "reviewing"

    row.locator(".act-close input[name=note]").fill("入户核实：自负费用属实，已转乡村振兴局")
    row.locator(".act-close button[value=confirm]").click()
    page.wait_for_load_state()
    assert page.locator("#notice").inner_text() == "预警已更新：已核实"
    row = page.locator(f"#w-{wid}")
    assert row.locator(".state .st").inner_text() == "已核实"
    assert [f.get_attribute("class") for f in row.locator(".actions form").all()] == ["inline act-reopen"]
    assert row.locator(".state-note").inner_text() == "入户核实：自负费用属实，已转乡村振兴局"
    # a warning does not become a case (a case is an institution's): it links the person's cases in the queue
    psn = row.locator("a.person").inner_text()
    link = row.locator("a.cases-link")
    assert link.inner_text() == "查看该参保人的案件（0 件）" and f"q={psn}" in link.get_attribute("href")
    row.locator("details.history summary").click()
    hist = row.locator("details.history li").all_inner_texts()
    assert len(hist) == 2 and "开始核查" in hist[0] and "李稽核" in hist[0] and "待核查 → 核查中" in hist[0]
    assert "核实" in hist[1] and "核查中 → 已核实" in hist[1] and "入户核实" in hist[1]

    # the filter by state
    page.select_option("#state-filter", "confirmed")
    page.click("#watch-filter button[type=submit]")
    page.wait_for_load_state()
    assert [r.get_attribute("data-id") for r in page.locator(".watch-list tr[data-rule]").all()] == [wid]
    page.select_option("#state-filter", "active")
    page.click("#watch-filter button[type=submit]")
    page.wait_for_load_state()
    ids = [r.get_attribute("data-id") for r in page.locator(".watch-list tr[data-rule]").all()]
    assert ids and wid not in ids
    assert {r.get_attribute("data-state") for r in page.locator(".watch-list tr[data-rule]").all()} == {"open"}
    text = page.evaluate("() => document.body.innerText")
    assert not _leftovers(text, _tokens(ds)), _leftovers(text, _tokens(ds))

    # confirmed by mistake: reopened, with the reason (refused without one), back in review with its assignee
    page.goto(f"{url}/watch?state=confirmed")
    row = page.locator(f"#w-{wid}")
    with page.expect_navigation() as nav:
        row.locator(".act-reopen button").click()
    assert nav.value.status == 422 and "重新核查须说明原因" in page.locator("body").inner_text()
    page.goto(f"{url}/watch?state=confirmed")
    row = page.locator(f"#w-{wid}")
    row.locator(".act-reopen input[name=note]").fill("户籍信息有误，需重新入户核实")
    row.locator(".act-reopen button").click()
    page.wait_for_load_state()
    assert page.locator("#notice").inner_text() == "预警已更新：核查中"
    assert page.locator(f"#w-{wid}").count() == 0  # no longer confirmed: out of the filtered list
    page.goto(f"{url}/watch?state=active")
    row = page.locator(f"#w-{wid}")
    assert row.locator(".state .st").inner_text() == "核查中" and row.locator(".assignee").inner_text() == "核查人：李稽核"
    assert row.locator(".state-note").count() == 0 and row.locator(".act-close").count() == 1
    row.locator("details.history summary").click()
    last = row.locator("details.history li").all_inner_texts()[-1]
    assert "重新核查" in last and "已核实 → 核查中" in last and "户籍信息有误" in last
    ctx.close()
    with session_scope(env.rt.sessions) as db:
        acts = [a.action for a in db.query(AuditEvent).filter(AuditEvent.subject == f"watch_warning:{wid}")
                .order_by(AuditEvent.id)]
    assert acts == ["watch_warning.review", "watch_warning.confirmed", "watch_warning.reopen"]
