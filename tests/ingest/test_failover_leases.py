"""The lease SQL on SQLite and PostgreSQL (fast), and the balancing rule."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from ingest import leases as L
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import Camera, CameraLease, Organisation, Segment, utcnow


@pytest.fixture
def sessions(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    with session_scope(sm) as db:
        db.add(Organisation(id="org1", name="org1"))
        db.flush()
        for c in ("c1", "c2"):
            db.add(Camera(id=c, org_id="org1", name=c, role="entrance", rtsp_url=f"rtsp://h/{c}"))
    yield sm
    engine.dispose()


def test_two_holders_cannot_both_claim_and_expiry_and_release_work(sessions):
    with session_scope(sessions) as db:
        a = L.claim(db, "c1", "rec-a", ttl_s=3)
        assert a is not None and a.gap_start is None  # never recorded: nothing to call a gap
        assert L.claim(db, "c1", "rec-b", ttl_s=3) is None  # held by a
        assert L.free_cameras(db, ["c1", "c2"], "rec-b") == ["c2"]
        assert L.holder_counts(db, ["c1", "c2"]) == {"rec-a": 1}
        assert L.renew(db, "rec-b", ["c1"], 3) == set()  # renewing what one does not hold gives nothing
        # footage of c1 so that a takeover has a gap to record
        end = utcnow() - timedelta(seconds=1)
        db.add(Segment(camera_id="c1", org_id="org1", start_at=end - timedelta(seconds=10), end_at=end,
                       duration_s=10, bytes=1, sha256="0" * 64, object_key="k1", recorder_id="rec-a"))
        db.commit()
    time.sleep(3.3)  # a stopped renewing: the lease expires by the database clock
    with session_scope(sessions) as db:
        assert L.holder_counts(db, ["c1"]) == {}
        assert L.renew(db, "rec-a", ["c1"], 3) == {"c1"}  # nobody took it yet: a may keep it
    time.sleep(3.3)
    with session_scope(sessions) as db:
        b = L.claim(db, "c1", "rec-b", ttl_s=30)
        assert b is not None and b.gap_reason == L.FAILOVER and b.previous_holder == "rec-a"
        assert abs((b.gap_start - end).total_seconds()) < 0.01
        assert L.renew(db, "rec-a", ["c1"], 3) == set()  # a lost it
        assert L.claim(db, "c1", "rec-a", ttl_s=3) is None
        # b, still running, releases with the end of its last flushed segment: a clean handover
        L.heartbeat(db, "rec-b", "h2", "0/1", first=True)
        last = utcnow()
        assert not L.release(db, "c1", "rec-a", last)  # only the holder can release
        assert L.release(db, "c1", "rec-b", last)
        db.commit()
        c = L.claim(db, "c1", "rec-a", ttl_s=3)
        assert c.gap_reason == L.HANDOVER and c.previous_holder == "rec-b"
        assert abs((c.gap_start - last).total_seconds()) < 0.01
        rows = list(db.query(CameraLease).order_by(CameraLease.camera_id))
        assert [(r.camera_id, r.holder) for r in rows] == [("c1", "rec-a")]
        # a stops cleanly and starts again: the same recorder's restart, not a handover
        assert L.release(db, "c1", "rec-a", utcnow())
        db.commit()
        again = L.claim(db, "c1", "rec-a", ttl_s=3)
        assert again.gap_reason == L.RESTART and again.previous_holder == "rec-a"
        # a stops cleanly (its heartbeat gone) and a new process (another id: host-pid) takes the camera:
        # a restart too (the demo's Ctrl-C and make run again)
        assert L.release(db, "c1", "rec-a", utcnow())
        L.forget_recorder(db, "rec-a")
        db.commit()
        new = L.claim(db, "c1", "rec-a2", ttl_s=3)
        assert new.gap_reason == L.RESTART and new.previous_holder == "rec-a"


def test_heartbeats_count_only_live_recorders_of_the_shard(sessions):
    with session_scope(sessions) as db:
        L.heartbeat(db, "rec-a", "h1", "0/1", first=True)
        L.heartbeat(db, "rec-b", "h2", "0/1", first=True)
        L.heartbeat(db, "rec-x", "h3", "1/2", first=True)
    with session_scope(sessions) as db:
        assert sorted(L.live_recorders(db, "0/1", ttl_s=3)) == ["rec-a", "rec-b"]
        assert L.other_incarnation_alive(db, "rec-a", 3)
    time.sleep(2.2)
    with session_scope(sessions) as db:
        L.heartbeat(db, "rec-a", "h1", "0/1")
    with session_scope(sessions) as db:
        assert L.live_recorders(db, "0/1", ttl_s=2) == ["rec-a"]  # b went silent
        assert not L.other_incarnation_alive(db, "rec-b", 2)
        L.forget_recorder(db, "rec-a")
    with session_scope(sessions) as db:
        assert L.live_recorders(db, "0/1", ttl_s=60) == ["rec-b"]


def _settle(n_cams: int, counts: dict[str, int], rounds: int = 20) -> dict[str, int]:
    """Run decide() round-robin over the recorders as the recorder loop would, until nothing moves."""
    counts = dict(counts)
    for _ in range(rounds):
        moved = False
        for me in sorted(counts):
            free = n_cams - sum(counts.values())
            k = L.decide(me, counts, n_cams, free)
            if k:
                counts[me] += k
                moved = True
        if not moved:
            return counts
    raise AssertionError(f"no convergence: {counts}")


@pytest.mark.parametrize("n,start", [
    (5, {"a": 0, "b": 0, "c": 0}),  # cold start
    (5, {"a": 3, "b": 2, "c": 0}),  # c came back after a failover
    (4, {"a": 2, "b": 2, "c": 0}),  # under floor while the others sit at ceil
    (7, {"a": 3, "b": 3, "c": 1}),
    (6, {"a": 0, "b": 0}),  # a recorder died: its 2 of 6 cameras are free
    (1, {"a": 0, "b": 0, "c": 0}),
])
def test_balancing_converges_to_counts_within_one(n, start):
    end = _settle(n, start)
    assert sum(end.values()) == n
    assert max(end.values()) - min(end.values()) <= 1, end
    # and it stays there: no recorder wants to move in the settled state
    assert all(L.decide(me, end, n, 0) == 0 for me in end)
