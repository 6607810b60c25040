"""The staff page in Debian's Chromium (headless, Playwright) against a real uvicorn, real SeaweedFS and
the real models: an operator uploads photos of a cashier (one refused with its reason), sees the
thumbnails, erases the cashier; another region's organisation and other roles get nothing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from camsim.identities import get, portrait
from storage.db import session_scope
from storage.models import AuditEvent, StaffMember
from tests.api.conftest import shared_pipeline  # noqa: F401  (fixture)
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def staff_site(served_site, shared_pipeline):  # noqa: F811
    env, url, _ = served_site("staff", pipeline=shared_pipeline)
    return env, url


def _login(browser, url: str, username: str):
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url
    return ctx, page


def test_operator_uploads_sees_and_erases_a_cashier(browser, staff_site, tmp_path):
    env, url = staff_site
    face = tmp_path / "cashier.jpg"
    cv2.imwrite(str(face), portrait(get("t1_3")))
    wall = tmp_path / "poster.png"
    cv2.imwrite(str(wall), np.full((300, 400, 3), 170, np.uint8))
    ctx, page = _login(browser, url, "ops")
    try:
        page.click("#nav-staff")
        page.wait_for_url("**/staff")
        assert page.locator("#org-picker option").all_inner_texts() == ["Clinic A"]  # its region only
        assert page.locator("#staff tbody tr").first.inner_text().strip() == "尚未登记工作人员"

        page.fill("#upload-form input[name=staff_id]", "C-01")
        page.fill("#upload-form input[name=name]", "王收银")
        page.select_option("#upload-form select[name=role]", "cashier")
        page.set_input_files("#upload-form input[name=photos]", [str(face), str(wall)])
        page.click("#upload-do")
        page.wait_for_selector("#upload-result")
        result = page.locator("#upload-result").inner_text()
        assert "登记 1 张" in result and "拒收 1 张" in result and "照片中没有找到人脸" in result
        row = page.locator("#staff tr[data-staff='C-01']")
        assert "王收银" in row.inner_text() and "收银员" in row.inner_text() and "年" in row.inner_text()
        assert row.locator("img.face").count() == 1
        page.wait_for_function("() => [...document.querySelectorAll('#staff img.face')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        with session_scope(env.rt.sessions) as db:
            member = db.scalar(select(StaffMember).where(StaffMember.staff_id == "C-01"))
            assert member.org_id == "CLINIC-A" and member.role == "cashier"
            viewed = db.scalar(select(AuditEvent).where(AuditEvent.action == "staff.photo.view"))
            assert viewed is not None and viewed.actor == "user:ops"  # the thumbnail view is audited, by name
        prefix = f"staff/CLINIC-A/{member.id}/"
        assert len(list(env.rt.store.list_keys(env.settings.bucket_biometrics, prefix=prefix))) == 1

        row.locator("button.erase").click()
        page.wait_for_selector("#notice")
        assert "C-01" in page.locator("#notice").inner_text()
        assert page.locator("#staff tr[data-staff='C-01']").count() == 0
        assert list(env.rt.store.list_keys(env.settings.bucket_biometrics, prefix=prefix)) == []

        # the organisation of another region does not exist for this operator
        resp = page.goto(f"{url}/staff?org=PHARM-B")
        assert resp.status == 404
    finally:
        ctx.close()
    ctx, page = _login(browser, url, "insp-north")
    try:
        assert page.locator("#nav-staff").count() == 0
        assert page.goto(f"{url}/staff").status == 403
    finally:
        ctx.close()
