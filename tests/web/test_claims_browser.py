"""A data check's flag in Debian's Chromium: the inspector sees the conflicting lines side by side
(处方 | 收费明细 | 进销存) beside the pharmacy-counter footage of the dispensing moment, which plays from
that moment. Records imported through POST /v1/claims, checks run through POST /v1/claims/check, real
footage segments in a real SeaweedFS, a real uvicorn."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.web.conftest import checked_claims, logged_in
from tests.web.test_browser import wait_playing, wall_of

pytestmark = pytest.mark.slow


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def claims_site(served_site, testdata):
    def seed(env):
        from storage.db import session_scope
        from tests.correlate import scenarios as sc

        rt = env.rt
        rt.store.ensure_bucket(rt.settings.bucket_footage)
        _, checked = checked_claims(env, visits_per_day=8, cases=1, decoys=1, seed=3)
        flags = {f["type"]: f["id"] for f in checked["flags"]}
        sub = env.client.get(f"/v1/flags/{flags['claims_substitution']}", headers=env.h("admin")).json()
        moment = _t(sub["evidence"]["moment"])
        # the dispensing counter's footage around that moment (its segments, as the recorder writes them)
        with session_scope(rt.sessions) as db:
            sc.write_block(db, rt.store, rt.settings.bucket_footage, sc.scene_footage("ghost", testdata),
                           org_id="CLINIC-A", camera_id="CAM-P", start=moment - timedelta(seconds=20),
                           workdir=env.tmp)
        return flags, sub

    _, url, (flags, sub) = served_site("claims-site", seed)
    return url, flags, sub


def test_the_lines_side_by_side_beside_the_footage_of_the_moment(browser, claims_site):
    url, flags, sub = claims_site
    ctx, page = logged_in(browser, url, "insp-north")
    page.goto(f"{url}/flags/{flags['claims_substitution']}")
    assert "串换药品" in page.locator("h1").inner_text()
    lines = sub["evidence"]["lines"]
    billed, prescribed = lines["billed"][0]["med_list_codg"], lines["prescribed"][0]["med_list_codg"]
    # three columns side by side, in Chinese, the codes in their own column
    cols = page.locator("#claim-lines .claim-col")
    assert cols.count() == 3
    assert [cols.nth(i).locator("h3").inner_text() for i in range(3)] == ["处方", "收费明细", "进销存"]
    assert prescribed in page.locator("#claim-prescribed").inner_text()
    assert billed in page.locator("#claim-billed").inner_text() and billed not in page.locator("#claim-prescribed").inner_text()
    assert "费用发生时间" in page.locator("#claim-billed").inner_text()
    assert "销售出库" in page.locator("#claim-stock").inner_text() and billed in page.locator("#claim-stock").inner_text()
    assert "2026年" in page.locator("#claim-billed").inner_text()  # local time, as the rest of the page
    boxes = [cols.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"] and abs(boxes[0]["y"] - boxes[2]["y"]) < 2
    player, panel = page.locator("#player-box").bounding_box(), page.locator("#claim-lines").bounding_box()
    assert player["x"] + player["width"] <= panel["x"] + 1  # beside the player
    assert "Prescribed" not in page.locator("#claim-lines").inner_text()
    # the pharmacy counter's footage plays from the moment the fee was charged
    assert page.locator("#cam-tabs").inner_text().strip() == "发药窗口"
    wait_playing(page)
    moment = _t(sub["evidence"]["moment"]).timestamp()
    first = wall_of(page)
    assert moment - 0.6 <= first <= moment + 3.0, (first, moment)
    # a stock flag: the running stock from the stock count to the sale that took it below zero
    page.goto(f"{url}/flags/{flags['claims_sold_beyond_stock']}")
    stock = page.locator("#claim-stock").inner_text()
    assert "盘存" in stock and "销售出库" in stock and "结存" in stock and "-1" in stock
    assert "销售超库存" in page.locator("h1").inner_text()
    ctx.close()
