"""Evidence holds: keep a camera's footage over a time range (or one face-pay capture) past retention.

A hold covers time, not segment ids, so footage indexed later inside the range is kept too. Holds
are released, never deleted: placing and releasing are both audit events.

Where the bucket has S3 object lock (``DUALCHECK_S3_OBJECT_LOCK``), the store enforces holds too:
placing one turns the S3 legal hold on for every version of every object it covers (the camera's
segments in the range, the verification's capture, the face crops of the flag's settlements), so no
delete - not even one racing the hold from a retention batch picked just before - can remove them;
releasing turns it off only where no other active hold covers the object. Segments indexed later
inside an active hold get it when indexed (``legal_hold_new_segment``). The store calls run before
the caller commits: if the store fails, the hold is not placed (HoldError 503).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from minio.error import S3Error
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session
from urllib3.exceptions import HTTPError

from kernel.errors import Refusal
from kernel.settings import Settings
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.models import (
    Camera,
    EvidenceHold,
    FaceEvidence,
    Flag,
    Segment,
    Verification,
    utcnow,
)
from storage.objects import ObjectStore

log = logging.getLogger("dualcheck.holds")


@dataclass(frozen=True)
class LegalHolds:
    """Where holds are mirrored as S3 legal holds: the store and the buckets named by the settings."""
    store: ObjectStore
    settings: Settings


class HoldError(Refusal):
    """A hold that cannot be placed or released (bad range, unknown camera, store unavailable)."""



def view(h: EvidenceHold) -> dict:
    return {
        "id": h.id, "org_id": h.org_id, "camera_id": h.camera_id, "start": iso_z(h.start_at), "end": iso_z(h.end_at),
        "verification_id": h.verification_id, "flag_id": h.flag_id, "reason": h.reason,
        "created_by": h.created_by, "created_at": iso_z(h.created_at), "released_at": iso_z(h.released_at),
        "released_by": h.released_by, "active": h.released_at is None,
    }


def place_hold(db: Session, *, actor: str, reason: str, camera_id: str | None = None,
               start: datetime | None = None, end: datetime | None = None, verification_id: str | None = None,
               flag_id: str | None = None, request_id: str | None = None,
               legal: LegalHolds | None) -> EvidenceHold:
    """Hold a camera over [start, end) or one verification's capture.

    ``legal`` mirrors the hold into the object store's legal holds (object-lock buckets); it is a
    required argument so that no caller forgets the store by accident (None: the index only)."""
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
    if flag_id is not None:
        # a hold names only a flag of the organisation it holds for: a flag's view lists the holds
        # naming it and its dismissal releases them, so a hold naming another organisation's flag
        # would show in (and be released by) a scope its author cannot see. Unknown and foreign
        # flags are refused alike, so the answer does not tell whether the flag exists.
        flag = db.get(Flag, flag_id)
        if flag is None or flag.org_id != org_id:
            raise HoldError(404, "not_found", f"no flag {flag_id[:64]!r} of this hold's organisation")
    hold = EvidenceHold(camera_id=camera_id, start_at=start, end_at=end, verification_id=verification_id,
                        org_id=org_id, reason=reason, flag_id=flag_id, created_by=actor)
    db.add(hold)
    db.flush()
    legal_n = _set_legal_holds(db, hold, True, legal)
    audit(db, actor=actor, action="hold.place", outcome="ok", org_id=org_id, subject=f"hold:{hold.id}",
          request_id=request_id, detail={"camera_id": camera_id, "start": iso_z(start), "end": iso_z(end),
                                         "verification_id": verification_id, "flag_id": flag_id,
                                         "legal_holds_on": legal_n},
          note=reason)
    return hold


def release_hold(db: Session, hold_id: str, *, actor: str, request_id: str | None = None,
                 note: str | None = None, legal: LegalHolds | None) -> EvidenceHold:
    hold = db.get(EvidenceHold, hold_id)
    if hold is None:
        raise HoldError(404, "not_found", f"no hold {hold_id!r}")
    if hold.released_at is not None:
        raise HoldError(409, "already_released", f"hold {hold_id} was released at {iso_z(hold.released_at)}")
    hold.released_at, hold.released_by = utcnow(), actor
    db.flush()  # the "still held by another hold" queries below must not count this one
    legal_n = _set_legal_holds(db, hold, False, legal)
    audit(db, actor=actor, action="hold.release", outcome="ok", org_id=hold.org_id, subject=f"hold:{hold.id}",
          request_id=request_id, detail={"camera_id": hold.camera_id, "verification_id": hold.verification_id,
                                         "legal_holds_off": legal_n},
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


# --- store-side legal holds (object-lock buckets) --------------------------------------------------


def _covered(db: Session, hold: EvidenceHold, settings) -> dict[str, set[str]]:
    """bucket -> object keys the hold covers."""
    out: dict[str, set[str]] = {settings.bucket_footage: set(), settings.bucket_biometrics: set()}
    if hold.camera_id is not None:
        out[settings.bucket_footage] |= set(db.scalars(select(Segment.object_key).where(
            Segment.camera_id == hold.camera_id, Segment.start_at < hold.end_at, Segment.end_at > hold.start_at)))
    if hold.verification_id is not None:
        key = db.scalar(select(Verification.capture_key).where(Verification.id == hold.verification_id))
        if key:
            out[settings.bucket_biometrics].add(key)
    if hold.flag_id is not None:
        out[settings.bucket_biometrics] |= _flag_crops(db, [hold.flag_id])
    return out


def _flag_crops(db: Session, flag_ids) -> set[str]:
    settlements: set[str] = set()
    for ids in db.scalars(select(Flag.settlement_ids).where(Flag.id.in_(list(flag_ids)))):
        settlements |= set(ids or [])
    if not settlements:
        return set()
    return set(db.scalars(select(FaceEvidence.crop_key).where(FaceEvidence.settlement_id.in_(settlements))))


def _still_held(db: Session, bucket_keys: dict[str, set[str]], settings) -> dict[str, set[str]]:
    """Of these objects, those another active hold still covers (after this one was released)."""
    footage = bucket_keys.get(settings.bucket_footage, set())
    bio = bucket_keys.get(settings.bucket_biometrics, set())
    keep_f = set(db.scalars(select(Segment.object_key).where(Segment.object_key.in_(footage), segment_held()))) \
        if footage else set()
    keep_b: set[str] = set()
    if bio:
        keep_b |= set(db.scalars(select(Verification.capture_key).where(Verification.capture_key.in_(bio),
                                                                        capture_held())))
        active_flags = set(db.scalars(select(EvidenceHold.flag_id).where(
            EvidenceHold.flag_id.is_not(None), EvidenceHold.released_at.is_(None))))
        if active_flags:
            keep_b |= _flag_crops(db, active_flags) & bio
    return {settings.bucket_footage: keep_f, settings.bucket_biometrics: keep_b}


def _set_legal_holds(db: Session, hold: EvidenceHold, on: bool, legal: LegalHolds | None) -> int:
    """Mirror placing (on) or releasing (off) the hold into S3 legal holds. Returns versions changed."""
    if legal is None:
        return 0
    store, settings = legal.store, legal.settings
    covered = _covered(db, hold, settings)
    if not on:
        still = _still_held(db, covered, settings)
        covered = {b: keys - still.get(b, set()) for b, keys in covered.items()}
    n = 0
    try:
        for bucket, keys in covered.items():
            if keys:
                n += store.set_legal_hold(bucket, sorted(keys), on)
    except (S3Error, HTTPError, OSError) as e:
        log.warning("object store: legal hold %s for hold %s failed: %s", "on" if on else "off", hold.id,
                    type(e).__name__)
        raise HoldError(503, "store_unavailable", "the object store did not take the legal hold; "
                        "the hold was not " + ("placed" if on else "released") + ", try again") from e
    return n


def legal_hold_new_segment(db: Session, store, bucket: str, camera_id: str, start: datetime, end: datetime,
                           key: str) -> bool:
    """A segment indexed inside an active hold's range gets the S3 legal hold (holds cover time).
    Call after the segment's row is committed. True if it was held."""
    if not store.locked(bucket) or not is_held(db, camera_id, start, end):
        return False
    store.set_legal_hold(bucket, [key], True)
    return True
