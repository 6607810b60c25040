"""Camera leases: several `dualcheck record` processes share a region's cameras without overlap.

Each camera has at most one lease row (``camera_leases``); a recorder records a camera only while it
holds a valid lease, renews its leases every ``ttl / 3`` and heartbeats in ``recorders``. When a
recorder dies its leases expire after the TTL and the others claim them; when one joins, the others
release their extra cameras (after the camera's thread stopped and flushed its last segment).

Why the database clock: expiry is judged by one clock (``now()`` of the database), so a recorder
whose host clock is off cannot steal a lease early or keep one late. Every claim is a conditional
UPDATE (or an INSERT that the primary key makes unique), so two recorders can never both hold one
camera: the loser's statement matches no row.

Fair share: with ``n`` cameras and ``r`` live recorders each holds ``floor(n/r)`` or ``ceil(n/r)``.
:func:`decide` is the whole balancing rule, pure so it can be reasoned about and tested alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, delete, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from storage.models import CameraLease, CameraStatus, RecorderHeartbeat, Segment, UTCDateTime

FAILOVER = "recorder_failover"  # the holder stopped renewing (killed, host lost): the lease expired
HANDOVER = "recorder_handover"  # a running holder released the camera to another recorder (rebalancing)
RESTART = "recorder_restart"  # the holder stopped (or crashed, same id) and recording starts again


class db_now(FunctionElement):
    """The database's current time plus ``offset_s`` seconds, as a timestamp (UTC)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset_s: float = 0.0):
        super().__init__(literal(float(offset_s), Float()))


@compiles(db_now)
def _db_now_pg(element, compiler, **kw):
    return f"(now() + make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element, compiler, **kw):
    # the text layout SQLAlchemy stores for SQLite datetimes (microseconds), so comparisons sort right
    return ("strftime('%Y-%m-%d %H:%M:%f000', 'now', "
            f"printf('%+.3f seconds', {compiler.process(element.clauses, **kw)}))")


# --- heartbeats --------------------------------------------------------------------------------
def other_incarnation_alive(db: Session, recorder_id: str, ttl_s: float) -> bool:
    """A process with this recorder id heartbeat within the TTL (a duplicate id, or our own previous
    incarnation that may still be running): its leases must not be taken over as ours yet."""
    return db.scalar(select(func.count()).select_from(RecorderHeartbeat).where(
        RecorderHeartbeat.id == recorder_id, RecorderHeartbeat.seen_at > db_now(-ttl_s))) > 0


def heartbeat(db: Session, recorder_id: str, host: str, shard: str, first: bool = False) -> None:
    vals = {"host": host, "shard": shard, "seen_at": db_now()}
    if first:
        vals["started_at"] = db_now()
    n = db.execute(update(RecorderHeartbeat).where(RecorderHeartbeat.id == recorder_id).values(**vals)).rowcount
    if n == 0:
        db.execute(insert(RecorderHeartbeat).values(id=recorder_id, **{"started_at": db_now(), **vals}))


def live_recorders(db: Session, shard: str, ttl_s: float) -> list[str]:
    return list(db.scalars(select(RecorderHeartbeat.id).where(
        RecorderHeartbeat.shard == shard, RecorderHeartbeat.seen_at > db_now(-ttl_s))))


def forget_recorder(db: Session, recorder_id: str) -> None:
    db.execute(delete(RecorderHeartbeat).where(RecorderHeartbeat.id == recorder_id))


# --- leases ------------------------------------------------------------------------------------
def renew(db: Session, recorder_id: str, camera_ids, ttl_s: float) -> set[str]:
    """Extend our leases on ``camera_ids``; returns those we still hold (the others were lost)."""
    ids = list(camera_ids)
    if not ids:
        return set()
    db.execute(update(CameraLease).where(CameraLease.holder == recorder_id, CameraLease.camera_id.in_(ids))
               .values(expires_at=db_now(ttl_s)))
    return set(db.scalars(select(CameraLease.camera_id).where(CameraLease.holder == recorder_id,
                                                              CameraLease.camera_id.in_(ids))))


def holder_counts(db: Session, camera_ids) -> dict[str, int]:
    """Valid leases per holder among ``camera_ids``."""
    rows = db.execute(select(CameraLease.holder, func.count()).where(
        CameraLease.camera_id.in_(list(camera_ids)), CameraLease.holder.is_not(None),
        CameraLease.expires_at > db_now()).group_by(CameraLease.holder)).all()
    return {h: n for h, n in rows}


def _claimable(recorder_id: str):
    # free, expired, or held under our own id by a previous (dead) incarnation of this recorder
    return or_(CameraLease.holder.is_(None), CameraLease.expires_at <= db_now(), CameraLease.holder == recorder_id)


def free_cameras(db: Session, camera_ids, recorder_id: str, mine=()) -> list[str]:
    """Cameras among ``camera_ids`` this recorder could claim now (sorted)."""
    ids = set(camera_ids) - set(mine)
    if not ids:
        return []
    leased = dict(db.execute(select(CameraLease.camera_id, _claimable(recorder_id))
                             .where(CameraLease.camera_id.in_(list(ids)))).all())
    return sorted(c for c in ids if c not in leased or leased[c])


@dataclass
class Claim:
    camera_id: str
    gap_reason: str | None  # why the camera was not recorded before our first segment
    gap_start: datetime | None  # the end of the last footage known (None: no gap to record)
    previous_holder: str | None


def claim(db: Session, camera_id: str, recorder_id: str, ttl_s: float) -> Claim | None:
    """Take the lease if it is free or expired. None if another recorder holds it (or won the race).

    Commits: a claim must be visible to the others before the camera is recorded."""
    row = db.execute(select(CameraLease.holder, CameraLease.expires_at <= db_now(), CameraLease.previous_holder,
                            CameraLease.last_end_at).where(CameraLease.camera_id == camera_id)).first()
    if row is None:
        try:
            db.execute(insert(CameraLease).values(camera_id=camera_id, holder=recorder_id, acquired_at=db_now(),
                                                  expires_at=db_now(ttl_s)))
            db.commit()
        except IntegrityError:  # another recorder inserted it first
            db.rollback()
            return None
        reason, prev, last_end = RESTART, None, None  # never leased: recorded before leases, or new
    else:
        holder, expired, prev_holder, last_end = row
        n = db.execute(update(CameraLease).where(CameraLease.camera_id == camera_id, _claimable(recorder_id))
                       .values(holder=recorder_id, acquired_at=db_now(), expires_at=db_now(ttl_s),
                               previous_holder=holder or prev_holder, last_end_at=None)).rowcount
        db.commit()
        if n != 1:
            return None
        if holder is None:  # released cleanly: a handover if the giver still runs, else it stopped (a restart)
            stopped = prev_holder == recorder_id or not (prev_holder and other_incarnation_alive(db, prev_holder, ttl_s))
            reason, prev = (RESTART if stopped else HANDOVER), prev_holder
        else:
            reason, prev = (RESTART if holder == recorder_id else FAILOVER), holder
    known_end = [t for t in (last_end, _last_footage_end(db, camera_id)) if t is not None]
    gap_start = max(known_end) if known_end else None
    return Claim(camera_id, reason if gap_start else None, gap_start, prev)


def _last_footage_end(db: Session, camera_id: str) -> datetime | None:
    """End of the camera's last footage: indexed, or reported by the recorder that had it (its last
    segments may still wait in that recorder's spool)."""
    seg = db.scalar(select(func.max(Segment.end_at)).where(Segment.camera_id == camera_id, Segment.stream == "main"))
    st = db.scalar(select(CameraStatus.last_segment_end).where(CameraStatus.camera_id == camera_id))
    if isinstance(seg, str):  # SQLite aggregates lose the column type
        seg = UTCDateTime().process_result_value(datetime.fromisoformat(seg), None)
    known = [t for t in (seg, st) if t is not None]
    return max(known) if known else None


def release(db: Session, camera_id: str, recorder_id: str, last_end: datetime | None) -> bool:
    """Give a camera up (its recording thread has stopped and flushed). False if it was not ours."""
    n = db.execute(update(CameraLease).where(CameraLease.camera_id == camera_id, CameraLease.holder == recorder_id)
                   .values(holder=None, expires_at=db_now(), previous_holder=recorder_id,
                           last_end_at=last_end)).rowcount
    return n == 1


# --- balancing ---------------------------------------------------------------------------------
def fair_share(n_cameras: int, n_recorders: int) -> tuple[int, int]:
    """(floor, ceil) of the cameras per recorder."""
    r = max(1, n_recorders)
    return n_cameras // r, math.ceil(n_cameras / r)


def decide(me: str, counts: dict[str, int], n_cameras: int, n_free: int) -> int:
    """How many cameras this recorder should claim (> 0) or release (< 0) now.

    ``counts``: cameras held per LIVE recorder (every live one, 0 included; ``me`` too). Rules, chosen
    so that rebalancing converges without flapping:

    * above ceil: release down to ceil (a recorder joined, or the camera count fell);
    * below ceil with free cameras: claim, but only the least loaded recorders (or those under floor)
      claim, so a camera just released goes to the recorder that needs it, not back to the giver;
    * at ceil, nothing free, and some recorder is under floor: the first such full recorder (by id,
      so exactly one) releases one camera.
    """
    counts = dict(counts)
    counts.setdefault(me, 0)
    lo, hi = fair_share(n_cameras, len(counts))
    mine = counts[me]
    if mine > hi:
        return hi - mine
    if mine < hi and n_free:
        if mine < lo or mine == min(counts.values()):
            return min(hi - mine, n_free)
        return 0
    if not n_free and mine == hi and hi > lo and any(c < lo for c in counts.values()):
        if min(r for r, c in counts.items() if c == hi) == me:
            return -1
    return 0
