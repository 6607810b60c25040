"""Camera clocks (issue 18): a camera whose clock jumps by +/-30 s (an NTP sync) while it streams
leaves one continuous recording (no false gap, no overlapping segments, no frame lost), and camera
health shows the camera's clock offset from the receive clock, with an alert over the threshold."""
from __future__ import annotations

import re
import time

import pytest

from camsim.footage import scenario_short
from ingest.health import camera_health
from ingest.recorder import Recorder
from storage.db import session_scope
from storage.objects import ObjectStore
from tests.ingest.conftest import TEST_FOOTAGE
from tests.ingest.conftest_recorder import (  # noqa: F401  (fixtures)
    assert_back_to_back,
    connection_runs,
    footage_frame_hashes,
    global_frame,
    rec_env,
    segment_frames,
    ts,
    unwrap_frames,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_a_jumping_camera_clock_leaves_no_gap_overlap_or_lost_frame(rec_env, tmp_path, camera_factory,
                                                                   render_footage):
    footage = render_footage(scenario_short(), **TEST_FOOTAGE, bframes=2)
    hashes = footage_frame_hashes(footage)
    n, fps = footage.n_frames, footage.fps
    # its clock jumps 30 s ahead, back, and ahead again: it ends 30 s ahead of the receive clock
    cam = camera_factory(footage, wait_readable=False, clock_jumps=[(10, 30), (16, -30), (22, 30)])
    t_start = time.time()
    env = rec_env(f"sqlite:///{tmp_path / 'index.db'}", segment_seconds=10)
    env.add_camera("cam-j", cam.url)
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: (s := env.status("cam-j")) and s.state == "online", 30, what="online")
        offset_before = wait_for(lambda: (s := env.status("cam-j")) and s.clock_offset_s is not None and s, 15,
                                 what="a clock offset").clock_offset_s
        time.sleep(max(0.0, t_start + 26 - time.time()))
        st = wait_for(lambda: (s := env.status("cam-j")) and s.clock_jumps == 3 and s, 10, what="three jumps")
    finally:
        rec.stop()
    assert "clock jumps by +30.0 s" in cam.log_tail()
    segs = env.segments("cam-j")
    assert len(segs) >= 2
    assert env.gaps("cam-j") == []  # no false gap
    assert len(connection_runs(segs)) == 1  # back to back: no hole, no overlap
    store, bucket = ObjectStore.from_settings(env.settings), env.settings.bucket_footage
    frames = [f for seg in segs for f in segment_frames(store, bucket, seg, hashes)]
    seq = unwrap_frames(frames, n)
    missing = sorted(set(range(seq[0], seq[-1])) - set(seq))
    assert all(m > seq[-1] - 3 for m in missing), missing  # none lost at the jumps
    for seg in segs:  # footage times follow the receive clock, not the camera's jumps
        first = segment_frames(store, bucket, seg, hashes)[0]
        g = global_frame(first, ts(seg.start_at), cam, fps, n)
        assert abs(cam.epoch + g / fps - ts(seg.start_at)) < 0.5, seg.object_key
    # the camera's clock as health shows it: right at first, 30 s ahead at the end, alerting
    assert abs(offset_before) < 1.0, offset_before
    assert abs(st.clock_offset_s - 30.0) < 1.0, st.clock_offset_s
    with session_scope(env.sessions) as db:
        h = camera_health(db, "cam-j", segs[0].start_at, segs[-1].end_at, offline_after_s=60)
    assert h["gaps"] == [] and h["clock_jumps"] == 3
    assert abs(h["clock_offset_s"] - 30.0) < 1.0
    assert re.fullmatch(r"camera clock \+(29|30)\.\d s off", h["clock_alert"] or "") and h["alert"] is None


def test_a_camera_clock_jumping_a_few_seconds_leaves_no_gap_or_overlap(rec_env, tmp_path, camera_factory,
                                                                      render_footage):
    """Jumps of a few seconds are below the stall threshold (3 s): a step of the timestamps that size
    used to stay inside the segment (footage stretched or folded by the jump) and the next segment
    re-anchored onto the receive clock, overlapping the last one or leaving a hole between them."""
    by = 2.0  # ahead, back, ahead: it ends 2 s ahead of the receive clock
    footage = render_footage(scenario_short(), **TEST_FOOTAGE, bframes=2)
    hashes = footage_frame_hashes(footage)
    n, fps = footage.n_frames, footage.fps
    cam = camera_factory(footage, wait_readable=False, clock_jumps=[(8, by), (14, -by), (20, by)])
    t_start = time.time()
    env = rec_env(f"sqlite:///{tmp_path / 'index.db'}", segment_seconds=10)
    env.add_camera("cam-s", cam.url)
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: (s := env.status("cam-s")) and s.state == "online", 30, what="online")
        time.sleep(max(0.0, t_start + 34 - time.time()))
        st = wait_for(lambda: (s := env.status("cam-s")) and s.clock_jumps == 3 and s, 10, what="three jumps")
    finally:
        rec.stop()
    assert f"clock jumps by {by:+.1f} s" in cam.log_tail()
    segs = env.segments("cam-s")
    assert len(segs) >= 3
    assert env.gaps("cam-s") == []  # no false gap
    assert len(connection_runs(segs)) == 1  # back to back: no hole, no overlap
    store, bucket = ObjectStore.from_settings(env.settings), env.settings.bucket_footage
    frames = [f for seg in segs for f in segment_frames(store, bucket, seg, hashes)]
    seq = unwrap_frames(frames, n)
    missing = sorted(set(range(seq[0], seq[-1])) - set(seq))
    assert all(m > seq[-1] - 3 for m in missing), missing  # none lost at the jumps
    assert len(set(seq)) == len(seq)  # and none twice (a backward jump folded onto earlier footage)
    for seg in segs:  # footage times follow the receive clock, not the camera's jumps
        seg_frames = segment_frames(store, bucket, seg, hashes)
        first, last = seg_frames[0], seg_frames[-1]
        g = global_frame(first, ts(seg.start_at), cam, fps, n)
        assert abs(cam.epoch + g / fps - ts(seg.start_at)) < 0.5, seg.object_key
        g_last = global_frame(last, ts(seg.end_at), cam, fps, n)
        assert abs(cam.epoch + (g_last + 1) / fps - ts(seg.end_at)) < 0.5, seg.object_key
    assert abs(st.clock_offset_s - by) < 0.5, st.clock_offset_s
