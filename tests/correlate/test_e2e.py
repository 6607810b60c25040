"""End to end, in real time: a simulated RTSP camera -> `dualcheck record`'s Recorder -> segments in
SeaweedFS -> settlements posted (before their footage exists) -> the in-process worker waits for the
footage and checks -> flags with levels, evidence and holds. Short windows (8 s before, 2 s after)
keep it to about a minute and a half."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from camsim.footage import Event
from correlate.jobs import InProcessWorker
from storage.db import session_scope
from storage.models import EvidenceHold, Settlement
from tests.correlate import scenarios as sc
from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.ingest.conftest_recorder import FAST

LOOP = [Event(0, 12, "face", {"image": sc.INSURED}), Event(12, 24, "empty"),
        Event(24, 36, "face", {"image": sc.OTHER}), Event(36, 48, "back_turned")]
EXPECT = ["verified_present", "ghost_visit", "impersonation", "inconclusive"]
BEFORE, AFTER = 8.0, 2.0


@pytest.mark.slow
def test_rtsp_recorder_import_jobs_flags(make_settings, shared_pipeline, testdata, tmp_path, camera_factory,
                                         render_footage):
    from api.keys import add_service_key
    from ingest.cameras import add_camera
    from ingest.recorder import Recorder
    from tests.api.conftest import start_env

    settings = make_settings(
        f"sqlite:///{tmp_path / 'e2e.db'}", **FAST, spool_dir=tmp_path / "spool",
        correlate_window_s={"default": (BEFORE, AFTER)}, correlate_footage_grace_s=25.0,
        correlate_footage_max_wait_s=120.0, correlate_recheck_s=1.0, correlate_job_poll_s=0.5)
    footage = render_footage(LOOP, cache_dir=sc.cache_dir(), **sc.SIZE)
    cam = camera_factory(footage)
    env = start_env(settings, shared_pipeline)
    rt = env.rt
    with session_scope(rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        add_camera(db, camera_id="CAM-E", org_id="CLINIC-A", name="counter 9", role="settlement_counter",
                   url=cam.url, covers=["counter-9"], box=rt.credentials)
        sc.enroll(db, shared_pipeline, testdata, "P-OBAMA")
    rec = Recorder(settings).start()
    worker = InProcessWorker(rt.checker)
    worker.start()
    try:
        t0 = time.time() + 3.0  # recording has started by then
        base = t0 - cam.footage_time(t0)
        times = []
        for e in LOOP:  # the next wall time whose whole window shows this scene (0.5 s margin)
            start = base + e.start_s + 0.5
            if start < t0:
                start += cam.loop_duration_s
            times.append(start + BEFORE)
        rows = [sc.settlement(f"E-{i}", "P-OBAMA", "CLINIC-A", datetime.fromtimestamp(t, timezone.utc),
                              counter="counter-9") for i, t in enumerate(times)]
        # the camera goes off for a while after the last of those windows
        off_at = max(times) + AFTER + 4.0
        rows.append(sc.settlement("E-off", "P-OBAMA", "CLINIC-A",
                                  datetime.fromtimestamp(off_at + 2 + BEFORE, timezone.utc), counter="counter-9"))
        r = env.client.post("/v1/settlements", json=rows, headers=env.h("ingest"))
        assert r.status_code == 200, r.text
        time.sleep(max(0.0, off_at - time.time()))
        cam.stop()
        time.sleep(2 + BEFORE + AFTER + 6)
        cam.start()

        def states():
            with session_scope(rt.sessions) as db:
                return {s.id: (s.status, s.outcome) for s in db.scalars(select(Settlement))}

        deadline = time.time() + 120
        while time.time() < deadline and any(st != "done" for st, _ in states().values()):
            time.sleep(1.0)
        got = states()
    finally:
        worker.stop()
        rec.stop(grace_s=5)
    for i, want in enumerate(EXPECT):
        assert got[f"E-{i}"] == ("done", want), (i, got)
    assert got["E-off"] == ("done", "footage_missing"), got
    flags = {f["settlement_id"]: f for f in env.client.get("/v1/flags", headers=env.h("admin")).json()["flags"]
             if f["rule"] in ("ghost_visit", "impersonation", "inconclusive", "footage_missing")}
    assert {k: (v["type"], v["level"]) for k, v in flags.items()} == {
        "E-1": ("ghost_visit", 4), "E-2": ("impersonation", 4), "E-3": ("inconclusive", 1),
        "E-off": ("footage_missing", 2)}
    imp = flags["E-2"]
    assert imp["evidence"]["faces"][0]["insured_score"] < imp["evidence"]["threshold"]
    assert env.client.get(imp["evidence"]["faces"][0]["crop_url"], headers=env.h("admin")).status_code == 200
    with session_scope(rt.sessions) as db:
        held = {h.flag_id for h in db.scalars(select(EvidenceHold).where(EvidenceHold.camera_id == "CAM-E"))}
    assert {f["id"] for f in flags.values()} <= held
    env.client.__exit__(None, None, None)
    rt.close()
