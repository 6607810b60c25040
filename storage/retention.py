"""The retention run: delete footage older than its organisation's retention, and expired face-pay
captures, never anything under an active evidence hold.

Order per batch (crash-safe, resumable, idempotent):

1. pick a batch of expired, unheld index rows (keyset order by id, at most ``retention_batch``);
2. delete their objects from the store (one S3 multi-object delete; a missing key is not an error);
3. delete the rows (segments) or clear ``capture_key`` (verifications) in one transaction, re-checking
   "expired and not held" in the same statement.

A crash between 2 and 3 leaves rows whose objects are gone; the next run picks them again (they are
still expired and unheld), deletes the already-missing objects without error and removes the rows:
runs converge. A row is never removed before its object, so the index never loses track of a
stored object. Only segments that *ended* before the cutoff are touched, so a recorder inserting new
segments at the same time is never affected.

A hold placed while a batch is between steps 1 and 2: in an object-lock bucket (the default) the hold
has already set the S3 legal hold, step 2 deletes by version id, the store refuses the held versions,
and their rows stay, counted as ``*_held_by_store`` (kept, not lost). In a bucket without object lock
that batch's objects are lost (their rows survive through the re-check in 3).

Each run writes a ``RetentionRun`` row with counts and a ``retention.run`` audit event.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kernel import metrics
from storage.audit import audit
from storage.db import session_scope
from storage.holds import capture_held, segment_held
from storage.models import CaptureAttempt, Organisation, RetentionRun, Segment, Verification, utcnow
from storage.objects import held_failure

log = logging.getLogger("dualcheck.retention")

# an organisation's footage retention: at least a week (evidence of a settlement must survive its
# check and review), at most ten years
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 7, 3650


class RetentionInvalid(ValueError):
    pass


def set_org_retention(db: Session, org_id: str, days: int | None, *, actor: str,
                      request_id: str | None = None) -> Organisation:
    """Set (``days``) or clear (None: the default setting) an organisation's footage retention; audited.
    The next retention run uses it."""
    org = db.get(Organisation, org_id)
    if org is None:
        raise LookupError(f"no organisation {org_id!r}")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS):
        raise RetentionInvalid(f"retention must be a whole number of days from {MIN_RETENTION_DAYS} to "
                               f"{MAX_RETENTION_DAYS}, not {days!r}")
    before, org.retention_days = org.retention_days, days
    audit(db, actor=actor, action="org.retention", outcome="ok", org_id=org.id, subject=f"org:{org.id}",
          request_id=request_id, detail={"before": before, "after": days})
    return org


@dataclass
class RetentionResult:
    run_id: str
    dry_run: bool
    counts: dict = field(default_factory=dict)


def org_cutoffs(db: Session, default_days: int, now: datetime) -> dict[str | None, datetime]:
    """Cutoff per organisation id; key None = organisations (or segment org ids) without an override."""
    cut = {None: now - timedelta(days=default_days)}
    for org_id, days in db.execute(select(Organisation.id, Organisation.retention_days)
                                   .where(Organisation.retention_days.is_not(None))):
        cut[org_id] = now - timedelta(days=int(days))
    return cut


def _expired_segments(cutoffs: dict[str | None, datetime]):
    overrides = [k for k in cutoffs if k is not None]
    conds = [and_(Segment.org_id == org, Segment.end_at <= cutoffs[org]) for org in overrides]
    default = Segment.end_at <= cutoffs[None]
    if overrides:
        default = and_(Segment.org_id.not_in(overrides), default)
    return or_(default, *conds)


def _expired_captures(now: datetime):
    return and_(Verification.capture_key.is_not(None), Verification.capture_expires_at.is_not(None),
                Verification.capture_expires_at <= now)


def erase_fingerprints(sessions: sessionmaker[Session], now: datetime) -> int:
    """Forget the perceptual hashes and embeddings of captures past the replay window (facepay/replay.py):
    kept only to recognise a replay; the attempt's other facts stay with its verification."""
    with session_scope(sessions) as db:
        return db.execute(update(CaptureAttempt).where(CaptureAttempt.fingerprint_expires_at <= now,
                                                       or_(CaptureAttempt.phash.is_not(None),
                                                           CaptureAttempt.embedding.is_not(None)))
                          .values(phash=None, embedding=None, dim=None)
                          .execution_options(synchronize_session=False)).rowcount or 0


def run_retention(sessions: sessionmaker[Session], store, settings, *, dry_run: bool = False,
                  actor: str = "cli", now: datetime | None = None, batch: int | None = None,
                  after_objects_deleted: Callable[[str, list[str]], None] | None = None) -> RetentionResult:
    """One retention pass. ``after_objects_deleted(kind, keys)`` is a test hook called between the
    object delete and the row delete of each batch (raise in it to simulate a crash)."""
    now = now or utcnow()
    batch = batch or settings.retention_batch
    with session_scope(sessions) as db:
        run = RetentionRun(dry_run=dry_run, actor=actor, state="running", started_at=now)
        db.add(run)
        db.flush()
        run_id = run.id
        cutoffs = org_cutoffs(db, settings.retention_days, now)
    counts = {"segments_deleted": 0, "segment_bytes_deleted": 0, "segments_held": 0, "captures_deleted": 0,
              "captures_held": 0, "object_delete_failures": 0, "batches": 0,
              "segments_held_by_store": 0, "captures_held_by_store": 0,
              "cutoff_default": cutoffs[None].isoformat(),
              "cutoffs": {k: v.isoformat() for k, v in cutoffs.items() if k is not None}}
    expired_seg = _expired_segments(cutoffs)
    expired_cap = _expired_captures(now)
    try:
        with session_scope(sessions) as db:
            counts["segments_held"] = db.scalar(select(func.count()).select_from(Segment)
                                                .where(expired_seg, segment_held())) or 0
            counts["captures_held"] = db.scalar(select(func.count()).select_from(Verification)
                                                .where(expired_cap, capture_held())) or 0
            if dry_run:
                n, b = db.execute(select(func.count(), func.coalesce(func.sum(Segment.bytes), 0))
                                  .where(expired_seg, ~segment_held())).one()
                counts["segments_to_delete"], counts["segment_bytes_to_delete"] = int(n), int(b)
                counts["captures_to_delete"] = db.scalar(select(func.count()).select_from(Verification)
                                                         .where(expired_cap, ~capture_held())) or 0
        if not dry_run:
            _sweep(sessions, store, settings.bucket_footage, _SEGMENTS, expired_seg, batch, counts,
                   after_objects_deleted)
            _sweep(sessions, store, settings.bucket_biometrics, _CAPTURES, expired_cap, batch, counts,
                   after_objects_deleted)
            counts["capture_fingerprints_erased"] = erase_fingerprints(sessions, now)
    except BaseException as e:
        with session_scope(sessions) as db:
            run = db.get(RetentionRun, run_id)
            run.state, run.finished_at, run.counts = "failed", utcnow(), {**counts, "error": repr(e)[:500]}
            audit(db, actor=actor, action="retention.run", outcome="failed", subject=f"retention:{run_id}",
                  detail={**counts, "dry_run": dry_run, "error": repr(e)[:500]})
        metrics.RETENTION_RUNS.labels("failed").inc()
        raise
    with session_scope(sessions) as db:
        run = db.get(RetentionRun, run_id)
        run.state, run.finished_at, run.counts = "done", utcnow(), counts
        audit(db, actor=actor, action="retention.run", outcome="dry_run" if dry_run else "ok",
              subject=f"retention:{run_id}", detail={**counts, "dry_run": dry_run})
    metrics.RETENTION_RUNS.labels("dry_run" if dry_run else "ok").inc()
    return RetentionResult(run_id, dry_run, counts)


def _delete(store, bucket, keys, counts, kind) -> dict[str, str]:
    """Delete the objects; returns key -> error of those not deleted (their rows are kept). A version
    under an S3 legal hold (a hold placed after the batch was picked) is counted as held, not failed."""
    failures: dict[str, str] = {}
    for key, err in store.delete_many(bucket, keys):
        if not held_failure(failures.get(key, "")):  # one held version keeps the key held
            failures[key] = err
    held = [k for k, e in failures.items() if held_failure(e)]
    lost = len(failures) - len(held)
    counts[f"{kind}_held_by_store"] += len(held)
    counts["object_delete_failures"] += lost
    metrics.RETENTION_FAILURES.inc(lost)  # a store-held version is kept on purpose, not a failure
    if lost:
        log.warning("retention: %d objects not deleted (kept in the index): %s", lost,
                    [kv for kv in failures.items() if not held_failure(kv[1])][:3])
    return failures


@dataclass(frozen=True)
class _Sweep:
    """One kind of expiring object: segments (row deleted) or face-pay captures (key cleared)."""
    name: str  # "segments" | "captures": the counts' and the hook's word
    id: ColumnElement
    key: ColumnElement
    size: ColumnElement  # bytes freed per object (0 where the index does not keep it)
    first_id: object  # below every id
    held: ColumnElement
    forget: Callable[[list, ColumnElement], object]  # the statement that drops these ids from the index
    deleted_metric: object


_SEGMENTS = _Sweep("segments", Segment.id, Segment.object_key, Segment.bytes, 0, segment_held(),
                   lambda ids, expired: delete(Segment).where(Segment.id.in_(ids), expired, ~segment_held()),
                   metrics.RETENTION_SEGMENTS)
_CAPTURES = _Sweep("captures", Verification.id, Verification.capture_key, literal(0), "", capture_held(),
                   lambda ids, expired: update(Verification).where(Verification.id.in_(ids), expired,
                                                                   ~capture_held()).values(capture_key=None),
                   metrics.RETENTION_CAPTURES)


def _sweep(sessions, store, bucket, kind: _Sweep, expired, batch, counts, hook) -> None:
    """Delete expired objects batch by batch: objects first, then their rows (a crash in between leaves
    rows whose objects are gone, which the next run deletes again; never an object without a row)."""
    last_id = kind.first_id
    while True:
        with session_scope(sessions) as db:
            rows = db.execute(select(kind.id, kind.key, kind.size).where(kind.id > last_id, expired, ~kind.held)
                              .order_by(kind.id).limit(batch)).all()
        if not rows:
            return
        last_id = rows[-1][0]
        keys = [r[1] for r in rows]
        failures = _delete(store, bucket, keys, counts, kind.name)
        if hook:
            hook(kind.name, keys)
        ids = [r[0] for r in rows if r[1] not in failures]
        with session_scope(sessions) as db:
            # re-check in the same statement: a row held meanwhile stays in the index
            n = db.execute(kind.forget(ids, expired).execution_options(synchronize_session=False)).rowcount or 0
        counts[f"{kind.name}_deleted"] += n
        kind.deleted_metric.inc(n)  # per batch: a crashed run's deletions count too
        if kind is _SEGMENTS:
            freed = sum(r[2] for r in rows if r[1] not in failures)
            counts["segment_bytes_deleted"] += freed
            metrics.RETENTION_BYTES.inc(freed)
        counts["batches"] += 1
