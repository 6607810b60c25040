"""The bed-hanging (挂床住院) case in Debian's Chromium: the inspector opens the case, sees the patient's
checks as a strip (days x check times, in Chinese, local times) and replays an absent check's footage,
which plays from that check's time, with the frame the check kept beside it. Admissions through
POST /v1/claims, beds and their empty pictures through the beds API, checks through POST /v1/ward/check,
real segments in a real SeaweedFS (at the check times: tests/correlate/test_ward_checks.py says why),
real face models, a real uvicorn."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from camsim.ward import Moment, region, render_ward
from tests.api.conftest import shared_pipeline  # noqa: F401  (fixture)
from tests.correlate.test_ward_checks import ABSENT_02, DAYS, PATIENTS, SLOTS, admission, discharge, local, moment
from tests.web.conftest import logged_in
from tests.web.test_browser import wait_playing, wall_of
from tests.web.test_wording_zh import COLLECT, _data_tokens, _leftovers

pytestmark = pytest.mark.slow
ORG, CAM = "CLINIC-A", "CAM-W"


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def ward_site(served_site, shared_pipeline):  # noqa: F811
    from storage.db import session_scope

    def seed(env):
        from api.keys import add_service_key
        from ingest.cameras import add_camera
        from tests.replay.segmenter import make_segments

        rt = env.rt
        rt.store.ensure_bucket(rt.settings.bucket_footage)
        with session_scope(rt.sessions) as db:
            add_camera(db, camera_id=CAM, org_id=ORG, name="内科3病区", role="ward", url="rtsp://10.0.0.9/ward")
            env.keys["admin"] = add_service_key(db, "admin", "operator")

        def record(m: Moment, at: datetime) -> None:
            with session_scope(rt.sessions) as db:
                make_segments(db, rt.store, rt.settings.bucket_footage, render_ward(m), org_id=ORG, camera_id=CAM,
                              start=at - timedelta(seconds=4), total_s=8.0, segment_s=8.0, workdir=env.tmp)

        h = env.h("admin")
        empty_day, empty_night = local("2026-11-02", "15:00"), local("2026-11-02", "23:00")
        record(Moment(light="day"), empty_day)
        record(Moment(light="night"), empty_night)
        for day in DAYS:
            for slot in SLOTS:
                record(moment(day, slot), local(day, slot))
        for bed in ("02", "03"):
            r = env.client.put("/v1/beds", json={"org_id": ORG, "bed": bed, "dept_codg": "NK", "camera_id": CAM,
                                                 "region": region(bed)}, headers=h)
            assert r.status_code == 200, r.text
            for at in (empty_day, empty_night):
                r = env.client.put(f"/v1/beds/{r.json()['id']}/reference", json={"at": at.isoformat()}, headers=h)
                assert r.status_code == 200, r.text
        msgs = [admission(*PATIENTS[b][:2], b) for b in ("02", "03")] + [discharge(*PATIENTS[b][:2]) for b in ("02", "03")]
        assert env.client.post("/v1/claims", json=msgs, headers=h).status_code == 200
        r = env.client.post("/v1/ward/check", json={"org_id": ORG}, headers=h)
        assert r.status_code == 200 and len(r.json()["flags"]) == 1, r.text
        return env.client.get(f"/v1/flags/{r.json()['flags'][0]}", headers=h).json()

    env, url, flag = served_site("ward-site", seed, pipeline=shared_pipeline)
    from storage.models import Organisation

    with session_scope(env.rt.sessions) as db:  # the institutions' names in Chinese, as the demo's
        for o, name in (("CLINIC-A", "甲医院"), ("PHARM-B", "乙药店")):
            db.get(Organisation, o).name = name
    tokens = _data_tokens(env.rt) | {"M-02", "M-03", "P-02", "P-03", "NK", "CAM-W"}
    return url, flag, tokens


def test_the_inspector_opens_the_timeline_and_plays_an_absent_check(browser, ward_site):
    url, flag, tokens = ward_site
    ctx, page = logged_in(browser, url, "insp-north", timeout_ms=20000)
    page.goto(f"{url}/cases/{flag['case_id']}")
    assert "挂床住院" in page.locator("h1").inner_text()
    strip = page.locator(f"#ward-timeline-{flag['id']}")
    assert "在床核查时间线" in strip.inner_text() and "M-02" in strip.inner_text()
    # days x checks: the three days in Chinese, the three check times, the absent days as such
    heads = strip.locator("thead th")
    assert [heads.nth(i).inner_text() for i in range(heads.count())] == ["日期", *SLOTS]
    rows = strip.locator("tbody tr")
    assert [rows.nth(i).locator("th").inner_text() for i in range(3)] == ["11月3日 周二", "11月4日 周三", "11月5日 周四"]
    outcomes = [[rows.nth(i).locator("button.wt-cell").nth(j).get_attribute("data-outcome") for j in range(3)]
                for i in range(3)]
    assert {(DAYS[i], SLOTS[j]) for i in range(3) for j in range(3) if outcomes[i][j] == "absent"} == ABSENT_02
    assert rows.nth(1).locator("button.wt-cell").nth(0).inner_text().startswith("不在床")
    assert "夜间红外" in rows.nth(0).locator("button.wt-cell").nth(2).inner_text()
    assert strip.locator("button.wt-flagged").count() == len(ABSENT_02)
    # each cell's figures in Chinese: the bed region's change beside the rule's, the brightness, the face
    tip = rows.nth(1).locator("button.wt-cell").nth(0).get_attribute("title")
    assert "床位区域变化" in tip and "（阈值 40%）" in tip and "亮度" in tip and "未见面孔" in tip, tip
    share = int(tip.split("床位区域变化 ")[1].split("%")[0])
    assert 0 <= share < 40, tip  # an empty bed: under the rule's share
    night = rows.nth(2).locator("button.wt-cell").nth(2).get_attribute("title")  # 11月5日 22:00, back in bed
    assert int(night.split("床位区域变化 ")[1].split("%")[0]) >= 40, night
    # no settlement behind this finding: the admission in its place, the jump goes to the first absent check
    assert page.locator("#settlement-data").count() == 0
    card = page.locator("#admission-card")
    assert card.locator("h2").inner_text() == "住院登记"
    assert page.locator("#adm-mdtrt").inner_text() == "M-02" and page.locator("#adm-person").inner_text() == "P-02"
    assert page.locator("#adm-bed").inner_text() == "02" and page.locator("#adm-ward").inner_text() == "内科 · 内科3病区"
    assert page.locator("#adm-since").inner_text() == "2026年11月3日 07:00"
    assert page.locator("#adm-discharged").inner_text() == "2026年11月5日 23:30"
    assert page.locator("#adm-first-absent").inner_text() == "2026年11月4日 08:00"
    jump = page.locator("#jump-settlement")
    assert jump.inner_text() == "跳到首次不在床抽检" and "结算" not in page.locator("#player-box").inner_text()
    # the player opens on the first absent check; another absent check plays from its own time
    assert page.locator("#cam-tabs").inner_text().strip() == "内科3病区"
    wait_playing(page)
    cell = rows.nth(1).locator("button.wt-cell").nth(1)  # 11月4日 12:30, absent
    at = _t(cell.get_attribute("data-at")).timestamp()
    cell.click()
    page.wait_for_function("(at) => { const v = document.getElementById('player'); return v && v.dataset.wall"
                           " && Math.abs(Date.parse(v.dataset.wall) / 1000 - at) < 3 && !v.paused && v.readyState >= 2 }",
                           arg=at)
    assert at - 0.6 <= wall_of(page) <= at + 3.0
    assert page.locator("#frame-time").inner_text().startswith("12:30")  # local time, not UTC
    assert "床位区域变化" in page.locator(".wt-frame figcaption").inner_text()  # the figures beside the frame
    # back to the first absent check (11月4日 08:00) from the player's jump
    first = _t(rows.nth(1).locator("button.wt-cell").nth(0).get_attribute("data-at")).timestamp()
    jump.click()
    page.wait_for_function("(at) => { const v = document.getElementById('player'); return v && v.dataset.wall"
                           " && Math.abs(Date.parse(v.dataset.wall) / 1000 - at) < 3 }", arg=first)
    assert page.locator("#frame-time").inner_text().startswith("08:00")
    # the frame the check kept, as the check saw it
    page.wait_for_function("() => { const i = document.querySelector('.wt-frame img'); return i && i.naturalWidth > 0 }")
    assert not page.locator(".wt-frame").is_hidden()
    assert _leftovers(page.evaluate(COLLECT), tokens) == []  # no English, no raw codes on the zh-CN page
    ctx.close()


def test_an_operator_outlines_a_bed_on_the_ward_frame_and_takes_its_empty_picture(browser, ward_site):
    url, _, tokens = ward_site
    ctx, page = logged_in(browser, url, "ops", timeout_ms=20000)
    page.goto(f"{url}/cameras")
    page.click(f"tr[data-camera='{CAM}'] a.beds-link")
    page.wait_for_url(f"**/cameras/{CAM}/beds")
    page.wait_for_function("() => { const i = document.getElementById('bed-still'); return i.complete && i.naturalWidth > 0 }")
    assert page.locator("#bed-svg polygon.bed").count() == 2  # 02 and 03, set through the API
    page.fill("#bed-no", "04")
    box = page.locator("#bed-svg").bounding_box()
    corners = region("04")
    for x, y in corners:
        page.mouse.click(box["x"] + x * box["width"] * 0.999, box["y"] + y * box["height"] * 0.999)
    assert page.locator("#bed-draft").inner_text() == "已放置 4 个顶点"
    page.click("#bed-save")
    page.wait_for_function("() => document.getElementById('bed-svg').hasAttribute('data-saved')")
    assert "已保存" in page.locator("#bed-status").inner_text()
    assert page.locator("#bed-svg polygon.bed").count() == 3
    page.reload()  # saved: drawn again from the server's bed map
    assert page.locator("#bed-svg polygon.bed[data-bed='04']").count() == 1
    item = page.locator("#bed-list li[data-bed='04']")
    assert "日间空床图未设" in item.inner_text()
    # its empty picture by day, from the empty ward recorded the afternoon before (local time)
    page.fill("#bed-ref-at", "2026-11-02T15:00:00")
    item.locator("button.bed-ref-day").click()
    page.wait_for_function("() => document.getElementById('bed-status').textContent.includes('已取参照图')")
    assert "日间空床图已设" in page.locator("#bed-list li[data-bed='04']").inner_text()
    assert _leftovers(page.evaluate(COLLECT), tokens) == []
    ctx.close()
