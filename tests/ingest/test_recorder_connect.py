"""Nothing lost at connect (issue 18): a camera that starts each viewer at a key frame and sends
B-frames (H.264 main profile, and H.265), numbered frames (the on-screen clock makes every frame of the
loop distinct), recorded through a camera drop and a reconnect. Every frame the camera sent from the
key frame it started the recorder's connection at must be in the footage, in order, and every hole
of the index must be a recorded gap."""
from __future__ import annotations

import hashlib
import io
import time

import av
import pytest

from camsim.footage import scenario_short
from correlate.footage import sample_frames
from ingest.health import camera_health
from ingest.recorder import Recorder
from storage.db import session_scope
from storage.objects import ObjectStore
from tests.ingest.conftest import TEST_FOOTAGE
from tests.ingest.conftest_recorder import (  # noqa: F401  (fixtures)
    connection_runs,
    footage_frame_hashes,
    global_frame,
    rec_env,
    segment_frames,
    ts,
    unwrap_frames,
    viewer_starts,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_b_frames_record_from_the_first_key_frame_through_a_drop(rec_env, tmp_path, camera_factory,
                                                                 render_footage, codec):
    footage = render_footage(scenario_short(), **TEST_FOOTAGE, codec=codec, bframes=2)
    assert any(footage.frame_delays()), "the footage has B-frames"
    hashes = footage_frame_hashes(footage)
    n, fps = footage.n_frames, footage.fps
    assert len(set(hashes.values())) == n  # every frame of the loop is distinct: frames are numbered
    # no probing viewer: the recorder is the camera's only viewer, started at a key frame each time
    cam = camera_factory(footage, wait_readable=False)
    env = rec_env(f"sqlite:///{tmp_path / 'index.db'}")
    env.add_camera("cam-b", cam.url)
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: (s := env.status("cam-b")) and s.state == "online", 30, what="online")
        time.sleep(4)
        cam.stop()
        wait_for(lambda: (s := env.status("cam-b")) and s.state == "offline", 15, what="offline")
        time.sleep(2)
        cam.start()
        wait_for(lambda: (s := env.status("cam-b")) and s.state == "online" and s.reconnects >= 1, 20,
                 what="online again")
        time.sleep(5)
    finally:
        rec.stop()
    starts = viewer_starts(cam)
    assert len(starts) == 2, starts  # one viewer per connection
    segs = env.segments("cam-b")
    gaps = env.gaps("cam-b")
    assert [g.reason for g in gaps] == ["camera_offline"]
    store = ObjectStore.from_settings(env.settings)
    bucket = env.settings.bucket_footage
    runs = connection_runs(segs)
    assert len(runs) == 2, [(s.start_at, s.end_at) for s in segs]
    assert runs[0][-1].end_at == gaps[0].start_at and runs[1][0].start_at == gaps[0].end_at
    for run in runs:
        frames = [f for seg in run for f in segment_frames(store, bucket, seg, hashes)]
        seq = unwrap_frames(frames, n)
        # in order, none missing: each frame follows the one before, except at the very end where the
        # camera went away (or the recorder stopped) between a P-frame and the B-frames shown before
        # it, which come after it and were never sent
        missing = sorted(set(range(seq[0], seq[-1])) - set(seq))
        assert all(m > seq[-1] - 3 for m in missing), (missing, seq[-1])
        assert seq == sorted(seq)
        # the connection's first frame is the key frame the camera started this viewer at
        first = global_frame(frames[0], ts(run[0].start_at), cam, fps, n)
        assert first == starts[runs.index(run)], (first, starts)
        # and the index says what the files hold: the segments last from the first frame to the last
        dur = ts(run[-1].end_at) - ts(run[0].start_at)
        assert abs((seq[-1] - seq[0] + 1) / fps - dur) <= 0.5 / fps, (seq[0], seq[-1], dur)
        for seg in run[:-1]:  # every segment but the one cut by the drop or the stop holds all its frames
            got = len(segment_frames(store, bucket, seg, hashes))
            assert abs(got / fps - (ts(seg.end_at) - ts(seg.start_at))) <= 0.5 / fps, (seg.object_key, got)
    with session_scope(env.sessions) as db:
        h = camera_health(db, "cam-b", segs[0].start_at, segs[-1].end_at, offline_after_s=30)
    assert [g["reason"] for g in h["gaps"]] == ["camera_offline"]
    # recorded as received (no transcoding), tagged as browsers and players expect
    data = store.get_bytes(bucket, segs[0].object_key)
    with av.open(io.BytesIO(data)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.codec_tag) == (("hevc", "hvc1") if codec == "h265" else ("h264", "avc1"))
    # the correlation checks read it: one frame a second, each the camera's frame shown at that time
    frames = sample_frames(store, bucket, "cam-b", runs[1], runs[1][0].start_at, runs[1][-1].end_at, 1.0)
    assert len(frames) >= int(ts(runs[1][-1].end_at) - ts(runs[1][0].start_at)) - 1
    t0 = ts(runs[1][0].start_at)
    g0 = global_frame(segment_frames(store, bucket, runs[1][0], hashes)[0], t0, cam, fps, n)
    for fr in frames:  # at the time the index gives it, to the millisecond (B-frames or not)
        g = global_frame(hashes[hashlib.sha1(fr.image.tobytes()).hexdigest()], ts(fr.at), cam, fps, n)
        assert abs((g - g0) / fps - (ts(fr.at) - t0)) < 0.002, (fr.at, g - g0)
