"""Background checks: a settlement whose footage is still on its way waits instead of becoming
footage_missing; procrastinate on PostgreSQL runs the checks, retries, and a restart picks up every
settlement the rows say is not done."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from correlate.jobs import check_one, due
from storage.db import session_scope
from storage.models import CameraStatus, Settlement, utcnow
from tests.correlate import scenarios as sc


def _status(w, sid):
    with session_scope(w.rt.sessions) as db:
        s = db.get(Settlement, sid)
        return s.status, s.outcome


def test_waits_for_footage_still_uploading_then_decides(world_sqlite, testdata):
    w = world_sqlite
    w.settings.correlate_footage_max_wait_s = 10 * 365 * 86400.0  # the scenes are dated in the past
    foot = sc.scene_footage("ghost", testdata)
    start = sc.at(0)
    with session_scope(w.rt.sessions) as db:
        sc.write_block(db, w.rt.store, w.settings.bucket_footage, foot, org_id="CLINIC-A", camera_id="CAM-A",
                       start=start, total_s=20)  # the window ends at 36 s: not all uploaded yet
        db.add(CameraStatus(camera_id="CAM-A", recorder_id="rec-1", state="online", last_packet_at=utcnow(),
                            updated_at=utcnow()))
    settled = start + timedelta(seconds=sc.SETTLE_AT)
    assert w.post([sc.settlement("W-1", "P-OBAMA", "CLINIC-A", settled, terminal="CLINIC-A-T1")]).status_code == 200
    assert check_one(w.rt.checker, "W-1") == "waiting"
    assert _status(w, "W-1") == ("waiting", None)
    assert not [f for f in w.flags() if f["settlement_id"] == "W-1"]
    # the rest of the footage arrives: the check runs and decides on the whole window
    with session_scope(w.rt.sessions) as db:
        sc.write_block(db, w.rt.store, w.settings.bucket_footage, foot, org_id="CLINIC-A", camera_id="CAM-A",
                       start=start + timedelta(seconds=20), total_s=20)
    assert check_one(w.rt.checker, "W-1") == "done"
    assert _status(w, "W-1") == ("done", "ghost_visit")


def test_camera_offline_does_not_wait_forever(world_sqlite, testdata):
    w = world_sqlite
    w.settings.correlate_footage_max_wait_s = 10 * 365 * 86400.0
    foot = sc.scene_footage("ghost", testdata)
    with session_scope(w.rt.sessions) as db:
        sc.write_block(db, w.rt.store, w.settings.bucket_footage, foot, org_id="CLINIC-A", camera_id="CAM-A",
                       start=sc.at(0), total_s=10)
        db.add(CameraStatus(camera_id="CAM-A", recorder_id="rec-1", state="offline",
                            last_packet_at=sc.at(10), updated_at=utcnow() - timedelta(hours=1)))
    w.post([sc.settlement("O-1", "P-OBAMA", "CLINIC-A", sc.at(sc.SETTLE_AT), terminal="CLINIC-A-T1")])
    assert check_one(w.rt.checker, "O-1") == "done"
    assert _status(w, "O-1") == ("done", "footage_missing")  # 10 s of a 32 s window: not a ghost visit


def test_a_failing_check_is_retried_then_marked_failed(world_sqlite):
    w = world_sqlite
    w.settings.correlate_max_attempts = 2
    w.post([sc.settlement("E-1", "P-OBAMA", "CLINIC-A", sc.at(10), terminal="CLINIC-A-T1")])
    with session_scope(w.rt.sessions) as db:  # a segment indexed whose object is not in the store
        from storage.models import Segment

        db.add(Segment(camera_id="CAM-A", org_id="CLINIC-A", start_at=sc.at(0), end_at=sc.at(60), duration_s=60,
                       bytes=1, sha256="0" * 64, object_key="CLINIC-A/CAM-A/missing.mp4"))
    assert check_one(w.rt.checker, "E-1") == "pending"
    with session_scope(w.rt.sessions) as db:
        s = db.get(Settlement, "E-1")
        assert s.attempts == 1 and "S3Error" in s.last_error and s.next_check_at > utcnow()
    assert check_one(w.rt.checker, "E-1") == "failed"


@pytest.mark.postgres
def test_procrastinate_worker_runs_checks_and_restart_requeues(make_settings, shared_pipeline, testdata, tmp_path):
    from tests.conftest import _create_pg_database, _drop_pg_database
    from tests.correlate.conftest import SETTINGS, make_world

    url = _create_pg_database()
    w = make_world(make_settings(url, **SETTINGS), shared_pipeline, testdata, tmp_path)
    try:
        b1 = w.add_block("ghost", testdata)
        b2 = w.add_block("present", testdata)
        r = w.post([sc.settlement("Q-1", "P-OBAMA", "CLINIC-A", b1.settled_at, terminal="CLINIC-A-T1"),
                    sc.settlement("Q-2", "P-OBAMA", "CLINIC-A", b2.settled_at, terminal="CLINIC-A-T1")])
        assert r.status_code == 200 and r.json()["queued"] == 2
        # the API keeps one enqueueing connection open and reuses it, instead of a new pool per request
        first = _enqueue_backends(url)
        assert len(first) == 1
        b0 = w.add_block("present", testdata)
        assert w.post([sc.settlement("Q-0", "P-OBAMA", "CLINIC-A", b0.settled_at,
                                     terminal="CLINIC-A-T1")]).json()["queued"] == 1
        assert _enqueue_backends(url) == first
        jobs = w.rt.jobs
        assert jobs.enqueue(["Q-1"]) == 0  # already queued: the queueing lock keeps one job per settlement
        jobs.run_worker(wait=False)
        assert _status(w, "Q-1") == ("done", "ghost_visit") and _status(w, "Q-2") == ("done", "verified_present")
        # a worker killed mid-check left a settlement pending and no job: the next start re-enqueues it
        b3 = w.add_block("impostor", testdata)
        with session_scope(w.rt.sessions) as db:
            from correlate.settlements import Importer

            Importer(db, actor="test").add(1, sc.settlement("Q-3", "P-OBAMA", "CLINIC-A", b3.settled_at,
                                                             terminal="CLINIC-A-T1"))
        assert due(w.rt.sessions) == ["Q-3"]
        w.rt.jobs.run_worker(wait=False)
        assert _status(w, "Q-3") == ("done", "impersonation")
        flags = {f["settlement_id"]: f["rule"] for f in w.flags() if f["rule"] in ("ghost_visit", "impersonation")}
        assert flags == {"Q-1": "ghost_visit", "Q-3": "impersonation"}
        w.rt.jobs.close()
        # the pool's connections are closed; the server drops their backends from pg_stat_activity as each
        # backend process exits, which on a busy machine can come a moment after the client's close
        deadline = time.monotonic() + 10
        while (left := _enqueue_backends(url)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == set()
    finally:
        w.client.__exit__(None, None, None)
        w.rt.close()
        _drop_pg_database(url)


def _enqueue_backends(url: str) -> set[int]:
    """PostgreSQL backends of this database opened by the enqueueing pool (application_name)."""
    import sqlalchemy as sa

    from tests.conftest import PG_ADMIN_URL

    eng = sa.create_engine(PG_ADMIN_URL)
    try:
        with eng.connect() as c:
            return set(c.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND "
                                         "application_name = 'dualcheck-enqueue'"), {"d": url.rsplit("/", 1)[1]})
                       .scalars())
    finally:
        eng.dispose()
