"""The cameras page at 300 cameras, in Chromium: counts, offline alerts, filters, search, paging, and
no false gap (the time before a camera was installed and the segment being recorded now are shown
apart); institutions see their own cameras' health; operators add, edit, test and remove cameras."""
from __future__ import annotations

import os
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _shot(page, name: str) -> None:
    """docs/screenshots/<name>.png when DUALCHECK_SCREENSHOTS=1 (scripts/screenshots.py)."""
    if os.environ.get("DUALCHECK_SCREENSHOTS") != "1":
        return
    from PIL import Image

    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)

TZ = ZoneInfo("Asia/Shanghai")
N_ORGS, PER_ORG = 6, 50  # 300 cameras in the north region
ROLES = ("settlement_counter", "pharmacy_counter", "consulting_room", "ward", "entrance")


def _fleet(rt, now: datetime) -> dict:
    """300 cameras: most recording all day up to a few seconds ago (their last segment not yet stored);
    some installed this morning; one with a real 30-minute gap; offline ones (long and briefly)."""
    from api.keys import add_organisation
    from storage.db import session_scope
    from storage.models import Camera, CameraStatus, RecordingGap, Segment

    day0 = datetime.combine(now.astimezone(TZ).date(), time(0), tzinfo=TZ).astimezone(timezone.utc)
    recent = now - timedelta(seconds=20)  # the last stored segment ended 20 s ago: the next is being recorded
    long_ago = day0 - timedelta(days=30)
    special = {"NORTH-1-C007": "gap", "NORTH-2-C011": "installed_today", "NORTH-3-C002": "offline_long",
               "NORTH-4-C043": "offline_long", "NORTH-5-C033": "offline_brief"}
    with session_scope(rt.sessions) as db:
        for o in range(1, N_ORGS + 1):
            add_organisation(db, f"NORTH-{o}", f"北区第{o}卫生院", region="north")
        db.flush()
        for o in range(1, N_ORGS + 1):
            for i in range(PER_ORG):
                cid = f"NORTH-{o}-C{i:03d}"
                kind = special.get(cid, "ok")
                installed = (day0 + (now - day0) / 3) if kind == "installed_today" else long_ago
                db.add(Camera(id=cid, org_id=f"NORTH-{o}", name=f"{'收费窗口' if i % 2 else '药房窗口'}{i + 1}号",
                              role=ROLES[i % len(ROLES)], rtsp_url=f"rtsp://10.{o}.0.{i + 1}/stream",
                              covers=[f"counter-{i + 1}"], zones=[], created_at=installed))
                start = max(day0, installed)
                end = {"offline_long": now - timedelta(hours=2), "offline_brief": now - timedelta(minutes=2)}.get(kind, recent)
                spans = [(start, end)]
                if kind == "gap":
                    g0 = start + (end - start) / 2
                    spans = [(start, g0), (g0 + timedelta(minutes=30), end)]
                    db.add(RecordingGap(camera_id=cid, start_at=g0, end_at=g0 + timedelta(minutes=30),
                                        reason="camera_offline"))
                for k, (a, b) in enumerate(spans):
                    if b > a:
                        db.add(Segment(camera_id=cid, org_id=f"NORTH-{o}", start_at=a, end_at=b,
                                       duration_s=(b - a).total_seconds(), bytes=1, sha256="0" * 64,
                                       object_key=f"{cid}/{k}", recorder_id="rec-1"))
                offline = kind.startswith("offline")
                db.add(CameraStatus(camera_id=cid, recorder_id="rec-1", state="offline" if offline else "online",
                                    last_packet_at=end if offline else now, last_segment_end=end,
                                    updated_at=now))
    return special


@pytest.fixture(scope="module")
def fleet(served_site):
    env, url, _ = served_site("fleet", camera_test_timeout_s=5.0, camera_offline_after_s=600)
    return env, url, _fleet(env.rt, datetime.now(timezone.utc))


@pytest.fixture
def as_user(browser, fleet):
    contexts = []

    def go(username: str):
        ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20000)
        page.goto(f"{fleet[1]}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/login" not in page.url
        return page

    yield go
    for c in contexts:
        c.close()


def _rows(page) -> list[str]:
    return page.locator("#cameras tbody tr").evaluate_all("rs => rs.map(r => r.dataset.camera)")


def test_300_cameras_counts_alerts_filters_and_no_false_gap(as_user, fleet):
    env, url, special = fleet
    ops = as_user("ops")
    ops.goto(f"{url}/cameras")
    counts = {c.get_attribute("data-count"): int(c.locator("b").inner_text())
              for c in ops.locator("#cam-counts a.count").all()}
    assert counts["total"] == 300
    assert counts["offline"] == 3 and counts["online"] == 297
    assert counts["gaps"] == 4  # the real 30-minute gap, and the three cameras offline now (for 2 h, 2 h, 2 min)
    # offline alerts at the top: only those down longer than the setting (10 min), with when they went down
    alerts = ops.locator("#cam-alerts li").evaluate_all("ls => ls.map(l => l.dataset.camera)")
    assert sorted(alerts) == ["NORTH-3-C002", "NORTH-4-C043"]
    assert "起离线" in ops.locator("#cam-alerts").inner_text()
    ops.set_viewport_size({"width": 1280, "height": 720})
    _shot(ops, "cameras-300")
    ops.set_viewport_size({"width": 1360, "height": 900})
    # a compact table: one page of 50 rows, each one line high
    rows = _rows(ops)
    assert len(rows) == 50 and "第 1 / 6 页，共 300 个" in ops.locator("#cam-pager").inner_text()
    heights = ops.locator("#cameras tbody tr").evaluate_all("rs => rs.map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 45, max(heights)
    # no false gap: a healthy camera shows none (its current segment is "being recorded", not missing)
    healthy = ops.locator("#cameras tr[data-camera='NORTH-1-C000']")
    assert healthy.locator("rect.gap").count() == 0 and healthy.get_attribute("data-gaps") == "0"
    assert healthy.locator("rect.pending").count() == 1
    assert "未录制" not in ops.locator("#cameras").inner_text()
    g = ops.locator("#cameras tr[data-camera='NORTH-1-C007']")  # the real gap is shown, with its reason
    assert g.locator("rect.gap").count() == 1 and "摄像头离线" in g.locator("rect.gap title").text_content()
    # search, then filters: installed this morning -> time before installation apart, no gap
    ops.fill("#cam-filters input[name=q]", "NORTH-2-C011")
    ops.click("#cam-filters button[type=submit]")
    ops.wait_for_load_state()
    assert _rows(ops) == ["NORTH-2-C011"]
    row = ops.locator("#cameras tr[data-camera='NORTH-2-C011']")
    assert row.locator("rect.before").count() == 1 and row.locator("rect.gap").count() == 0
    # state "with gaps" lists exactly those four
    ops.goto(f"{url}/cameras?state=gaps")
    assert sorted(_rows(ops)) == ["NORTH-1-C007", "NORTH-3-C002", "NORTH-4-C043", "NORTH-5-C033"]
    # institution + role + state together
    ops.goto(f"{url}/cameras")
    ops.select_option("#cam-filters select[name=org]", "NORTH-4")
    ops.select_option("#cam-filters select[name=role]", "ward")
    ops.click("#cam-filters button[type=submit]")
    ops.wait_for_load_state()
    got = _rows(ops)
    assert got == [f"NORTH-4-C{i:03d}" for i in range(PER_ORG) if ROLES[i % 5] == "ward"]
    ops.select_option("#cam-filters select[name=state]", "offline")
    ops.click("#cam-filters button[type=submit]")
    ops.wait_for_load_state()
    assert _rows(ops) == ["NORTH-4-C043"]
    # paging keeps the filters
    ops.goto(f"{url}/cameras?org=NORTH-6")
    assert len(_rows(ops)) == 50 and ops.locator("#next-page").count() == 0
    ops.goto(f"{url}/cameras?q=%E6%94%B6%E8%B4%B9%E7%AA%97%E5%8F%A3")  # 收费窗口: half of them
    assert "共 150 个" in ops.locator("#cam-pager").inner_text()
    ops.click("#next-page")
    ops.wait_for_load_state()
    assert "第 2 / 3 页" in ops.locator("#cam-pager").inner_text() and "page=2" in ops.url and "q=" in ops.url


def test_an_institution_sees_its_own_cameras_health_only(as_user, fleet):
    env, url, _ = fleet
    from api.web.auth import add_user
    from storage.db import session_scope

    with session_scope(env.rt.sessions) as db:
        add_user(db, "north-3", PASSWORD, "institution", org_id="NORTH-3", display_name="北区第3卫生院")
    inst = as_user("north-3")
    inst.goto(f"{url}/cameras")
    rows = _rows(inst)
    assert len(rows) == 50 and all(r.startswith("NORTH-3-") for r in rows)
    assert "共 50 个" in inst.locator("#cam-pager").inner_text()
    assert inst.locator("a.cam-manage, #cam-add, a.zones-link").count() == 0
    assert [a.get_attribute("data-camera") for a in inst.locator("#cam-alerts li").all()] == ["NORTH-3-C002"]
    # health yes, pictures no
    assert inst.request.get(f"{url}/v1/cameras/NORTH-3-C002/health").status == 200
    assert inst.request.get(f"{url}/v1/cameras/NORTH-3-C002/still.jpg").status == 403
    assert inst.request.get(f"{url}/v1/cameras/NORTH-4-C002/health").status == 404
    assert inst.goto(f"{url}/cameras/NORTH-3-C002/edit").status == 403


def test_operator_adds_tests_edits_and_removes_a_camera(as_user, fleet, camera_factory):  # noqa: F811
    env, url, _ = fleet
    sim = camera_factory(user="cam", password="s3cret-pw")
    ops = as_user("ops")
    ops.goto(f"{url}/cameras")
    ops.click("#cam-add")
    ops.select_option("#cam-new-form select[name=org_id]", "NORTH-2")
    ops.fill("#cam-new-form input[name=id]", "bad id!")
    ops.fill("#cam-new-form input[name=name]", "新收费窗口")
    ops.fill("#cam-new-form input[name=url]", sim.url_without_credentials)
    ops.click("#cam-create")
    ops.wait_for_load_state()
    assert "摄像头编号只能包含" in ops.locator("#form-error").inner_text()
    assert ops.locator("#cam-new-form input[name=url]").input_value() == sim.url_without_credentials  # kept
    ops.fill("#cam-new-form input[name=id]", "NORTH-2-NEW")
    ops.select_option("#cam-new-form select[name=role]", "settlement_counter")
    ops.fill("#cam-new-form input[name=username]", "cam")
    ops.fill("#cam-new-form input[name=password]", "s3cret-pw")
    ops.fill("#cam-new-form input[name=covers]", "counter-9, T-9")
    ops.click("#cam-create")
    ops.wait_for_load_state()
    assert ops.url.endswith("/cameras/NORTH-2-NEW/edit?done=added"), ops.locator("#form-error").all_inner_texts()
    assert "s3cret-pw" not in ops.content()
    # the stream test opens the real RTSP camera with the sealed credentials and shows its picture
    ops.click("#cam-test-btn")
    ops.wait_for_load_state()
    res = ops.locator("#test-result")
    assert res.get_attribute("data-ok") == "1", res.inner_text()
    assert "视频流正常：H264，640×360" in res.inner_text()
    ops.wait_for_function("() => document.getElementById('test-frame').naturalWidth === 640")
    _shot(ops, "camera-edit")
    # rename and change what it covers
    ops.fill("#cam-edit-form input[name=name]", "新收费窗口（东）")
    ops.fill("#cam-edit-form input[name=covers]", "counter-9")
    ops.click("#cam-save")
    ops.wait_for_load_state()
    assert "已保存" in ops.locator("#done").inner_text()
    ops.goto(f"{url}/cameras?q=NORTH-2-NEW")
    assert _rows(ops) == ["NORTH-2-NEW"] and "新收费窗口（东）" in ops.locator("#cameras").inner_text()
    assert "共 1 个" in ops.locator("#cam-pager").inner_text()
    # a wrong password: the test says so without showing it
    from storage.db import session_scope
    from storage.models import Camera

    with session_scope(env.rt.sessions) as db:
        db.get(Camera, "NORTH-2-NEW").rtsp_password = env.rt.credentials.seal("wrong-pw")
    ops.goto(f"{url}/cameras/NORTH-2-NEW/edit")
    ops.click("#cam-test-btn")
    ops.wait_for_load_state()
    assert ops.locator("#test-result").get_attribute("data-ok") == "0"
    assert "无法读取视频流" in ops.locator("#test-result").inner_text() and "wrong-pw" not in ops.content()
    # remove: needs the confirmation tick
    ops.click("#cam-remove-btn")
    ops.wait_for_load_state()
    assert "请勾选确认" in ops.locator("#form-error").inner_text()
    ops.check("#cam-remove-confirm")
    ops.click("#cam-remove-btn")
    ops.wait_for_load_state()
    assert "NORTH-2-NEW 已移除" in ops.locator("#done").inner_text()
    ops.goto(f"{url}/cameras?q=NORTH-2-NEW")
    assert _rows(ops) == []
    # every step is in the audit trail under the operator's name
    from sqlalchemy import select

    from storage.models import AuditEvent

    with session_scope(env.rt.sessions) as db:
        acts = [a for (a,) in db.execute(select(AuditEvent.action).where(AuditEvent.subject == "camera:NORTH-2-NEW")
                                         .order_by(AuditEvent.id))]
    assert acts == ["camera.add", "camera.test", "camera.update", "camera.test", "camera.remove"], acts
    # an inspector may look but not manage
    insp = as_user("insp-north")
    assert insp.goto(f"{url}/cameras/new").status == 403
