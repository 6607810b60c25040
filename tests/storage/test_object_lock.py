"""Evidence holds enforced by the store: in an object-lock bucket a hold sets the S3 legal hold, so
nobody - not a direct S3 delete, not a retention batch picked before the hold - removes held footage.
Against the real SeaweedFS, through the minio SDK."""
from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from sqlalchemy import select

from api.keys import add_organisation, add_terminal
from dualcheck.runtime import Runtime
from ingest.cameras import add_camera
from ingest.spool import SegmentMeta, Spool, dt_to_us, object_key
from ingest.uploader import Uploader
from storage.db import migrate, session_scope
from storage.holds import place_hold, release_hold
from storage.models import EvidenceHold, Segment, Verification
from storage.objects import ObjectStore
from storage.retention import run_retention

NOW = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=200)  # past the default 183 days
HOLD = (OLD + timedelta(minutes=2), OLD + timedelta(minutes=4))  # covers segments 2 and 3 of CAM


def _versions(rt, bucket, key):
    return [o.version_id for o in rt.store.client.list_objects(bucket, prefix=key, include_version=True)
            if o.object_name == key and not o.is_delete_marker]


@pytest.fixture
def build(make_settings, db_url):
    made = []
    yield lambda lock=True: made.append(_build(make_settings(db_url, s3_object_lock=lock))) or made[-1]
    for rt, _, _ in made:
        rt.close()


@pytest.fixture
def world(build):
    return build()


def _build(s):
    migrate(s.effective_database_url)
    rt = Runtime(s)
    rt.store.ensure_bucket(s.bucket_footage)
    keys = []
    with session_scope(rt.sessions) as db:
        add_organisation(db, "ORG", "ORG")
        term, _ = add_terminal(db, "ORG", "ORG-T1")
        add_camera(db, camera_id="CAM", org_id="ORG", name="CAM", role="settlement_counter", url="rtsp://h/CAM")
        db.flush()
        for i in range(6):  # six one-minute segments, 200 days old
            t = OLD + timedelta(minutes=i)
            key = object_key("ORG", "CAM", dt_to_us(t))
            data = f"segment {i}".encode()
            obj = rt.store.put_bytes(s.bucket_footage, key, data, "video/mp4")
            db.add(Segment(camera_id="CAM", org_id="ORG", start_at=t, end_at=t + timedelta(minutes=1), duration_s=60,
                           bytes=len(data), sha256=obj.sha256, object_key=key))
            keys.append(key)
        cap = rt.store.put_bytes(s.bucket_biometrics, "captures/ORG/v1.jpg", b"jpeg", "image/jpeg")
        db.add(Verification(id="v1", created_at=OLD, org_id="ORG", terminal_id=term.id, insured_id="P1",
                            decision="match", threshold=0.36, model="m", capture_key=cap.key,
                            capture_sha256=cap.sha256, capture_expires_at=OLD + timedelta(days=183)))
    return rt, s, keys


def test_a_held_version_cannot_be_deleted_through_the_store(world):
    rt, s, keys = world
    assert rt.store.locked(s.bucket_footage) and rt.store.locked(s.bucket_biometrics)
    with session_scope(rt.sessions) as db:
        place_hold(db, actor="test", reason="case 1", camera_id="CAM", start=HOLD[0], end=HOLD[1], legal=rt.legal_holds)
        place_hold(db, actor="test", reason="case 2", verification_id="v1", legal=rt.legal_holds)
    c = rt.store.client
    for key in keys[2:4]:
        (vid,) = _versions(rt, s.bucket_footage, key)
        with pytest.raises(S3Error) as e:
            c.remove_object(s.bucket_footage, key, version_id=vid)
        assert e.value.code == "AccessDenied"
        errors = list(c.remove_objects(s.bucket_footage, [DeleteObject(key, vid)]))
        assert len(errors) == 1
        assert rt.store.get_bytes(s.bucket_footage, key) == f"segment {keys.index(key)}".encode()
    (vid,) = _versions(rt, s.bucket_biometrics, "captures/ORG/v1.jpg")
    with pytest.raises(S3Error):
        c.remove_object(s.bucket_biometrics, "captures/ORG/v1.jpg", version_id=vid)
    assert rt.store.get_bytes(s.bucket_biometrics, "captures/ORG/v1.jpg") == b"jpeg"
    # footage outside the hold is not locked: the same delete removes it for good
    (vid,) = _versions(rt, s.bucket_footage, keys[0])
    c.remove_object(s.bucket_footage, keys[0], version_id=vid)
    assert _versions(rt, s.bucket_footage, keys[0]) == [] and not rt.store.exists(s.bucket_footage, keys[0])


class HoldArrivesMidBatch(ObjectStore):
    """The real store; a case places a hold after retention picked its batch, before the delete."""

    def __init__(self, rt):
        super().__init__(rt.store.client)
        self.rt, self.placed = rt, False

    def delete_many(self, bucket, keys):
        if not self.placed and bucket == self.rt.settings.bucket_footage:
            self.placed = True
            with session_scope(self.rt.sessions) as db:
                place_hold(db, actor="inspector", reason="late case", camera_id="CAM", start=HOLD[0], end=HOLD[1], legal=self.rt.legal_holds)
        return super().delete_many(bucket, keys)


@pytest.mark.parametrize("lock", [True, False], ids=["lock", "nolock"])
def test_a_hold_placed_after_retention_picked_its_batch_keeps_the_footage(build, lock):
    rt, s, keys = build(lock)
    res = run_retention(rt.sessions, HoldArrivesMidBatch(rt), s, now=NOW)
    with session_scope(rt.sessions) as db:
        indexed = set(db.scalars(select(Segment.object_key)))
    stored = set(rt.store.list_keys(s.bucket_footage))
    assert indexed == set(keys[2:4])  # the re-check keeps the held rows either way
    if not s.s3_object_lock:  # the known race without object lock: rows kept, footage lost
        assert stored == set() and res.counts["object_delete_failures"] == 0
        return
    assert stored == set(keys[2:4])
    assert [rt.store.get_bytes(s.bucket_footage, k) for k in keys[2:4]] == [b"segment 2", b"segment 3"]
    assert res.counts["segments_deleted"] == 4 and res.counts["segments_held_by_store"] == 2
    assert res.counts["object_delete_failures"] == 0  # held, not lost
    # the unheld ones are gone for good: no version kept behind a delete marker
    assert all(_versions(rt, s.bucket_footage, k) == [] for k in keys[:2] + keys[4:])

    # released: the next run deletes them from the store and the index
    with session_scope(rt.sessions) as db:
        (h,) = db.scalars(select(EvidenceHold)).all()
        release_hold(db, h.id, actor="inspector", legal=rt.legal_holds)
    res = run_retention(rt.sessions, rt.store, s, now=NOW)
    assert res.counts["segments_deleted"] == 2 and res.counts["segments_held_by_store"] == 0
    assert list(rt.store.list_keys(s.bucket_footage)) == []
    assert all(_versions(rt, s.bucket_footage, k) == [] for k in keys[2:4])


def test_release_unlocks_only_what_no_other_hold_covers(world):
    rt, s, keys = world
    with session_scope(rt.sessions) as db:
        wide = place_hold(db, actor="a", reason="case A", camera_id="CAM", start=OLD, end=HOLD[1], legal=rt.legal_holds).id
        narrow = place_hold(db, actor="b", reason="case B", camera_id="CAM", start=HOLD[0], end=HOLD[1], legal=rt.legal_holds).id
    held = lambda k: rt.store.legal_hold(s.bucket_footage, k)
    assert [held(k) for k in keys] == [True, True, True, True, False, False]
    with session_scope(rt.sessions) as db:
        release_hold(db, wide, actor="a", legal=rt.legal_holds)
    assert [held(k) for k in keys] == [False, False, True, True, False, False]
    res = run_retention(rt.sessions, rt.store, s, now=NOW)
    assert res.counts["segments_deleted"] == 4 and set(rt.store.list_keys(s.bucket_footage)) == set(keys[2:4])
    with session_scope(rt.sessions) as db:
        release_hold(db, narrow, actor="b", legal=rt.legal_holds)
    assert not any(held(k) for k in keys[2:4])
    assert run_retention(rt.sessions, rt.store, s, now=NOW).counts["segments_deleted"] == 2


def test_footage_indexed_later_inside_an_active_hold_is_locked_too(world, tmp_path):
    rt, s, _ = world
    late = NOW - timedelta(hours=1)
    with session_scope(rt.sessions) as db:  # a hold over the last two hours, placed before the footage arrives
        place_hold(db, actor="test", reason="ongoing case", camera_id="CAM", start=NOW - timedelta(hours=2), end=NOW, legal=rt.legal_holds)
    spool = Spool(tmp_path / "spool", 10**8)
    items, new_keys = [], []
    for i, t in enumerate([late, NOW + timedelta(minutes=5)]):  # inside the hold, after it
        part = spool.new_part("CAM")
        data = f"late {i}".encode()
        part.write_bytes(data)
        key = object_key("ORG", "CAM", dt_to_us(t))
        items.append(spool.finish(part, SegmentMeta("CAM", "ORG", dt_to_us(t), dt_to_us(t + timedelta(minutes=1)),
                                                    len(data), hashlib.sha256(data).hexdigest(), key)))
        new_keys.append(key)
    up = Uploader(spool, rt.store, s.bucket_footage, rt.sessions, "rec-test", workers=1)
    up.start()
    for it in items:
        up.submit(it)
    deadline = time.monotonic() + 20
    while up.stats["indexed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    up.stop()
    assert up.stats["indexed"] == 2
    assert rt.store.legal_hold(s.bucket_footage, new_keys[0]) is True
    assert rt.store.legal_hold(s.bucket_footage, new_keys[1]) is False
    (vid,) = _versions(rt, s.bucket_footage, new_keys[0])
    with pytest.raises(S3Error):
        rt.store.client.remove_object(s.bucket_footage, new_keys[0], version_id=vid)
