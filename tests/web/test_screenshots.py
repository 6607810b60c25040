"""Screenshots of the main pages (docs/screenshots/ when DUALCHECK_SCREENSHOTS=1, else a temp dir):
each page renders with its content and makes a small PNG."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.web.test_wording_zh import _as_in_the_demo

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_main_pages_screenshot_small(login, site, tmp_path):
    out = REPO / "docs" / "screenshots" if os.environ.get("DUALCHECK_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    ghost_b, imp_a = site.flags["B-GHOST"], site.flags["A-IMP"]
    day = imp_a["evidence"]["settlement"]["settled_at"][:10]

    def shot(page, name, full=False):
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=full)
        from PIL import Image  # a 256-colour palette keeps the PNGs small enough for a README

        with Image.open(path) as im:
            im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        assert 5_000 < path.stat().st_size < 300_000, (name, path.stat().st_size)

    _as_in_the_demo(site.rt)  # Chinese names, as the demo's
    admin = login("admin")
    admin.set_viewport_size({"width": 1280, "height": 720})
    admin.goto(f"{site.url}/flags?status=all")
    shot(admin, "queue")
    admin.goto(f"{site.url}/cases/{imp_a['case_id']}")
    admin.wait_for_function("() => { const v = document.getElementById('player');"
                            " return v && v.readyState >= 2 && v.currentTime > 0.5 }")
    admin.evaluate("() => document.getElementById('player').pause()")
    admin.wait_for_function("() => [...document.querySelectorAll('#faces img')].every(i => i.complete)")
    admin.set_viewport_size({"width": 1280, "height": 1000})
    shot(admin, "flag-detail")
    admin.set_viewport_size({"width": 1280, "height": 520})
    admin.goto(f"{site.url}/cameras?day={day}")
    shot(admin, "cameras")
    # decide a few cases through the JSON API with the browser's session (cookie + CSRF header)
    csrf = admin.locator("input[name=csrf_token]").first.get_attribute("value")
    listed = admin.request.get(f"{site.url}/v1/cases?status=open").json()["cases"]
    for c in listed:
        if c["settlement_id"] == "B-GHOST":
            continue
        rules = {f["type"] for f in c["findings"]}
        decision = "confirm" if rules & {"impersonation", "ghost_visit"} or c["settlement_id"] == "A-IMP" \
            else "dismiss"
        r = admin.request.post(f"{site.url}/v1/cases/{c['id']}/review", data={"decision": decision, "note": "复核"},
                               headers={"X-CSRF-Token": csrf})
        assert r.status == 200, r.text()
    admin.set_viewport_size({"width": 1280, "height": 820})
    admin.goto(f"{site.url}/overview?weeks=52")
    assert admin.locator("#chart-rates svg").count() == 1
    shot(admin, "overview")
    # the institution's view of an inquiry (sent here by the south inspector)
    south = login("insp-south")
    south.goto(f"{site.url}/flags/{ghost_b['id']}")
    if south.locator("#do-inquiry").count():
        south.fill("#note", "请说明 14:05 前后收费窗口为何无人，并提供当班记录。")
        south.click("#do-inquiry")
        south.wait_for_selector("#history li[data-action=inquiry_sent]")
    inst = login("clinic-b")
    inst.set_viewport_size({"width": 1280, "height": 720})
    inst.goto(f"{site.url}/inquiries/{ghost_b['case_id']}")
    shot(inst, "institution")
