"""Upload spooled segments to the footage bucket and index them; index recording gaps.

Per camera, items leave the spool strictly in order (a camera always maps to the same worker, and a
worker retries its oldest item until it succeeds), so a store or database outage delays footage but
never reorders or drops it. Upload and index are idempotent: the object key is derived from the
segment's start, a re-upload writes the same bytes, and the index row is inserted only if no row has
that ``object_key`` (unique) - so a crash anywhere in between is repaired by the next attempt.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ingest.sharding import shard_of
from ingest.spool import GapOp, SegmentMeta, Spool, SpoolItem, us_to_dt
from kernel import metrics
from storage.db import session_scope
from storage.holds import legal_hold_new_segment
from storage.models import RecordingGap, Segment

log = logging.getLogger(__name__)


def index_segment(db, meta: SegmentMeta, recorder_id: str | None) -> bool:
    """Insert the segments row unless it exists. True if inserted."""
    if db.scalar(select(Segment.id).where(Segment.object_key == meta.key)) is not None:
        return False
    db.add(Segment(camera_id=meta.camera_id, org_id=meta.org_id, start_at=us_to_dt(meta.start_us),
                   end_at=us_to_dt(meta.end_us), duration_s=meta.duration_s, bytes=meta.bytes,
                   sha256=meta.sha256, object_key=meta.key, recorder_id=recorder_id, stream=meta.stream))
    return True


def apply_gap(db, op: GapOp) -> None:
    start = us_to_dt(op.start_us)
    row = db.scalar(select(RecordingGap).where(RecordingGap.camera_id == op.camera_id,
                                               RecordingGap.start_at == start, RecordingGap.reason == op.reason,
                                               RecordingGap.stream == op.stream))
    if row is None:
        row = RecordingGap(camera_id=op.camera_id, start_at=start, reason=op.reason, stream=op.stream)
        db.add(row)
    if op.end_us is not None:
        row.end_at = us_to_dt(max(op.end_us, op.start_us))
    if op.detail:
        row.detail = op.detail


class Uploader:
    def __init__(self, spool: Spool, store, bucket: str, sessions, recorder_id: str | None, workers: int = 2,
                 retry_max_s: float = 10.0, on_indexed=None):
        self.spool, self.store, self.bucket, self.sessions = spool, store, bucket, sessions
        self.recorder_id = recorder_id
        self.retry_max_s = retry_max_s
        self.on_indexed = on_indexed  # callback(meta, latency_s) for status/metrics
        # the last queue takes gap ops only: they need just the database, so a store outage
        # (segments stuck at the head of the queues) must not hold back e.g. a spool_full gap
        self._queues = [deque() for _ in range(workers + 1)]
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._bucket_ok = False
        self.last_error: str | None = None
        self.stats = {"uploaded": 0, "indexed": 0, "gaps": 0, "retries": 0}

    # --- queue -----------------------------------------------------------------------------
    def submit(self, item: SpoolItem) -> None:
        with self._cond:
            if item.is_gap:
                self._queues[-1].append(item)
            else:
                self._queues[shard_of(item.camera_id, len(self._queues) - 1)].append(item)
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues)

    # --- threads ---------------------------------------------------------------------------
    def start(self) -> None:
        for i, q in enumerate(self._queues):
            t = threading.Thread(target=self._run, args=(q,), name=f"uploader-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, grace_s: float = 0.0) -> None:
        """Stop after draining for at most ``grace_s`` seconds; what is left stays in the spool."""
        deadline = time.monotonic() + grace_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, q: deque) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            with self._cond:
                while not q and not self._stop.is_set():
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                item = q[0]
            try:
                self._process(item)
            except Exception as e:  # store or DB down: retry the SAME item (order), with backoff
                self.last_error = f"{type(e).__name__}: {e}"[:500]
                self.stats["retries"] += 1
                metrics.UPLOAD_RETRIES.inc()
                log.warning("upload/index of %s/%s failed, retrying in %.1f s: %s", item.camera_id,
                            item.path.name, backoff, self.last_error)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            backoff = 0.5
            self.last_error = None
            with self._cond:
                q.popleft()

    def _process(self, item: SpoolItem) -> None:
        rec = item.load()
        if isinstance(rec, GapOp):
            with session_scope(self.sessions) as db:
                apply_gap(db, rec)
            self.spool.remove(item)
            self.stats["gaps"] += 1
            return
        if not getattr(item, "uploaded", False):
            if not self._bucket_ok:
                self.store.ensure_bucket(self.bucket)
                self._bucket_ok = True
            self.store.put_file(self.bucket, rec.key, item.mp4, content_type="video/mp4", sha256=rec.sha256,
                                metadata={"camera": rec.camera_id, "org": rec.org_id})
            item.uploaded = True  # a DB retry does not upload again (a restart would, harmlessly)
            self.stats["uploaded"] += 1
        try:
            with session_scope(self.sessions) as db:
                inserted = index_segment(db, rec, self.recorder_id)
        except IntegrityError:
            inserted = False  # indexed concurrently (same key): that is the idempotence we want
        with session_scope(self.sessions) as db:  # inside an active hold's range: the store holds it too
            legal_hold_new_segment(db, self.store, self.bucket, rec.camera_id, us_to_dt(rec.start_us),
                                   us_to_dt(rec.end_us), rec.key)
        self.spool.remove(item)
        latency = time.time() - rec.end_us / 1e6
        if inserted:
            self.stats["indexed"] += 1
            metrics.SEGMENTS_UPLOADED.labels(rec.camera_id, rec.org_id).inc()
            metrics.SEGMENT_INDEX_DELAY.observe(max(0.0, latency))
        if self.on_indexed:
            self.on_indexed(rec, latency)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
