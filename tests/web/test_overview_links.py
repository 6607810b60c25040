"""The overview in Chromium: the period is chosen on the page, and every bar leads to the flags it
counts (the queue filtered by institution or type, level and the period)."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def _count(title: str) -> int:
    return int(re.search(r"(\d+)\s*$", title).group(1))


def test_bars_click_through_to_their_flags_and_the_period_is_chosen_on_the_page(login, site):
    admin = login("admin")
    admin.goto(f"{site.url}/overview")
    assert admin.locator("#period select[name=weeks]").input_value() == "8"
    admin.select_option("#period select[name=weeks]", "52")
    admin.click("#period button[type=submit]")
    admin.wait_for_load_state()
    assert "weeks=52" in admin.url
    # labels are drawn at a readable size (12 px and up), not scaled below it
    sizes = admin.locator("svg.chart text").evaluate_all("ts => ts.map(t => t.getBoundingClientRect().height)")
    assert sizes and min(sizes) >= 11, min(sizes)
    for chart in ("#chart-orgs", "#chart-types"):
        admin.goto(f"{site.url}/overview?weeks=52")
        bars = admin.locator(f"{chart} a.bar-link")
        assert bars.count() >= 1
        for i in range(bars.count()):
            admin.goto(f"{site.url}/overview?weeks=52")
            bar = admin.locator(f"{chart} a.bar-link").nth(i)
            want = _count(bar.locator("title").text_content())
            level = bar.locator("rect").get_attribute("data-level")
            bar.click()
            admin.wait_for_load_state()
            assert "/flags?" in admin.url and f"flevel={level}" in admin.url and "status=all" in admin.url
            rows = admin.locator("#queue tbody tr[data-case]")
            assert rows.count() == want, (admin.url, want)
    # the confirmation-rate bar leads to the confirmed flags of that rule
    insp = login("insp-north")
    imp = site.flags["A-IMP"]
    insp.goto(f"{site.url}/flags/{imp['id']}")
    if insp.locator("#do-confirm").count():
        insp.fill("#note", "确认冒名。")
        insp.click("#do-confirm")
        insp.wait_for_load_state()  # a decision opens the next case of the queue
    insp.goto(f"{site.url}/overview?weeks=52")
    bar = insp.locator("#chart-rates a.bar-link").first
    rule = bar.locator("rect").get_attribute("data-rule")
    bar.click()
    insp.wait_for_load_state()
    assert f"type={rule}" in insp.url and "status=confirmed" in insp.url
    assert insp.locator("#queue tbody tr[data-case]").count() >= 1
