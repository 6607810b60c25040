"""A camera recording its main and its sub-stream whose sub-stream URL is wrong: the GStreamer test camera
serves the main stream, the sub-stream path does not exist. The recorder keeps recording the main stream;
the camera's status says so per stream on the health API (``sub``: not online, its reconnects and error),
on /metrics (dualcheck_camera_sub_online beside dualcheck_camera_online) and on the cameras page in Chinese (主码流 在线, 子码流
未连接 or 重连中). A real recorder, SeaweedFS, uvicorn and Chromium."""
from __future__ import annotations

import time

import pytest

from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.ingest.conftest_recorder import FAST
from tests.web.conftest import add_users, logged_in, test_settings
from tests.web.test_wording_zh import _leftovers

pytestmark = pytest.mark.slow


def test_a_wrong_sub_stream_url_shows_main_connected_and_sub_not(browser, camera_factory, tmp_path, seaweed,
                                                                  models_dir):
    from api.keys import add_service_key
    from ingest.cameras import add_camera
    from ingest.recorder import Recorder
    from storage.db import session_scope
    from tests.api.conftest import start_env
    from tests.replay.live import serve

    cam = camera_factory()
    wrong = cam.url.rsplit("/", 1)[0] + "/no-such-sub-stream"
    settings = test_settings(tmp_path, seaweed, models_dir, **FAST, spool_dir=tmp_path / "spool")
    env = start_env(settings, None)
    add_users(env.rt)
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        add_camera(db, camera_id="CAM-DUAL", org_id="CLINIC-A", name="收费窗口1号", role="settlement_counter",
                   url=cam.url, sub_url=wrong, record_streams="both", covers=["counter-1"], box=env.rt.credentials)
        add_camera(db, camera_id="CAM-MAIN", org_id="CLINIC-A", name="收费窗口2号", role="settlement_counter",
                   url=cam.url, covers=["counter-2"], box=env.rt.credentials)
    rec = Recorder(settings).start()
    try:
        def health(cid):
            r = env.client.get(f"/v1/cameras/{cid}/health", headers=env.h("admin"))
            assert r.status_code == 200, r.text
            return r.json()

        deadline = time.time() + 90
        h = health("CAM-DUAL")
        while time.time() < deadline and not (h["online"] and h["last_segment_end"] and h["sub"]["reconnects"] >= 1):
            time.sleep(1.0)
            h = health("CAM-DUAL")
        assert h["online"] and h["state"] == "online" and h["last_segment_end"], h
        sub = h["sub"]
        assert not sub["online"] and sub["state"] in ("offline", "connecting"), sub
        assert sub["reconnects"] >= 1 and sub["error"] and sub["last_packet_at"] is None, sub
        assert sub["last_segment_end"] is None and sub["recorded_s"] == 0
        assert health("CAM-MAIN")["sub"] is None  # a camera recording its main stream only has no sub status
        metrics = env.client.get("/metrics").text
        assert 'dualcheck_camera_online{camera="CAM-DUAL",org="CLINIC-A"} 1.0' in metrics
        assert 'dualcheck_camera_sub_online{camera="CAM-DUAL",org="CLINIC-A"} 0.0' in metrics
        assert 'dualcheck_camera_sub_online{camera="CAM-MAIN"' not in metrics
        assert 'dualcheck_camera_sub_last_packet_age_seconds{camera="CAM-DUAL"' not in metrics  # no packet ever

        with serve(env.client.app) as url:
            ctx, page = logged_in(browser, url, "ops")  # the operator of the north, where CLINIC-A is
            page.goto(f"{url}/cameras")
            row = page.locator("#cameras tr[data-camera=CAM-DUAL]")
            status = row.locator("td").nth(2)
            assert "主码流：" in status.inner_text() and "在线" in status.inner_text()
            line = row.locator(".sub-stream")
            assert line.get_attribute("data-sub-state") in ("offline", "connecting")
            text = line.inner_text()
            assert text.startswith("子码流：") and ("未连接" in text or "重连中" in text or "连接中" in text), text
            assert "尚无录像" in text
            only_main = page.locator("#cameras tr[data-camera=CAM-MAIN]")
            assert only_main.locator(".sub-stream").count() == 0 and "主码流" not in only_main.inner_text()
            assert not _leftovers(page.locator("#cameras").inner_text(), {"CAM-DUAL", "CAM-MAIN", "Clinic A"})  # ids and the org name are data
            ctx.close()
    finally:
        rec.stop(grace_s=5)
        env.client.__exit__(None, None, None)
        env.rt.close()
