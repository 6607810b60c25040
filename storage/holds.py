"""Evidence holds: keep a camera's footage over a time range (or one face-pay capture) past retention.

A hold covers time, not segment ids, so footage indexed later inside the range is kept too. Holds
are released, never deleted: placing and releasing are both audit events.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from storage.audit import audit
from storage.models import Camera, EvidenceHold, Segment, Verification, utcnow


class HoldError(ValueError):
    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def view(h: EvidenceHold) -> dict:
    return {
        "id": h.id, "org_id": h.org_id, "camera_id": h.camera_id, "start": _iso(h.start_at), "end": _iso(h.end_at),
        "verification_id": h.verification_id, "flag_id": h.flag_id, "reason": h.reason,
        "created_by": h.created_by, "created_at": _iso(h.created_at), "released_at": _iso(h.released_at),
        "released_by": h.released_by, "active": h.released_at is None,
    }


def place_hold(db: Session, *, actor: str, reason: str, camera_id: str | None = None,
               start: datetime | None = None, end: datetime | None = None, verification_id: str | None = None,
               flag_id: str | None = None, request_id: str | None = None) -> EvidenceHold:
    """Hold a camera over [start, end) or one verification's capture."""
    reason = (reason or "").strip()
    if not reason:
        raise HoldError(400, "missing_reason", "a hold needs a reason (the case it is for)")
    if len(reason) > 500:
        raise HoldError(400, "invalid_reason", "reason must be at most 500 characters")
    if (camera_id is None) == (verification_id is None):
        raise HoldError(400, "invalid_hold", "give either camera_id with start and end, or verification_id")
    if camera_id is not None:
        if start is None or end is None:
            raise HoldError(400, "invalid_hold", "a camera hold needs start and end")
        if end <= start:
            raise HoldError(400, "invalid_range", "end must be after start")
        cam = db.get(Camera, camera_id)
        if cam is None:
            raise HoldError(404, "not_found", f"no camera {camera_id!r}")
        org_id = cam.org_id
    else:
        v = db.get(Verification, verification_id)
        if v is None:
            raise HoldError(404, "not_found", f"no verification {verification_id!r}")
        org_id, start, end = v.org_id, None, None
    hold = EvidenceHold(camera_id=camera_id, start_at=start, end_at=end, verification_id=verification_id,
                        org_id=org_id, reason=reason, flag_id=flag_id, created_by=actor)
    db.add(hold)
    db.flush()
    audit(db, actor=actor, action="hold.place", outcome="ok", org_id=org_id, subject=f"hold:{hold.id}",
          request_id=request_id, detail={"camera_id": camera_id, "start": _iso(start), "end": _iso(end),
                                         "verification_id": verification_id, "flag_id": flag_id},
          note=reason)
    return hold


def release_hold(db: Session, hold_id: str, *, actor: str, request_id: str | None = None,
                 note: str | None = None) -> EvidenceHold:
    hold = db.get(EvidenceHold, hold_id)
    if hold is None:
        raise HoldError(404, "not_found", f"no hold {hold_id!r}")
    if hold.released_at is not None:
        raise HoldError(409, "already_released", f"hold {hold_id} was released at {_iso(hold.released_at)}")
    hold.released_at, hold.released_by = utcnow(), actor
    audit(db, actor=actor, action="hold.release", outcome="ok", org_id=hold.org_id, subject=f"hold:{hold.id}",
          request_id=request_id, detail={"camera_id": hold.camera_id, "verification_id": hold.verification_id},
          note=note)
    return hold


def list_holds(db: Session, *, camera_id: str | None = None, org_id: str | None = None,
               active: bool | None = None) -> list[EvidenceHold]:
    q = select(EvidenceHold).order_by(EvidenceHold.created_at, EvidenceHold.id)
    if camera_id is not None:
        q = q.where(EvidenceHold.camera_id == camera_id)
    if org_id is not None:
        q = q.where(EvidenceHold.org_id == org_id)
    if active is True:
        q = q.where(EvidenceHold.released_at.is_(None))
    elif active is False:
        q = q.where(EvidenceHold.released_at.is_not(None))
    return list(db.scalars(q))


def segment_held():
    """SQL condition: an active hold covers the Segment row (same camera, overlapping time)."""
    return exists().where(and_(EvidenceHold.camera_id == Segment.camera_id, EvidenceHold.released_at.is_(None),
                               EvidenceHold.start_at < Segment.end_at, EvidenceHold.end_at > Segment.start_at))


def capture_held():
    """SQL condition: an active hold names the Verification row."""
    return exists().where(and_(EvidenceHold.verification_id == Verification.id,
                               EvidenceHold.released_at.is_(None)))


def is_held(db: Session, camera_id: str, start: datetime, end: datetime) -> bool:
    return db.scalar(select(exists().where(
        EvidenceHold.camera_id == camera_id, EvidenceHold.released_at.is_(None),
        EvidenceHold.start_at < end, EvidenceHold.end_at > start))) or False
