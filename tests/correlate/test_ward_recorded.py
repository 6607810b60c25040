"""A ward check on footage recorded live: the GStreamer test camera serves the ward at night (infrared) — the
empty ward, then the patients in bed but bed 02 empty — `dualcheck record`'s Recorder records it into
SeaweedFS, the operator takes the night empty pictures from the recording, and the check of the recorded
moment finds bed 02 absent and bed 03 (asleep facing the wall) present. The multi-day rule runs on
segments written at the check times (test_ward_checks.py); this test shows the same check on the
recorder's own segments."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import select

from camsim.ward import Moment, region, render_ward
from correlate import rulebook
from correlate.ward_checks import WardChecker
from storage.clips import segments_in
from storage.db import session_scope
from storage.models import ClaimAdmission, WardBed
from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.ingest.conftest_recorder import FAST

ORG, CAM = "CLINIC-A", "CAM-WR"
NIGHT = Moment(beds=(("01", "obama", "front"), ("03", "bald_03", "away"), ("04", "t1_2", "front")), light="night",
               turned_back=("02",))
NO_TEMPLATES = np.zeros((0, 0), np.float32)  # these patients have no enrolled photo: occupancy alone decides


@pytest.mark.slow
def test_a_night_check_on_recorded_footage(make_settings, shared_pipeline, tmp_path, camera_factory):
    from api.keys import add_service_key
    from ingest.cameras import add_camera
    from ingest.recorder import Recorder
    from tests.api.conftest import start_env

    settings = make_settings(f"sqlite:///{tmp_path / 'ward.db'}", **FAST, spool_dir=tmp_path / "spool")
    footage = render_ward([Moment(light="night"), NIGHT])  # 8 s empty, 8 s with the patients; looped
    cam = camera_factory(footage)
    env = start_env(settings, shared_pipeline)
    rt = env.rt
    with session_scope(rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        add_camera(db, camera_id=CAM, org_id=ORG, name="病区夜间", role="ward", url=cam.url, box=rt.credentials)
    rec = Recorder(settings).start()
    try:
        t0 = time.time() + 3.0
        base = t0 - cam.footage_time(t0)
        loop = cam.loop_duration_s
        k = 0
        while base + k * loop + 1.0 < t0:
            k += 1
        empty_at, occupied_at = base + k * loop + 4.0, base + k * loop + 12.0
        want_until = datetime.fromtimestamp(occupied_at + 4.0, timezone.utc)
        deadline = time.time() + 90
        while time.time() < deadline:
            with session_scope(rt.sessions) as db:
                segs = segments_in(db, CAM, want_until - timedelta(seconds=20), want_until)
                if segs and max(s.end_at for s in segs) >= want_until:
                    break
            time.sleep(1.0)
        else:
            pytest.fail("the recorder did not record the moments in time")
    finally:
        rec.stop(grace_s=5)
        cam.stop()
    h = env.h("admin")
    ids = {}
    for bed in ("02", "03"):
        r = env.client.put("/v1/beds", json={"org_id": ORG, "bed": bed, "camera_id": CAM, "region": region(bed)},
                           headers=h)
        assert r.status_code == 200, r.text
        ids[bed] = r.json()["id"]
        r = env.client.put(f"/v1/beds/{ids[bed]}/reference",
                           json={"at": datetime.fromtimestamp(empty_at, timezone.utc).isoformat()}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["reference"]["night"] is not None and r.json()["reference"]["day"] is None  # infrared seen
    msgs = [{"infno": "2401", "fixmedins_code": ORG, "input": {"mdtrtinfo": {
        "mdtrt_id": f"M-{b}", "psn_no": f"P-{b}", "begntime": "2026-01-01 07:00:00", "wardarea_bed": b}}}
        for b in ("02", "03")]
    assert env.client.post("/v1/claims", json=msgs, headers=h).status_code == 200
    checker = WardChecker(settings=settings, store=rt.store, pipeline=shared_pipeline, legal=rt.legal_holds)
    at = datetime.fromtimestamp(occupied_at, timezone.utc)
    with session_scope(rt.sessions) as db:
        th = rulebook.current(db, "bed_hanging", settings).thresholds
        out = {}
        for b in ("02", "03"):
            adm = db.scalar(select(ClaimAdmission).where(ClaimAdmission.mdtrt_id == f"M-{b}"))
            bed = db.get(WardBed, ids[b])
            row = checker.check_one(db, adm, bed, "2026-01-02", "22:00", at, th, NO_TEMPLATES,
                                    checker._pictures(bed))
            out[b] = (row.outcome, row.why, row.light)
    assert out == {"02": ("absent", "bed_empty", "night"), "03": ("present", "occupied", "night")}, out
    env.client.__exit__(None, None, None)
    rt.close()
