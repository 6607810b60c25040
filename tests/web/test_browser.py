"""End to end in Debian's Chromium (headless, Playwright) against a real uvicorn, over real footage and
flags raised by real checks: what an inspector, an institution user and an inspector of another
region see and can do."""
from __future__ import annotations

from datetime import datetime

import pytest

pytestmark = pytest.mark.slow


def _t(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def wall_of(page) -> float | None:
    """Wall-clock time (epoch s) of the frame the player shows: clip start + currentTime."""
    v = page.evaluate("() => { const v = document.getElementById('player');"
                      " return v && v.dataset.clipStart ? [v.dataset.clipStart, v.currentTime] : null }")
    return _t(v[0]) + v[1] if v else None


def wait_playing(page):
    page.wait_for_function("() => { const v = document.getElementById('player');"
                           " return v && v.dataset.clipStart && v.readyState >= 2 && !v.paused }")


def test_inspector_filters_opens_plays_seeks_and_confirms(login, site):
    page = login("insp-north")
    assert page.url.endswith("/flags")
    rows = page.locator("#queue tbody tr")
    assert {rows.nth(i).get_attribute("data-org") for i in range(rows.count())} == {"CLINIC-A"}
    # counts per level and the highest level first
    levels = [int(rows.nth(i).get_attribute("data-level")) for i in range(rows.count())]
    assert levels == sorted(levels, reverse=True)
    assert page.locator("#level-counts a[data-level='4'] b").inner_text() == str(levels.count(4))
    # filter by type
    page.select_option("select[name=type]", "impersonation")
    page.click("#apply-filter")
    page.wait_for_load_state()
    assert "type=impersonation" in page.url
    assert page.locator("#queue tbody tr").count() == 1
    assert "冒名就医" in page.locator("#queue tbody tr").inner_text()
    assert "¥1,234.50" in page.locator("#queue").inner_text()

    flag = site.flags["A-IMP"]
    page.click("a.open-case")
    page.wait_for_url(f"**/cases/{flag['case_id']}?**")
    settled = _t(flag["evidence"]["settlement"]["settled_at"])
    # the video plays, from the settlement time
    wait_playing(page)
    first = wall_of(page)
    assert settled - 0.6 <= first <= settled + 3.0, (first, settled)
    page.wait_for_timeout(1500)
    assert wall_of(page) > first + 0.5  # currentTime advances
    assert "2026年" in page.locator("#settled-at").inner_text() and page.locator("#amount").inner_text() == "¥1,234.50"
    # the enrolled photo, face crops with scores; a crop click seeks the player to when that face was seen
    assert page.locator("#faces figure.kind-enrolled").count() >= 1
    page.wait_for_function("() => [...document.querySelectorAll('#faces img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    crops = page.locator("#faces figure.crop")
    assert crops.count() >= 1 and "相似度" in crops.first.inner_text()
    target = crops.last
    seen = _t(target.get_attribute("data-seen"))
    page.evaluate("() => document.getElementById('player').pause()")
    page.evaluate("() => { const v = document.getElementById('player'); v.currentTime = 0 }")
    page.wait_for_timeout(300)
    target.click()
    page.wait_for_function(f"() => {{ const v = document.getElementById('player');"
                           f" return Math.abs(Date.parse(v.dataset.clipStart)/1000 + v.currentTime - {seen}) < 1.0 }}")
    page.keyboard.press("Escape")  # the click also enlarged the face: close it
    # the window bar shows the settlement and the faces
    assert page.locator("#tb-marks .settle").count() == 1
    # confirm with a note: status and history change
    assert page.locator("#flag-status").inner_text() == "待处理"
    page.fill("#note", "录像中结算人员并非参保人本人，确认冒名。")
    page.click("#do-confirm")
    page.wait_for_selector("#queue-done")  # the filtered queue had no other case: back to it, done
    page.goto(f"{site.url}/cases/{flag['case_id']}")
    page.wait_for_selector("#history li[data-action=confirmed]")
    assert page.locator("#flag-status").inner_text() == "已确认"
    last = page.locator("#history li").last.inner_text()
    assert "确认违规" in last and "王稽核" in last and "insp-north" not in last and "确认冒名" in last
    assert page.locator("#action-form").count() == 0
    # export the evidence package of the window: its SHA-256 is shown and the zip downloads
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("#download")
    sha = page.locator("td.mono").inner_text()
    r = page.request.get(site.url + page.locator("#download").get_attribute("href"))
    assert r.status == 200 and r.headers["x-dualcheck-package-sha256"] == sha and r.body()[:2] == b"PK"


def test_inquiry_goes_to_the_institution_only_and_its_reply_comes_back(login, site):
    ghost, other = site.flags["A-GHOST"], site.flags["A-IMP"]
    insp = login("insp-north")
    insp.goto(f"{site.url}/flags/{ghost['id']}")
    insp.fill("#note", "请说明该时段收费窗口为何无人。")
    insp.click("#do-inquiry")
    insp.wait_for_selector("#history li[data-action=inquiry_sent]")
    assert insp.locator("#flag-status").inner_text() == "质询中"

    inst = login("clinic-a")
    assert inst.url.endswith("/inquiries")
    rows = inst.locator("#inquiries-waiting tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-flag") == ghost["id"]
    rows.first.locator("a").click()
    inst.wait_for_url(f"**/inquiries/{ghost['case_id']}")
    assert "请说明该时段收费窗口为何无人" in inst.locator("#history").inner_text()
    assert inst.locator("img.face").count() == 0  # no face images for institutions
    assert inst.locator("#player").count() == 0  # nor the supervisor's footage
    # flags that were not sent to it do not exist for it
    r = inst.goto(f"{site.url}/inquiries/{other['id']}")
    assert r.status == 404
    r = inst.goto(f"{site.url}/flags/{other['id']}")
    assert r.status == 404
    assert inst.request.get(f"{site.url}/v1/flags/{other['id']}").status == 404
    inst.goto(f"{site.url}/inquiries/{ghost['case_id']}")
    inst.fill("#reply", "当日窗口人员临时离岗，补录记录见附件。")
    inst.click("#send-reply")
    inst.wait_for_selector("#history li[data-action=inquiry_answered]")
    assert inst.locator("#reply-form").count() == 0
    # the inspector sees the reply in the flag's history
    insp.reload()
    assert "临时离岗" in insp.locator("#history li[data-action=inquiry_answered]").inner_text()

    # the other institution sees nothing
    inst_b = login("clinic-b")
    assert inst_b.locator("#inquiries-waiting").count() == 0
    assert inst_b.goto(f"{site.url}/inquiries/{ghost['id']}").status == 404
    assert inst_b.goto(f"{site.url}/inquiries/{ghost['case_id']}").status == 404


def test_an_inspector_of_another_region_gets_nothing(login, site):
    page = login("insp-south")
    orgs = {page.locator("#queue tbody tr").nth(i).get_attribute("data-org")
            for i in range(page.locator("#queue tbody tr").count())}
    assert orgs == {"PHARM-B"}
    page.goto(f"{site.url}/flags?org=CLINIC-A&status=all")
    assert page.locator("#queue-empty").is_visible()
    flag = site.flags["A-IMP"]
    r = page.goto(f"{site.url}/flags/{flag['id']}")
    assert r.status == 404 and "未找到" in page.content()
    cam = flag["evidence"]["cameras"][0]
    face = flag["evidence"]["faces"][0]
    tpl = flag["evidence"]["insured_photos"][0]
    q = f"start={cam['start']}&end={cam['end']}".replace("+", "%2B")
    for url in (f"/v1/cameras/{cam['camera_id']}/clip?{q}", f"/v1/cameras/{cam['camera_id']}/clip.json?{q}",
                f"/v1/flags/{flag['id']}/faces/{face['evidence_id']}", f"/v1/flags/{flag['id']}/photos/{tpl['template_id']}",
                f"/v1/flags/{flag['id']}"):
        assert page.request.get(site.url + url).status == 404, url
    # the same URLs work for the region's inspector (so the refusal is about scope, not the URL)
    north = login("insp-north")
    for url in (f"/v1/flags/{flag['id']}/faces/{face['evidence_id']}", f"/v1/flags/{flag['id']}/photos/{tpl['template_id']}"):
        assert north.request.get(site.url + url).status == 200, url


def test_cameras_and_overview(login, site):
    ops = login("ops")
    assert ops.url.endswith("/cameras")
    day = site.flags["A-IMP"]["evidence"]["settlement"]["settled_at"][:10]
    ops.goto(f"{site.url}/cameras?day={day}")
    cams = ops.locator("#cameras tbody tr")
    assert [cams.nth(i).get_attribute("data-camera") for i in range(cams.count())] == ["CAM-A"]  # its region only
    assert cams.first.locator("svg.daybar rect.rec").count() >= 1
    assert cams.first.locator("svg.daybar rect.gap").count() >= 1
    assert "未知" in cams.first.inner_text()  # no recorder has reported on it
    assert ops.goto(f"{site.url}/flags").status == 403
    admin = login("admin", lang="en")
    admin.goto(f"{site.url}/overview?weeks=52")
    assert "Overview" in admin.content()
    assert admin.locator("#chart-orgs svg.chart").count() == 2  # both organisations
    assert admin.locator("#chart-types svg rect").count() >= 2
    admin.click("#lang-switch")
    admin.wait_for_load_state()
    assert "统计概览" in admin.content()


def test_reasons_read_in_the_inspectors_language(login, site):
    """A flag's reason is a sentence the inspector can read: Chinese by default, English after the
    switch, from the same stored check (the English text stays in the API)."""
    ghost, imp = site.flags["A-GHOST"], site.flags["A-IMP"]
    assert ghost["reason"].startswith("nobody at the counter in any of")  # the API keeps the English text
    zh = login("insp-north")
    zh.goto(f"{site.url}/flags/{ghost['id']}")
    reason = zh.locator(f"#finding-{ghost['id']} .finding-reason").inner_text()
    assert "柜台前均无人" in reason and "nobody" not in reason, reason
    zh.goto(f"{site.url}/flags/{imp['id']}")
    reason = zh.locator(f"#finding-{imp['id']} .finding-reason").inner_text()
    assert "不是参保人本人" in reason and "similarity" not in reason, reason
    zh.goto(f"{site.url}/flags")
    cells = zh.locator(f"#queue tr[data-flag='{ghost['id']}'] td.reason").inner_text()
    assert "柜台前均无人" in cells, cells
    en = login("insp-north", lang="en")
    en.goto(f"{site.url}/flags/{ghost['id']}")
    assert "nobody at the counter in any of" in en.locator(f"#finding-{ghost['id']} .finding-reason").inner_text()
