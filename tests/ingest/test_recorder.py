"""The recorder against the real RTSP simulator, SeaweedFS and the index: footage indexed, playable,
at the right wall-clock second, back to back; credentials never leak; sharding; registry changes."""
from __future__ import annotations

import logging
import re
import time

import pytest

from ingest.health import camera_health
from ingest.recorder import Recorder
from ingest.sharding import Shard, parse_shard, shard_of
from storage.db import session_scope
from storage.objects import ObjectStore
from tests.ingest.conftest_recorder import (  # noqa: F401  (fixtures)
    assert_back_to_back,
    footage_frame_hashes,
    open_segment,
    placement_errors,
    rec_env,
    ts,
    wait_for,
)

KEY_RE = re.compile(r"^org1/cam-a/\d{4}/\d{2}/\d{2}/\d{2}/\d{8}T\d{6}\.\d{3}Z\.mp4$")
PASSWORD = "s3cr3t-Pa55word"


def test_records_indexed_playable_segments_at_the_right_time(rec_env, db_url, camera_factory, sim_footage,
                                                             caplog, capfd):
    caplog.set_level(logging.DEBUG)
    cam = camera_factory(user="viewer", password=PASSWORD)
    env = rec_env(db_url)
    env.add_camera("cam-a", cam.url)  # credentials in the URL: the registry stores them apart
    env.add_camera("cam-bad", cam.url_without_credentials, username="viewer", password=PASSWORD + "-wrong")
    store = ObjectStore.from_settings(env.settings)
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: len(env.segments("cam-a")) >= 2, 60, what="two indexed segments")
        st = env.status("cam-a")
        assert st.state == "online" and st.last_packet_at is not None
        bad = wait_for(lambda: (s := env.status("cam-bad")) and s.error and s, 20, what="status of cam-bad")
        assert bad.state == "offline" and bad.reconnects >= 1
        assert "401" in bad.error, bad.error  # the operator sees why, without the password
    finally:
        rec.stop()
    segs = env.segments("cam-a")
    assert len(segs) >= 3  # two full ones and the one closed at stop
    assert_back_to_back(segs)
    hashes = footage_frame_hashes(sim_footage)
    fps = sim_footage.fps
    for i, seg in enumerate(segs):
        assert KEY_RE.match(seg.object_key), seg.object_key
        assert seg.start_at.strftime("%Y%m%dT%H%M%S") in seg.object_key
        assert seg.recorder_id == rec.recorder_id and seg.org_id == "org1"
        got = open_segment(store, env.settings.bucket_footage, seg)
        assert got["pts"][0] == 0 and got["keys"][0], "a segment starts at a keyframe with pts 0"
        assert got["width"] == 640
        assert got["decoded"] == len(got["pts"])
        if i < len(segs) - 1:  # cut at the first keyframe (every 2 s) after 10 s
            assert 10.0 <= seg.duration_s < 12.5
            assert abs(len(got["pts"]) - seg.duration_s * fps) <= 1
        assert abs(got["end_s"] - seg.duration_s) < 0.05
        # the wall time of a frame is start_at + pts * time_base: check it against the simulator's truth
        for n, err in placement_errors(got, seg, cam, sim_footage, hashes):
            assert abs(err) < 0.25, f"frame {n} placed {err:+.3f} s off its true wall-clock time"
    # health: recorded now, no gaps inside what was recorded
    with session_scope(env.sessions) as db:
        h = camera_health(db, "cam-a", segs[0].start_at, segs[-1].end_at, offline_after_s=30)
    assert h["gaps"] == [] and h["coverage"] > 0.99
    assert h["last_segment_end"] == segs[-1].end_at.isoformat()
    # the password never appears: not in logs, not on stderr/stdout (FFmpeg), not in status errors
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err, bad.error, env.status("cam-a").error or ""):
        assert PASSWORD not in text
    assert "rtsp://127.0.0.1" in caplog.text  # the camera is named in logs, without credentials


def test_shards_split_cameras_without_overlap_or_gap():
    ids = [f"cam-{i:04d}" for i in range(1000)]
    for n in (1, 2, 3, 7):
        owners = [[i for i in range(n) if Shard(i, n).owns(c)] for c in ids]
        assert all(len(o) == 1 for o in owners)
        counts = [sum(1 for o in owners if o[0] == i) for i in range(n)]
        assert min(counts) > 1000 / n * 0.8  # roughly even
    assert shard_of("cam-0001", 3) == shard_of("cam-0001", 3)  # stable (not Python's salted hash)
    assert parse_shard("1/3") == Shard(1, 3) and parse_shard(None) == Shard(0, 1)
    for bad in ("3/3", "x", "-1/2", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_picks_up_added_and_removed_cameras_without_restart(rec_env, tmp_path, camera_factory):
    cam = camera_factory()
    env = rec_env(f"sqlite:///{tmp_path / 'idx.db'}")
    # a shard of two: only cameras whose id hashes to shard 0 are recorded by this replica
    mine = next(f"c{i}" for i in range(100) if shard_of(f"c{i}", 2) == 0)
    other = next(f"c{i}" for i in range(100) if shard_of(f"c{i}", 2) == 1)
    rec = Recorder(env.settings, Shard(0, 2)).start()
    try:
        time.sleep(1.5)
        env.add_camera(mine, cam.url)
        env.add_camera(other, cam.url)
        wait_for(lambda: env.segments(mine), 40, what="the added camera recorded")
        env.remove_camera(mine)
        wait_for(lambda: mine not in rec.cameras, 10, what="the removed camera dropped")
        n = len(env.segments(mine))
        time.sleep(3)
        assert mine not in rec.cameras
    finally:
        rec.stop()
    assert len(env.segments(mine)) <= n + 1  # at most the segment closed when it was removed
    assert env.segments(other) == [] and env.status(other) is None
