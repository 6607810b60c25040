"""Main and sub-stream (issue 18), end to end in real time: a GStreamer camera serving the same scene
on its main stream (1280x720) and its sub-stream (640x360); one registry camera records the main
stream only, another records both and has the checks read the sub-stream. Settlements at the same
moments on both come out the same, the second one's checks read the sub-stream's segments, and replay
stays on the main stream."""
from __future__ import annotations

import io
import time
from datetime import datetime, timezone

import av
import pytest
from sqlalchemy import select

from camsim.footage import Event
from correlate.jobs import InProcessWorker
from storage.db import session_scope
from storage.models import Segment, Settlement, SettlementCheck
from storage.objects import ObjectStore
from tests.correlate import scenarios as sc
from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    camera_factory,
    gst_server_available,
    render_footage,
    sim_footage,
    sim_footage_cache,
)
from tests.ingest.conftest_recorder import FAST, connection_runs

LOOP = [Event(0, 12, "face", {"image": sc.INSURED}), Event(12, 24, "empty"),
        Event(24, 36, "face", {"image": sc.OTHER})]
EXPECT = ["verified_present", "ghost_visit", "impersonation"]
BEFORE, AFTER = 8.0, 2.0
MAIN = dict(sc.SIZE, width=1280, height=720, bitrate=1_500_000)
SUB = sc.SIZE  # the size the checks are calibrated on


def _size(store, bucket: str, seg: Segment) -> tuple[int, int]:
    with av.open(io.BytesIO(store.get_bytes(bucket, seg.object_key))) as c:
        st = c.streams.video[0]
        return st.codec_context.width, st.codec_context.height


@pytest.mark.slow
def test_checks_read_the_sub_stream_and_decide_as_on_the_main_one(make_settings, shared_pipeline, testdata, tmp_path,
                                                                  camera_factory, render_footage):
    from api.keys import add_service_key
    from ingest.cameras import add_camera
    from ingest.recorder import Recorder
    from tests.api.conftest import start_env

    settings = make_settings(
        f"sqlite:///{tmp_path / 'sub.db'}", **FAST, spool_dir=tmp_path / "spool",
        correlate_window_s={"default": (BEFORE, AFTER)}, correlate_footage_grace_s=25.0,
        correlate_footage_max_wait_s=120.0, correlate_recheck_s=1.0, correlate_job_poll_s=0.5)
    main = render_footage(LOOP, cache_dir=sc.cache_dir(), **MAIN)
    sub = render_footage(LOOP, cache_dir=sc.cache_dir(), **SUB)
    cam = camera_factory(main, sub_footage=sub)
    assert cam.sub_url and cam.sub_url != cam.url
    env = start_env(settings, shared_pipeline)
    rt = env.rt
    with session_scope(rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        add_camera(db, camera_id="CAM-M", org_id="CLINIC-A", name="counter 8", role="settlement_counter",
                   url=cam.url, covers=["counter-8"], box=rt.credentials)
        add_camera(db, camera_id="CAM-S", org_id="CLINIC-A", name="counter 9", role="settlement_counter",
                   url=cam.url, sub_url=cam.sub_url, record_streams="both", analyse_stream="sub",
                   covers=["counter-9"], box=rt.credentials)
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
        rows = [sc.settlement(f"{c}-{i}", "P-OBAMA", "CLINIC-A", datetime.fromtimestamp(t, timezone.utc),
                              counter=f"counter-{c}") for i, t in enumerate(times) for c in (8, 9)]
        r = env.client.post("/v1/settlements", json=rows, headers=env.h("ingest"))
        assert r.status_code == 200, r.text

        def states():
            with session_scope(rt.sessions) as db:
                return {s.id: (s.status, s.outcome) for s in db.scalars(select(Settlement))}

        deadline = max(times) + AFTER + 120
        while time.time() < deadline and any(st != "done" for st, _ in states().values()):
            time.sleep(1.0)
        got = states()
        # a clip of the camera recording both streams is the main stream's footage
        a = datetime.fromtimestamp(times[0] - BEFORE, timezone.utc)
        clip = env.client.get("/v1/cameras/CAM-S/clip", params={"start": a.isoformat(),
                              "end": datetime.fromtimestamp(times[0], timezone.utc).isoformat()},
                              headers=env.h("admin"))
    finally:
        worker.stop()
        rec.stop(grace_s=5)
    with session_scope(rt.sessions) as db:
        why = {c.settlement_id: (c.reason, c.cameras, c.summary) for c in db.scalars(select(SettlementCheck))}
    for i, want in enumerate(EXPECT):
        assert got[f"8-{i}"] == ("done", want), (i, got, why)
        assert got[f"9-{i}"] == ("done", want), (i, got, why)  # the same decision on the sub-stream
    with session_scope(rt.sessions) as db:
        checks = {c.settlement_id: c for c in db.scalars(select(SettlementCheck))}
        assert all(checks[f"8-{i}"].cameras[0]["stream"] == "main" for i in range(len(EXPECT)))
        assert all(checks[f"9-{i}"].cameras[0]["stream"] == "sub" for i in range(len(EXPECT)))
        segs = {s: list(db.scalars(select(Segment).where(Segment.camera_id == "CAM-S", Segment.stream == s)
                                   .order_by(Segment.start_at))) for s in ("main", "sub")}
        only_main = list(db.scalars(select(Segment).where(Segment.camera_id == "CAM-M")))
    assert {s.stream for s in only_main} == {"main"}
    store, bucket = ObjectStore.from_settings(settings), settings.bucket_footage
    for stream, size in (("main", (1280, 720)), ("sub", (640, 360))):
        assert len(segs[stream]) >= 3, stream
        assert len(connection_runs(segs[stream])) == 1, stream  # continuous, back to back
        assert _size(store, bucket, segs[stream][0]) == size
    assert all(s.object_key.endswith(".sub.mp4") for s in segs["sub"])
    # the sub-stream is the smaller recording (what it saves: docs/benchmarks.md)
    assert sum(s.bytes for s in segs["sub"]) < sum(s.bytes for s in segs["main"])
    assert clip.status_code == 200, clip.text
    with av.open(io.BytesIO(clip.content)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (1280, 720)
    env.client.__exit__(None, None, None)
    rt.close()
