"""Flags: the inspectors' queue, review, online inquiry (网上质询), statistics, face evidence.

Who sees what is decided in api/scope.py. Every view of a flag's face crop or face-pay capture is an
audit event naming the caller; listings and flag views are audited too (who saw which flags).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from minio.error import S3Error
from pydantic import BaseModel, Field
from sqlalchemy import Text, cast, func, or_, select

from api.deps import principal, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.cameras import parse_time
from api.scope import can_see_flag, can_see_org, evidence_level, visible_orgs
from api.services import Services
from correlate import cases
from correlate.case_link import attach
from correlate.flags import view
from correlate.levels import DEFAULT_LEVELS
from correlate.stats import flag_stats
from kernel.timefmt import TimeInvalid, parse_day
from storage.audit import audit
from storage.db import session_scope
from storage.models import FLAG_STATES, Case, EvidenceHold, FaceEvidence, FaceTemplate, Flag, FlagEvent, Verification

router = APIRouter(prefix="/v1", tags=["flags"], responses=errors(*AUTHENTICATED, 409, 410))

FLAG_VIEWERS = ("admin", "inspector", "institution")


def _viewer(who: Principal = Depends(principal)) -> Principal:
    if who.role not in FLAG_VIEWERS:
        raise ApiError(403, "forbidden", f"a {who.role} key may not see flags")
    return who


def _get(db, flag_id: str, who: Principal) -> Flag:
    f = db.get(Flag, flag_id)
    if f is None or not can_see_flag(who, f.org_id, f.inquiry_state):
        raise ApiError(404, "not_found", f"no flag {flag_id!r}")
    return f


def _links(out: dict, flag: Flag, level: str = "full") -> dict:
    """URLs of the evidence the caller may open (none for limited evidence)."""
    ev = out.get("evidence") or {}
    if level != "full":
        return out
    for face in ev.get("faces") or []:
        if face.get("evidence_id"):
            face["crop_url"] = f"/v1/flags/{flag.id}/faces/{face['evidence_id']}"
    if ev.get("face_pay") and ev["face_pay"].get("capture"):
        ev["face_pay"]["capture_url"] = f"/v1/flags/{flag.id}/capture"
    for cam in ev.get("cameras") or []:
        if cam.get("start") and cam.get("end"):
            q = f"start={cam['start']}&end={cam['end']}".replace("+", "%2B")
            cam["replay_url"] = f"/v1/cameras/{cam['camera_id']}/clip?{q}"
    return out


def _by_settlement(settlement_id: str):
    """Flags naming a settlement, first or in a group. ``settlement_ids`` is a JSON list: matched on its
    text (the same on SQLite and PostgreSQL), the id quoted as a JSON string so a prefix never matches,
    LIKE's wildcards escaped (settlement ids may contain '_')."""
    quoted = '"' + settlement_id.replace("\\", "\\\\").replace('"', '\\"') + '"'
    pattern = "%" + quoted.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    return or_(Flag.settlement_id == settlement_id, cast(Flag.settlement_ids, Text).like(pattern, escape="!"))


def settlement_flags(db, settlement_id: str) -> list[Flag]:
    """Every flag raised for the settlement (also group flags it joined), oldest first."""
    return list(db.scalars(select(Flag).where(_by_settlement(settlement_id)).order_by(Flag.created_at, Flag.id)))


@router.get("/flags")
def list_flags(request: Request, org_id: str | None = None,
               settlement: str | None = Query(None, max_length=100, description="Only flags of this settlement_id"),
               type: str | None = Query(None, description="ghost_visit, impersonation, ..."),
               level: int | None = Query(None, ge=1, le=5), min_level: int | None = Query(None, ge=1, le=5),
               status: str | None = None, date_from: str | None = Query(None, alias="from"),
               date_to: str | None = Query(None, alias="to"), limit: int = Query(100, ge=1, le=1000),
               offset: int = Query(0, ge=0, le=2**31), rt: Services = Depends(runtime),
               who: Principal = Depends(_viewer)):
    """Flags the caller may see, newest settlement first. ``from``/``to`` filter on the settlement time
    (ISO 8601 with zone, or a date YYYY-MM-DD)."""
    if status is not None and status not in FLAG_STATES:
        raise ApiError(400, "invalid_status", f"status must be one of {', '.join(FLAG_STATES)}")
    if type is not None and type not in DEFAULT_LEVELS:
        raise ApiError(400, "invalid_type", f"type must be one of {', '.join(k for k in DEFAULT_LEVELS)}")
    q = select(Flag)
    orgs = visible_orgs(who)
    if orgs is not None:
        q = q.where(Flag.org_id.in_(sorted(orgs)))
    if who.role == "institution":
        q = q.where(Flag.inquiry_state.is_not(None))
    if org_id is not None:
        q = q.where(Flag.org_id == org_id)
    if settlement is not None:
        q = q.where(_by_settlement(settlement))
    if type is not None:
        q = q.where(Flag.type == type)
    if level is not None:
        q = q.where(Flag.level == level)
    if min_level is not None:
        q = q.where(Flag.level >= min_level)
    if status is not None:
        q = q.where(Flag.status == status)
    if date_from:
        q = q.where(Flag.occurred_at >= _when(date_from, "from"))
    if date_to:
        q = q.where(Flag.occurred_at < _when(date_to, "to", end=True))
    lvl = evidence_level(who)
    with session_scope(rt.sessions) as db:
        total = db.scalar(select(func.count()).select_from(q.subquery()))
        rows = list(db.scalars(q.order_by(Flag.occurred_at.desc(), Flag.id).limit(limit).offset(offset)))
        audit(db, actor=who.actor, action="flags.list", outcome="ok", request_id=request.state.request_id,
              detail={"count": len(rows), "org_id": org_id, "type": type, "status": status,
                      "settlement": settlement})
        return {"total": total, "flags": [_links(view(f, evidence=lvl), f, lvl) for f in rows]}


def _when(v: str, name: str, end: bool = False) -> datetime:
    if len(v.strip()) == 10:
        try:
            d = datetime.combine(parse_day(v, name), time(0), tzinfo=timezone.utc)
        except TimeInvalid as e:
            raise ApiError(400, "invalid_time", e.reason) from None
        return d + timedelta(days=1) if end else d
    return parse_time(v, name)


@router.get("/flags/stats")
def stats(request: Request, date_from: str | None = Query(None, alias="from"),
          date_to: str | None = Query(None, alias="to"), rt: Services = Depends(runtime),
          who: Principal = Depends(_viewer)):
    """Per rule and organisation: flagged, open, inquiry, confirmed, dismissed, confirmation rate
    (confirmed / decided)."""
    if who.role == "institution":
        raise ApiError(403, "forbidden", "statistics are for inspectors")
    with session_scope(rt.sessions) as db:
        return flag_stats(db, org_ids=visible_orgs(who),
                          since=_when(date_from, "from") if date_from else None,
                          until=_when(date_to, "to", end=True) if date_to else None)


@router.get("/flags/{flag_id}")
def get_flag(flag_id: str, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(_viewer)):
    with session_scope(rt.sessions) as db:
        f = _get(db, flag_id, who)
        events = list(db.scalars(select(FlagEvent).where(FlagEvent.flag_id == f.id).order_by(FlagEvent.id)))
        holds = list(db.scalars(select(EvidenceHold).where(EvidenceHold.flag_id == f.id,
                                                           EvidenceHold.org_id == f.org_id)
                                .order_by(EvidenceHold.created_at)))
        audit(db, actor=who.actor, action="flag.view", outcome="ok", org_id=f.org_id, subject=f"flag:{f.id}",
              request_id=request.state.request_id)
        lvl = evidence_level(who)
        return _links(view(f, evidence=lvl, events=events, holds=holds), f, lvl)


class ReviewIn(BaseModel):
    decision: Literal["confirm", "dismiss"]
    note: str = Field(..., min_length=1, max_length=4000, description="Why: required for the audit trail.")


class InquiryIn(BaseModel):
    action: Literal["send", "answer"] = Field(..., description="send (inspector) or answer (institution user)")
    note: str = Field(..., min_length=1, max_length=4000, description="The question or the answer.")



@router.post("/flags/{flag_id}/review")
def post_review(flag_id: str, body: ReviewIn, request: Request, rt: Services = Depends(runtime),
                who: Principal = Depends(_viewer)):
    """Confirm or dismiss (inspector or admin). Dismissal releases the flag's evidence holds."""
    if who.role not in ("inspector", "admin"):
        raise ApiError(403, "forbidden", "only an inspector decides a flag")
    with session_scope(rt.sessions) as db:
        f = _get(db, flag_id, who)
        # a finding is decided with its case: once, for all the case's findings (correlate/cases.py)
        cases.decide(db, _case_of(db, f), body.decision, actor=who.actor, role=who.role, note=body.note.strip(),
                     request_id=request.state.request_id, legal=rt.legal_holds)
        return view(f, evidence=evidence_level(who))


@router.post("/flags/{flag_id}/inquiry")
def post_inquiry(flag_id: str, body: InquiryIn, request: Request, rt: Services = Depends(runtime),
                 who: Principal = Depends(_viewer)):
    """``send``: an inspector sends the online inquiry to the institution (flag -> inquiry).
    ``answer``: the institution's user answers it (the inspector then confirms or dismisses)."""
    if body.action == "send" and who.role not in ("inspector", "admin"):
        raise ApiError(403, "forbidden", "only an inspector sends an inquiry")
    if body.action == "answer" and who.role != "institution":
        raise ApiError(403, "forbidden", "only the institution answers an inquiry")
    with session_scope(rt.sessions) as db:
        f = _get(db, flag_id, who)
        c = _case_of(db, f)  # the inquiry is the case's
        if body.action == "send":
            cases.send_inquiry(db, c, actor=who.actor, role=who.role, note=body.note.strip(), settings=rt.settings,
                               request_id=request.state.request_id)
        else:
            cases.answer_inquiry(db, c, actor=who.actor, role=who.role, note=body.note.strip(), settings=rt.settings,
                                 request_id=request.state.request_id)
        return view(f, evidence=evidence_level(who))


def _case_of(db, f: Flag) -> Case:
    c = db.get(Case, f.case_id) if f.case_id else None
    if c is None:  # a flag written by code older than cases and not migrated: it becomes its own case now
        c = attach(db, f, actor="correlate")
    return c


@router.get("/flags/{flag_id}/faces/{evidence_id}")
def face_crop(flag_id: str, evidence_id: str, request: Request, rt: Services = Depends(runtime),
              who: Principal = Depends(_viewer)):
    """A face crop of the flag's evidence (JPEG). Biometric: inspectors of the region and admins only;
    every view is audited."""
    with session_scope(rt.sessions) as db:
        f = _get(db, flag_id, who)
        fe = db.get(FaceEvidence, evidence_id)
        listed = {x.get("evidence_id") for x in (f.evidence or {}).get("faces") or []}
        if fe is None or evidence_id not in listed or not can_see_org(who, fe.org_id) \
                or evidence_level(who) != "full":
            raise ApiError(404, "not_found", "no such face in this flag's evidence")
        audit(db, actor=who.actor, action="evidence.face.view", outcome="ok", org_id=fe.org_id,
              subject=f"face_evidence:{fe.id}", request_id=request.state.request_id, detail={"flag_id": f.id})
        key = fe.crop_key
    return _image(rt, key, "the face crop is no longer stored")


@router.get("/flags/{flag_id}/capture")
def face_pay_capture(flag_id: str, request: Request, rt: Services = Depends(runtime),
                     who: Principal = Depends(_viewer)):
    """The face-pay capture of the flag's settlement (biometric; audited)."""
    with session_scope(rt.sessions) as db:
        f = _get(db, flag_id, who)
        vid = ((f.evidence or {}).get("face_pay") or {}).get("verification_id")
        v = db.get(Verification, vid) if vid else None
        if v is None or not v.capture_key or not can_see_org(who, v.org_id) or evidence_level(who) != "full":
            raise ApiError(404, "not_found", "this flag has no face-pay capture")
        audit(db, actor=who.actor, action="evidence.capture.view", outcome="ok", org_id=v.org_id,
              subject=f"verification:{v.id}", request_id=request.state.request_id, detail={"flag_id": f.id})
        key = v.capture_key
    return _image(rt, key, "the capture is no longer stored (past its retention)")


@router.get("/flags/{flag_id}/photos/{template_id}")
def enrolled_photo(flag_id: str, template_id: str, request: Request, rt: Services = Depends(runtime),
                   who: Principal = Depends(_viewer)):
    """An enrolled photo (参保人照片) of the flag's insured person, listed in its evidence (biometric;
    inspectors of the region and admins only; audited)."""
    with session_scope(rt.sessions) as db:
        f = _get(db, flag_id, who)
        listed = {p.get("template_id") for p in (f.evidence or {}).get("insured_photos") or []}
        tpl = db.get(FaceTemplate, template_id[:64])
        if tpl is None or template_id not in listed or evidence_level(who) != "full":
            raise ApiError(404, "not_found", "no such enrolled photo in this flag's evidence")
        audit(db, actor=who.actor, action="evidence.photo.view", outcome="ok", org_id=f.org_id,
              subject=f"face_template:{tpl.id}", request_id=request.state.request_id, detail={"flag_id": f.id})
        key = tpl.photo_key
    return _image(rt, key, "the enrolled photo is no longer stored (erased)")


def _image(rt: Services, key: str, gone: str) -> Response:
    """A biometric image from the store; never cached by the browser; 410 once it was deleted."""
    try:
        data = rt.store.get_bytes(rt.settings.bucket_biometrics, key)
    except S3Error as e:
        if e.code in ("NoSuchKey", "NoSuchObject"):
            raise ApiError(410, "gone", gone) from None
        raise
    kind = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"  # we store only these two
    return Response(data, media_type=kind, headers={"Cache-Control": "private, no-store"})
