"""Retention over months of backdated footage: exactly the expired, unheld segments and captures go,
from the store and the index; reruns, dry runs and crashed runs behave."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from api.keys import add_organisation, add_terminal
from dualcheck.runtime import Runtime
from ingest.cameras import add_camera
from storage.db import migrate, session_scope
from storage.holds import place_hold, release_hold
from storage.models import AuditEvent, EvidenceHold, RetentionRun, Segment, Verification
from storage.retention import run_retention

NOW = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)
DAYS = 240  # eight months of footage
STEP_H = 6  # one (tiny) segment every 6 hours per camera
CAMERAS = {"A1": "ORG-A", "A2": "ORG-A", "B1": "ORG-B", "C1": "ORG-C"}
RETENTION = {"ORG-A": None, "ORG-B": 30, "ORG-C": 365}  # None: the default (183 days)
HOLD = (NOW - timedelta(days=200), NOW - timedelta(days=190))  # on A1 only: past its retention


def _put_all(store, bucket, items):
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: store.put_bytes(bucket, kv[0], kv[1]), items))


@pytest.fixture
def world(tmp_path, make_settings, db_url):
    s = make_settings(db_url, retention_batch=500)
    migrate(s.effective_database_url)
    rt = Runtime(s)
    rt.store.ensure_bucket(s.bucket_footage)
    objects = []
    with session_scope(rt.sessions) as db:
        for org, days in RETENTION.items():
            o = add_organisation(db, org, org)
            o.retention_days = days
        db.flush()
        term, _ = add_terminal(db, "ORG-A", "ORG-A-T1")
        for cam, org in CAMERAS.items():
            add_camera(db, camera_id=cam, org_id=org, name=cam, role="settlement_counter", url=f"rtsp://h/{cam}")
        db.flush()
        for cam, org in CAMERAS.items():
            t = NOW - timedelta(days=DAYS)
            while t < NOW:
                key = f"{org}/{cam}/{t:%Y/%m/%d/%H}/{t:%Y%m%dT%H%M%S}.mp4"
                data = key.encode()
                db.add(Segment(camera_id=cam, org_id=org, start_at=t, end_at=t + timedelta(hours=STEP_H),
                               duration_s=STEP_H * 3600, bytes=len(data), sha256="0" * 64, object_key=key))
                objects.append((key, data))
                t += timedelta(hours=STEP_H)
        # footage being recorded right now (ends after NOW) is never touched
        db.add(Segment(camera_id="B1", org_id="ORG-B", start_at=NOW - timedelta(seconds=30),
                       end_at=NOW + timedelta(seconds=30), duration_s=60, bytes=4, sha256="0" * 64,
                       object_key="ORG-B/B1/live.mp4"))
        objects.append(("ORG-B/B1/live.mp4", b"live"))
        place_hold(db, actor="test", reason="case 17", camera_id="A1", start=HOLD[0], end=HOLD[1], legal=rt.legal_holds)
        released = place_hold(db, actor="test", reason="closed case", camera_id="B1",
                              start=NOW - timedelta(days=100), end=NOW - timedelta(days=90), legal=rt.legal_holds)
        db.flush()
        release_hold(db, released.id, actor="test", legal=rt.legal_holds)
        # face-pay captures: expired, not yet, expired but held
        caps = []
        for i, (age, held) in enumerate([(200, False), (190, False), (100, False), (250, True)]):
            v = Verification(id=f"v{i}", created_at=NOW - timedelta(days=age), org_id="ORG-A", terminal_id=term.id,
                             insured_id="P1", decision="match", threshold=0.36, model="m",
                             capture_key=f"captures/v{i}.jpg", capture_sha256="0" * 64,
                             capture_expires_at=NOW - timedelta(days=age - 183))
            db.add(v)
            caps.append((f"captures/v{i}.jpg", b"jpg"))
            if held:
                db.flush()
                place_hold(db, actor="test", reason="impersonation case", verification_id=v.id, legal=rt.legal_holds)
    _put_all(rt.store, s.bucket_footage, objects)
    _put_all(rt.store, s.bucket_biometrics, caps)
    yield rt, s, {k for k, _ in objects}
    rt.close()


def _expected_kept(keys_rows) -> set[str]:
    keep = set()
    for key, cam, org, start, end in keys_rows:
        days = RETENTION[org] or 183
        cutoff = NOW - timedelta(days=days)
        held = cam == "A1" and start < HOLD[1] and end > HOLD[0]
        if end > cutoff or held:
            keep.add(key)
    return keep


def _index(rt):
    with session_scope(rt.sessions) as db:
        return [(r.object_key, r.camera_id, r.org_id, r.start_at, r.end_at) for r in db.scalars(select(Segment))]


def _check_converged(rt, s, before):
    expected = _expected_kept(before)
    assert {r[0] for r in _index(rt)} == expected
    assert set(rt.store.list_keys(s.bucket_footage)) == expected
    with session_scope(rt.sessions) as db:
        caps = {v.id: v.capture_key for v in db.scalars(select(Verification))}
    assert caps == {"v0": None, "v1": None, "v2": "captures/v2.jpg", "v3": "captures/v3.jpg"}
    assert set(rt.store.list_keys(s.bucket_biometrics)) == {"captures/v2.jpg", "captures/v3.jpg"}
    return expected


def test_retention_keeps_exactly_what_it_must(world):
    rt, s, all_keys = world
    before = _index(rt)
    expected = _expected_kept(before)
    assert len(before) > 3800 and 0 < len(expected) < len(before)
    # sanity of the scenario: held footage is older than its retention, ORG-C keeps everything
    assert any(k.startswith("ORG-A/A1/") and "/2025/02/" in k for k in expected)
    assert not any(k.startswith("ORG-A/A2/") and "/2025/02/" in k for k in expected)

    dry = run_retention(rt.sessions, rt.store, s, dry_run=True, now=NOW)
    assert dry.counts["segments_to_delete"] == len(before) - len(expected)
    assert dry.counts["captures_to_delete"] == 2 and dry.counts["captures_held"] == 1
    assert dry.counts["segments_held"] == 40  # 10 days x 4 segments a day of A1
    assert len(_index(rt)) == len(before) and set(rt.store.list_keys(s.bucket_footage)) == all_keys

    res = run_retention(rt.sessions, rt.store, s, now=NOW)
    assert res.counts["segments_deleted"] == len(before) - len(expected)
    assert res.counts["captures_deleted"] == 2 and res.counts["object_delete_failures"] == 0
    _check_converged(rt, s, before)

    again = run_retention(rt.sessions, rt.store, s, now=NOW)
    assert again.counts["segments_deleted"] == 0 and again.counts["captures_deleted"] == 0
    _check_converged(rt, s, before)
    with session_scope(rt.sessions) as db:
        runs = list(db.scalars(select(RetentionRun).order_by(RetentionRun.started_at)))
        assert [(r.dry_run, r.state) for r in runs] == [(True, "done"), (False, "done"), (False, "done")]
        events = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "retention.run")))
        assert [e.outcome for e in events] == ["dry_run", "ok", "ok"]
        assert events[1].detail["segments_deleted"] == len(before) - len(expected)

    # releasing the hold lets the next run take the footage it kept
    with session_scope(rt.sessions) as db:
        h = db.scalars(select(EvidenceHold).where(EvidenceHold.camera_id == "A1")).one()
        release_hold(db, h.id, actor="test", legal=rt.legal_holds)
    res = run_retention(rt.sessions, rt.store, s, now=NOW)
    assert res.counts["segments_deleted"] == 40


class Crash(RuntimeError):
    pass


def test_a_crashed_run_is_finished_by_the_next(world):
    rt, s, _ = world
    before = _index(rt)
    batches = []

    def crash_on_second_batch(kind, keys):
        batches.append(keys)
        if len(batches) == 2:
            raise Crash("power cut after the objects were deleted, before the rows")

    with pytest.raises(Crash):
        run_retention(rt.sessions, rt.store, s, now=NOW, after_objects_deleted=crash_on_second_batch)
    # the half-done batch: objects gone, rows still indexed
    index_keys = {r[0] for r in _index(rt)}
    stored = set(rt.store.list_keys(s.bucket_footage))
    assert set(batches[1]) <= index_keys and not (set(batches[1]) & stored)
    assert not (set(batches[0]) & index_keys)
    with session_scope(rt.sessions) as db:
        assert db.scalars(select(RetentionRun)).one().state == "failed"

    res = run_retention(rt.sessions, rt.store, s, now=NOW)
    assert res.counts["object_delete_failures"] == 0
    _check_converged(rt, s, before)


def test_cli_dry_run_then_run(world, tmp_path):
    rt, s, all_keys = world
    env = {**os.environ, "DUALCHECK_DATA_DIR": str(s.data_dir), "DUALCHECK_DATABASE_URL": s.effective_database_url,
           "DUALCHECK_S3_ENDPOINT": s.s3_endpoint, "DUALCHECK_S3_ACCESS_KEY": s.s3_access_key,
           "DUALCHECK_S3_SECRET_KEY": s.s3_secret_key.get_secret_value(),
           "DUALCHECK_BUCKET_FOOTAGE": s.bucket_footage, "DUALCHECK_BUCKET_BIOMETRICS": s.bucket_biometrics}
    cmd = [os.path.join(os.path.dirname(sys.executable), "dualcheck")]
    out = subprocess.run(cmd + ["retention", "run", "--dry-run", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    dry = json.loads(out.stdout.strip().splitlines()[-1])
    # the CLI runs at the real "now": everything of ORG-A/ORG-B older than retention is due
    assert dry["dry_run"] is True and dry["segments_to_delete"] > 0
    assert set(rt.store.list_keys(s.bucket_footage)) == all_keys
    out = subprocess.run(cmd + ["retention", "run"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"deleted {dry['segments_to_delete']} segment(s)" in out.stdout
    with session_scope(rt.sessions) as db:
        assert len(list(db.scalars(select(Segment)))) == len(all_keys) - dry["segments_to_delete"]
