"""The zones editor in Debian's Chromium against a real uvicorn, over real footage and real checks: an
operator draws a polygon by clicking on the camera's latest frame and saves it (the API then returns
it); a zone drawn in the UI changes the outcome of a re-checked settlement."""
from __future__ import annotations

import pytest

from storage.db import session_scope
from storage.models import Settlement, utcnow

pytestmark = pytest.mark.slow


def open_editor(page, site, camera_id="CAM-A"):
    page.goto(f"{site.url}/cameras")
    page.click(f"tr[data-camera='{camera_id}'] a.zones-link")
    page.wait_for_url(f"**/cameras/{camera_id}/zones")
    page.wait_for_function("() => { const i = document.getElementById('zone-still');"
                           " return i.complete && i.naturalWidth > 0 }")


def click_polygon(page, points):
    box = page.locator("#zone-svg").bounding_box()
    for x, y in points:
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def save(page):
    before = page.get_attribute("#zone-svg", "data-saved")
    page.click("#zone-save")
    page.wait_for_function(f"() => document.getElementById('zone-svg').getAttribute('data-saved') !== {before!r}"
                           if before else "() => document.getElementById('zone-svg').hasAttribute('data-saved')")


def api_zones(site):
    w = site.world
    r = w.client.get("/v1/cameras/CAM-A/zones", headers=w.h("admin"))
    assert r.status_code == 200, r.text
    return r.json()["zones"]


def test_operator_draws_a_customer_zone_on_the_still_frame(login, site):
    page = login("ops")
    csp = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    open_editor(page, site)
    assert "顾客区" in page.locator("#zone-kind").inner_text() and "忽略区" in page.locator("#zone-kind").inner_text()
    assert "未设置区域" in page.locator("#zone-list").inner_text()
    page.select_option("#zone-kind", "customer")
    page.fill("#zone-label", "柜台前")
    corners = [(0.40, 0.30), (0.95, 0.30), (0.95, 0.90), (0.40, 0.90)]
    click_polygon(page, corners)
    assert page.locator("#zone-draft").inner_text() == "已放置 4 个顶点"
    page.click("#zone-finish")
    assert page.locator("#zone-svg polygon.zone-customer").count() == 1
    assert "未保存" in page.locator("#zone-status").inner_text()
    save(page)
    assert "已保存" in page.locator("#zone-status").inner_text()
    zones = api_zones(site)
    assert [(z["kind"], z["label"], len(z["points"])) for z in zones] == [("customer", "柜台前", 4)]
    for (x, y), (ax, ay) in zip(corners, zones[0]["points"]):
        assert abs(x - ax) < 0.01 and abs(y - ay) < 0.01, (corners, zones)
    # reloaded, the saved zone is drawn over the frame; an inspector sees it but cannot edit
    page.reload()
    assert page.locator("#zone-svg polygon.zone-customer").count() == 1
    insp = login("insp-north")
    open_editor(insp, site)
    assert insp.locator("#zone-svg polygon.zone-customer").count() == 1 and insp.locator("#zone-save").count() == 0
    assert csp == []


def test_a_zone_drawn_in_the_ui_changes_the_outcome(login, site):
    w = site.world
    first = w.client.get("/v1/settlements/A-IMP", headers=w.h("admin")).json()
    assert first["outcome"] == "impersonation"
    page = login("ops")
    open_editor(page, site)
    # remove whatever is there, then mask the middle of the counter where the stranger stands
    while page.locator("#zone-list .zone-delete").count():
        page.locator("#zone-list .zone-delete").first.click()
    page.select_option("#zone-kind", "ignore")
    page.fill("#zone-label", "海报")
    corners = [(0.12, 0.02), (0.88, 0.02), (0.88, 0.98), (0.12, 0.98)]
    click_polygon(page, corners + [corners[0]])  # a click on the first point closes the polygon
    assert page.locator("#zone-svg polygon.zone-ignore").count() == 1
    save(page)
    assert [z["kind"] for z in api_zones(site)] == ["ignore"]
    # re-check the settlement: the face behind the ignore zone is no longer the payer
    with session_scope(w.rt.sessions) as db:
        st = db.get(Settlement, "A-IMP")
        st.status, st.next_check_at = "pending", utcnow()
    w.run_jobs()
    again = w.client.get("/v1/settlements/A-IMP", headers=w.h("admin")).json()
    assert again["check"]["status"] == "done"
    assert again["outcome"] != "impersonation", again
    # the zones are gone again in the UI: the settlement checks as at first
    open_editor(page, site)
    page.locator("#zone-list .zone-delete").first.click()
    save(page)
    assert api_zones(site) == []
    with session_scope(w.rt.sessions) as db:
        st = db.get(Settlement, "A-IMP")
        st.status, st.next_check_at = "pending", utcnow()
    w.run_jobs()
    assert w.client.get("/v1/settlements/A-IMP", headers=w.h("admin")).json()["outcome"] == "impersonation"


def test_operator_takes_and_removes_the_counter_empty_reference_picture(login, site):
    """The newest frame of CAM-A is its ghost block (nobody at the counter): the operator takes it as the
    reference picture in the editor; the page then says from when and by whom (local time, display
    name) and shows it; removing it puts the page back. An inspector sees the state, not the buttons."""
    w = site.world
    page = login("ops")
    open_editor(page, site)
    assert "尚未设置参考画面" in page.locator("#ref-state").inner_text()
    page.click("#ref-take")
    page.wait_for_function("() => document.getElementById('ref-status').textContent.length > 0")
    assert "参考画面已设置" in page.locator("#ref-status").inner_text(), page.locator("#ref-status").inner_text()
    page.wait_for_selector("#ref-img")
    page.wait_for_function("() => { const i = document.getElementById('ref-img'); return i.complete && i.naturalWidth > 0 }")
    state = page.locator("#ref-state").inner_text()
    ref = w.client.get("/v1/cameras/CAM-A/reference", headers=w.h("admin")).json()["reference"]
    assert ref is not None and ref["set_by"] == "user:ops"
    assert state.startswith("参考画面取自 ") and "user:" not in state and "Z" not in state and "T" not in state, state
    insp = login("insp-north")
    open_editor(insp, site)
    assert "参考画面取自" in insp.locator("#ref-state").inner_text() and insp.locator("#ref-take").count() == 0
    page.click("#ref-clear")
    page.wait_for_function("() => document.getElementById('ref-status').textContent.length > 0")
    page.wait_for_function("() => document.getElementById('ref-state').textContent.includes('尚未设置')")
    assert w.client.get("/v1/cameras/CAM-A/reference", headers=w.h("admin")).json()["reference"] is None
