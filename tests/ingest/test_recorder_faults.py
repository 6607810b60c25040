"""Faults, each against the real parts: a camera that goes away, an object store that goes down (and a
spool that fills), a recorder killed with SIGKILL, a database that becomes unreachable."""
from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.health import camera_health
from ingest.recorder import Recorder
from storage.db import session_scope
from storage.objects import ObjectStore
from tests.conftest import (
    PG_ADMIN_URL,
    _create_pg_database,
    _drop_pg_database,
    _port_base,
)
from tests.ingest.conftest_recorder import (  # noqa: F401  (fixtures)
    assert_back_to_back,
    footage_frame_hashes,
    open_segment,
    placement_errors,
    process_env,
    rec_env,
    spool_files,
    ts,
    wait_for,
)

KEYINT_S = 2.0  # the test footage has a keyframe every 2 s: a fragment per keyframe


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'index.db'}"


def test_camera_goes_away_and_comes_back(rec_env, sqlite_url, camera_factory):
    cam = camera_factory()
    env = rec_env(sqlite_url)
    env.add_camera("cam-a", cam.url)
    rec = Recorder(env.settings).start()
    seen = []
    try:
        wait_for(lambda: (s := env.status("cam-a")) and s.state == "online", 30, what="online")
        time.sleep(3)
        t_down = time.time()
        cam.stop()
        wait_for(lambda: (s := env.status("cam-a")) and s.state == "offline" and seen.append(s.state) is None,
                 15, what="offline status")
        assert env.status("cam-a").error  # why it is offline
        time.sleep(4)
        t_back = time.time()
        cam.start()  # returns once the stream is readable
        t_up = time.time()
        st = wait_for(lambda: (s := env.status("cam-a")) and s.state == "online" and s, 20, what="online again")
        assert st.reconnects >= 1
        time.sleep(4)
    finally:
        rec.stop()
    gaps = env.gaps("cam-a")
    assert [g.reason for g in gaps] == ["camera_offline"]
    g = gaps[0]
    assert g.end_at is not None and g.detail
    assert t_down - 1.0 <= ts(g.start_at) <= t_down + 0.5  # the last footage before the camera went
    assert t_back <= ts(g.end_at) <= t_up + 4.0  # backoff (<= 2 s) + connect
    assert ts(g.end_at) - ts(g.start_at) >= 4.0
    segs = env.segments("cam-a")
    before = [s for s in segs if s.end_at <= g.start_at]
    after = [s for s in segs if s.start_at >= g.end_at]
    assert before and after and len(before) + len(after) == len(segs)
    assert before[-1].end_at == g.start_at and after[0].start_at == g.end_at
    assert_back_to_back(before)
    assert_back_to_back(after)
    store = ObjectStore.from_settings(env.settings)
    assert open_segment(store, env.settings.bucket_footage, after[0])["decoded"] > 25
    with session_scope(env.sessions) as db:
        h = camera_health(db, "cam-a", segs[0].start_at, segs[-1].end_at, offline_after_s=30)
    assert len(h["gaps"]) == 1 and h["gaps"][0]["reason"] == "camera_offline"
    assert abs(h["gaps"][0]["duration_s"] - (ts(g.end_at) - ts(g.start_at))) < 0.01


@pytest.fixture
def own_seaweed(tmp_path):
    """A SeaweedFS only this test uses, so that it can be taken down."""
    from storage.seaweed import LocalSeaweed

    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp_path / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="t" + secrets.token_hex(4),
                      secret_key=secrets.token_urlsafe(24))
    sw.up()
    yield sw
    sw.down()


def test_store_down_spools_in_order_and_stops_when_full(rec_env, sqlite_url, camera_factory, own_seaweed, tmp_path):
    cam = camera_factory()
    limit = 2_600_000  # ~2.5 segments of 10 s at 800 kbit/s
    env = rec_env(sqlite_url, s3_endpoint=own_seaweed.endpoint, s3_access_key=own_seaweed.access_key,
                  s3_secret_key=own_seaweed.secret_key, spool_max_bytes=limit, spool_alert_ratio=0.6)
    env.add_camera("cam-a", cam.url)
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: env.segments("cam-a"), 40, what="first segment")
        indexed_before = len(env.segments("cam-a"))
        own_seaweed.down()
        # alert first (>= 60 %), then full: recording stops with a spool_full gap, nothing is dropped
        st = wait_for(lambda: (s := env.status("cam-a")) and s.error and "spool" in s.error and s, 40,
                      what="spool alert")
        assert st.spool_bytes >= 0.6 * limit and st.spool_limit_bytes == limit
        wait_for(lambda: any(g.reason == "spool_full" for g in env.gaps("cam-a")), 40, what="spool_full gap")
        full = env.status("cam-a")
        assert full.spool_bytes >= limit and "full" in full.error
        assert len(env.segments("cam-a")) == indexed_before  # nothing reached the store
        spooled = len([p for p in spool_files(tmp_path / "spool") if p.suffix == ".mp4"])
        assert spooled >= 2
        time.sleep(3)
        own_seaweed.up()
        # everything spooled goes up, in order; then recording resumes and the gap closes
        wait_for(lambda: len(env.segments("cam-a")) >= indexed_before + spooled + 1, 60,
                 what="spooled segments uploaded and recording resumed")
        wait_for(lambda: (s := env.status("cam-a")) and s.spool_bytes < limit * 0.6 and not s.error, 20,
                 what="alert cleared")
    finally:
        rec.stop()
    segs = env.segments("cam-a")
    assert [s.id for s in segs] == sorted(s.id for s in segs), "uploaded and indexed in recording order"
    gap = next(g for g in env.gaps("cam-a") if g.reason == "spool_full")
    assert gap.end_at is not None and gap.end_at > gap.start_at
    before = [s for s in segs if s.end_at <= gap.start_at]
    after = [s for s in segs if s.start_at >= gap.end_at]
    assert len(before) + len(after) == len(segs)
    assert_back_to_back(before)
    assert_back_to_back(after)
    assert before[-1].end_at == gap.start_at and after[0].start_at == gap.end_at
    store = ObjectStore.from_settings(env.settings)
    for s in before[-spooled:]:
        assert open_segment(store, env.settings.bucket_footage, s)["decoded"] >= s.duration_s * 25 - 1
    assert not [p for p in spool_files(tmp_path / "spool") if p.suffix in (".mp4", ".part")]


# --- SIGKILL ------------------------------------------------------------------------------------
@contextmanager
def recorder_process(env, log_path: Path):
    """A `dualcheck record` subprocess on ``env``'s services, its output in ``log_path``; killed if
    the test leaves it running."""
    with open(log_path, "wb") as log:
        p = subprocess.Popen([str(Path(sys.executable).with_name("dualcheck")), "record"],
                             env=process_env(env.settings), stdout=log, stderr=subprocess.STDOUT)
        try:
            yield p
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def stop_cleanly(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    assert p.wait(60) == 0


def test_sigkill_loses_at_most_the_fragment_being_written(rec_env, sqlite_url, camera_factory, tmp_path):
    cam = camera_factory()
    env = rec_env(sqlite_url)
    env.add_camera("cam-a", cam.url)
    with recorder_process(env, tmp_path / "rec1.log") as p1:
        first = wait_for(lambda: env.segments("cam-a"), 60, what="first segment")[0]
        # kill in the middle of the second segment
        while time.time() < ts(first.end_at) + 6.3:
            time.sleep(0.05)
        parts = [p for p in spool_files(tmp_path / "spool") if p.suffix == ".part"]
        kill_at = time.time()
        p1.kill()
        p1.wait()
    assert parts, "a segment was being written when the recorder was killed"
    assert len(env.segments("cam-a")) == 1
    with recorder_process(env, tmp_path / "rec2.log") as p2:
        wait_for(lambda: len(env.segments("cam-a")) >= 3, 60, what="salvaged + new segments")
        stop_cleanly(p2)
    segs = env.segments("cam-a")
    salvaged = segs[1]
    # the killed segment is indexed, back to back with the previous one, up to its last full fragment
    assert salvaged.start_at == first.end_at
    assert kill_at - (KEYINT_S + 0.5) <= ts(salvaged.end_at) <= kill_at
    store = ObjectStore.from_settings(env.settings)
    got = open_segment(store, env.settings.bucket_footage, salvaged)
    assert got["keys"][0] and got["pts"][0] == 0
    assert abs(got["end_s"] - salvaged.duration_s) < 0.05 and got["decoded"] == len(got["pts"])
    # the restarted recorder goes on; nothing indexed twice, every object indexed once
    assert len({s.object_key for s in segs}) == len(segs)
    keys = sorted(store.list_keys(env.settings.bucket_footage))
    assert keys == sorted(s.object_key for s in segs)
    assert segs[2].start_at > salvaged.end_at
    assert not [p for p in spool_files(tmp_path / "spool") if p.suffix in (".mp4", ".part")]
    assert b"s3cr3t" not in (tmp_path / "rec2.log").read_bytes()


# --- database unreachable -----------------------------------------------------------------------
@pytest.fixture
def pg_url():
    url = _create_pg_database()
    yield url
    _admin(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS true')
    _drop_pg_database(url)


def _admin(sql: str) -> None:
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(sql))
    eng.dispose()


@pytest.mark.postgres
def test_database_unreachable_indexing_waits_and_nothing_is_lost(rec_env, pg_url, camera_factory):
    cam = camera_factory()
    env = rec_env(pg_url)
    env.add_camera("cam-a", cam.url)
    name = pg_url.rsplit("/", 1)[1]
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: env.segments("cam-a"), 40, what="first segment")
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        down_at = time.time()
        with pytest.raises(sa.exc.OperationalError):
            env.segments("cam-a")
        time.sleep(24)  # two segments finish while the index is unreachable
        assert rec.uploader.pending() >= 1 and rec.uploader.last_error
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        up_at = time.time()
        wait_for(lambda: (s := env.segments("cam-a")) and ts(s[-1].end_at) > down_at + 20, 40,
                 what="segments of the outage indexed")
        wait_for(lambda: (s := env.status("cam-a")) and ts(s.updated_at) > up_at and s.state == "online", 20,
                 what="status written again")
    finally:
        rec.stop()
    segs = env.segments("cam-a")
    assert_back_to_back(segs)  # no hole: nothing lost
    assert env.gaps("cam-a") == []
    assert len({s.object_key for s in segs}) == len(segs)


def test_a_stalled_camera_is_a_recorded_gap_not_a_silent_hole(rec_env, sqlite_url, camera_factory, render_footage):
    """The camera keeps the connection but sends nothing for 6 s (an encoder stall, a privacy
    shutter): the footage ends at the last frame, the gap is recorded with its times and reason,
    and recording goes on when the video comes back."""
    from camsim.footage import scenario_outage

    footage = render_footage(scenario_outage(), width=320, height=180, fps=25, bitrate=300_000, keyint_s=2.0)
    cam = camera_factory(footage)
    off = [e for e in footage.events if e.kind == "camera_off"][0]
    env = rec_env(sqlite_url)
    env.add_camera("cam-s", cam.url)
    rec = Recorder(env.settings).start()
    try:
        # the first stall that starts after the recorder is online, and footage after it
        wait_for(lambda: (s := env.status("cam-s")) and s.state == "online", 30, what="online")
        online_at = time.time()
        stall_start = cam.next_time_of("camera_off", after=online_at + 1)
        wait_for(lambda: time.time() > stall_start + (off.end_s - off.start_s) + 8, 60, what="stall to pass")
        wait_for(lambda: any(g.end_at is not None for g in env.gaps("cam-s")), 20, what="closed gap")
    finally:
        rec.stop()
    # a first connection that falls inside a stall is refused (camera_offline): only what happens
    # while the camera is recorded is under test here
    gaps = [g for g in env.gaps("cam-s") if g.end_at is not None and ts(g.start_at) > online_at - 0.5]
    assert gaps and {g.reason for g in gaps} == {"camera_stalled"}, [(g.reason, g.detail) for g in gaps]
    g = min(gaps, key=lambda g: abs(ts(g.start_at) - stall_start))
    length = ts(g.end_at) - ts(g.start_at)
    assert abs(ts(g.start_at) - stall_start) < 1.5, "the gap starts where the video stopped"
    segs = env.segments("cam-s")
    assert (off.end_s - off.start_s) - 1.5 < length < (off.end_s - off.start_s) + 2.5, (
        stall_start, [(ts(x.start_at), ts(x.end_at), x.detail) for x in gaps],
        [(ts(s.start_at), ts(s.end_at)) for s in segs])
    assert any(s.end_at == g.start_at for s in segs), "footage ends exactly where the gap starts"
    assert any(s.start_at >= g.end_at for s in segs), "recording goes on after the stall"
    with session_scope(env.sessions) as db:
        h = camera_health(db, "cam-s", segs[0].start_at, segs[-1].end_at, offline_after_s=30)
    assert "camera_stalled" in {x["reason"] for x in h["gaps"]}


def test_a_camera_that_stalls_right_after_connecting_keeps_its_first_footage_at_the_right_time(
        rec_env, sqlite_url, camera_factory, sim_footage):
    """The camera sends nothing for 3.3 s a moment after the recorder connected (here SIGSTOP of its
    server). The footage before the stall had only the connection's first burst to be placed by
    (packets FFmpeg held while probing: late by the probe), and was stored 1.1 s later than filmed;
    the first frame after the stall, on the same timeline, now places it."""
    cam = camera_factory()
    env = rec_env(sqlite_url)
    env.add_camera("cam-a", cam.url)
    store = ObjectStore.from_settings(env.settings)
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: (s := env.status("cam-a")) and s.state == "online", 30, step=0.05, what="online")
        time.sleep(0.2)
        cam.proc.send_signal(signal.SIGSTOP)
        time.sleep(3.3)
        cam.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: len(env.segments("cam-a")) >= 2, 60, what="footage before and after the stall")
    finally:
        rec.stop()
    segs = env.segments("cam-a")
    hashes = footage_frame_hashes(sim_footage)
    placed = [(s.object_key, n, round(err, 3)) for s in segs
              for n, err in placement_errors(open_segment(store, env.settings.bucket_footage, s), s, cam,
                                             sim_footage, hashes, every=25)]
    assert {g.reason for g in env.gaps("cam-a")} <= {"camera_stalled"}
    assert placed and all(abs(err) < 0.25 for *_, err in placed), placed


def test_a_recorder_that_falls_behind_does_not_invent_a_stall(rec_env, sqlite_url, camera_factory, tmp_path):
    """The recorder, not the camera, stops reading for 5 s (an overloaded machine; here SIGSTOP): the
    camera's video waits in the connection and is read afterwards. Nothing was missed, so the footage
    stays back to back with no gap; a receive-clock judgement used to cut it and record a stall here."""
    cam = camera_factory()
    env = rec_env(sqlite_url)
    env.add_camera("cam-a", cam.url)
    with recorder_process(env, tmp_path / "rec.log") as p:
        first = wait_for(lambda: env.segments("cam-a"), 60, what="first segment")[0]
        while time.time() < ts(first.end_at) + 3:  # freeze in the middle of a segment
            time.sleep(0.05)
        p.send_signal(signal.SIGSTOP)
        time.sleep(5)
        p.send_signal(signal.SIGCONT)
        resumed = time.time()
        wait_for(lambda: any(ts(s.start_at) > resumed + 2 for s in env.segments("cam-a")), 60,
                 what="footage after the freeze")
        stop_cleanly(p)
    segs = env.segments("cam-a")
    assert env.gaps("cam-a") == [], [(g.reason, g.detail) for g in env.gaps("cam-a")]
    assert_back_to_back(segs)
    assert all(s.duration_s >= 9 for s in segs[:-1]), [s.duration_s for s in segs]  # no segment cut short
