"""Append-only audit trail. Callers pass ids and counts, never images, templates or secrets.

Each event also records whom and what it concerns (insured person, flag, camera), derived here from
its subject and detail, so the trail can be read per person, flag or camera (``read_trail``,
``iter_trail``: api/routes/audit.py, the /audit page) without every caller knowing about it.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from kernel.timefmt import iso_z
from storage.models import AuditEvent, FaceEvidence, Flag, Settlement, Verification, utcnow

_INSERT_EVENT = insert(AuditEvent.__table__)  # audit_insert: one statement, its cache key computed once
# the one action value that is not an action: every refused request (its action is "METHOD path")
REFUSED = "refused"


def _ref(value, size: int) -> str | None:
    return value[:size] if isinstance(value, str) and value else None


def _refs(session: Session, subject: str | None, detail: dict) -> dict:
    """insured_id, flag_id, camera_id of an event: from the detail, the subject, and the rows it names."""
    refs = {"insured_id": _ref(detail.get("insured_id"), 64), "flag_id": _ref(detail.get("flag_id"), 32),
            "camera_id": _ref(detail.get("camera_id"), 64)}
    kind, _, ident = (subject or "").partition(":")
    if ident:
        if kind == "insured":
            refs["insured_id"] = refs["insured_id"] or ident[:64]
        elif kind == "flag":
            refs["flag_id"] = refs["flag_id"] or ident[:32]
        elif kind == "camera":
            refs["camera_id"] = refs["camera_id"] or ident[:64]
        elif kind == "verification" and not refs["insured_id"]:
            v = session.get(Verification, ident)
            refs["insured_id"] = v.insured_id if v is not None else None
        elif kind == "settlement" and not refs["insured_id"]:
            s = session.get(Settlement, ident)
            refs["insured_id"] = s.insured_id if s is not None else None
        elif kind == "face_evidence" and not refs["camera_id"]:
            fe = session.get(FaceEvidence, ident)
            refs["camera_id"] = fe.camera_id if fe is not None else None
    if refs["flag_id"] and not refs["insured_id"]:
        # a flag's person is its settlement's (a group flag: the settlement that raised it)
        flag = session.get(Flag, refs["flag_id"])
        s = session.get(Settlement, flag.settlement_id) if flag is not None and flag.settlement_id else None
        refs["insured_id"] = s.insured_id if s is not None else None
    return refs


def audit(
    session: Session, *, actor: str, action: str, outcome: str, org_id: str | None = None,
    subject: str | None = None, request_id: str | None = None, detail: dict | None = None,
    note: str | None = None,
) -> AuditEvent:
    detail = detail or {}
    event = AuditEvent(actor=actor, action=action, outcome=outcome, org_id=org_id, subject=subject,
                       request_id=request_id, detail=detail, note=note, **_refs(session, subject, detail))
    session.add(event)
    return event


def audit_insert(
    session: Session, *, actor: str, action: str, outcome: str, org_id: str | None = None,
    subject: str | None = None, request_id: str | None = None, detail: dict | None = None,
    note: str | None = None,
) -> None:
    """The same event as :func:`audit`, written at once by one Core insert (no ORM object, no flush): for the
    transactions of hot paths (a face-pay verification)."""
    detail = detail or {}
    session.execute(_INSERT_EVENT, dict(
        at=utcnow(), actor=actor, action=action, outcome=outcome, org_id=org_id, subject=subject,
        request_id=request_id, detail=detail, note=note, **_refs(session, subject, detail)))


# --- reading the trail --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailFilter:
    """What to read; None: any. ``actor`` is an actor as written (``user:wang``, ``key:<id>``, ``cli``) or a
    bare name matching ``user:``/``key:``/``login:`` of it; ``action`` an action, a prefix ending in ``*``
    (``evidence.*``) or ``refused`` (every refused request); ``since`` inclusive, ``until`` exclusive."""

    actor: str | None = None
    org_id: str | None = None
    insured_id: str | None = None
    flag_id: str | None = None
    camera_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_id: int | None = None  # a snapshot: events written after the first page (reads of it too) stay out

    def as_dict(self) -> dict:
        """The filter as an audit detail (times as ISO text), without the unset ones."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = iso_z(v) if isinstance(v, datetime) else v
        return out


def _conditions(f: TrailFilter) -> list:
    c = []
    if f.actor:
        c.append(AuditEvent.actor == f.actor if ":" in f.actor else
                 AuditEvent.actor.in_([f.actor, f"user:{f.actor}", f"key:{f.actor}", f"login:{f.actor}"]))
    for value, column in ((f.org_id, AuditEvent.org_id), (f.insured_id, AuditEvent.insured_id),
                          (f.flag_id, AuditEvent.flag_id), (f.camera_id, AuditEvent.camera_id)):
        if value:
            c.append(column == value)
    if f.action == REFUSED:
        c.append(AuditEvent.outcome.like("refused:%"))
    elif f.action and f.action.endswith("*"):
        prefix = f.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        c.append(AuditEvent.action.like(prefix + "%", escape="\\"))
    elif f.action:
        c.append(AuditEvent.action == f.action)
    if f.since is not None:
        c.append(AuditEvent.at >= f.since)
    if f.until is not None:
        c.append(AuditEvent.at < f.until)
    if f.max_id is not None:
        c.append(AuditEvent.id <= f.max_id)
    return c


def read_trail(session: Session, f: TrailFilter, *, limit: int, offset: int = 0) -> tuple[int, list[AuditEvent]]:
    """(how many events match, one page of them, newest first)."""
    conds = _conditions(f)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conds)) or 0
    rows = list(session.scalars(select(AuditEvent).where(*conds)
                                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)))
    return total, rows


def last_event_id(session: Session) -> int:
    return session.scalar(select(func.max(AuditEvent.id))) or 0


def count_trail(session: Session, f: TrailFilter) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(*_conditions(f))) or 0


def iter_trail(sessions, f: TrailFilter, *, max_rows: int, batch: int = 1000) -> Iterator[AuditEvent]:
    """Up to ``max_rows`` matching events, newest first, read ``batch`` at a time, each batch in its own
    short session (an export of many rows holds no transaction open while the client reads slowly).
    Paged by (at, id), not by offset, so rows written meanwhile neither repeat nor shift the pages."""
    conds = _conditions(f)
    after: tuple | None = None
    left = max_rows
    while left > 0:
        q = select(AuditEvent).where(*conds)
        if after is not None:
            at, eid = after
            q = q.where(or_(AuditEvent.at < at, (AuditEvent.at == at) & (AuditEvent.id < eid)))
        with sessions() as db:
            rows = list(db.scalars(q.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(min(batch, left))))
            db.expunge_all()
        if not rows:
            return
        yield from rows
        left -= len(rows)
        after = (rows[-1].at, rows[-1].id)


def event_dict(e: AuditEvent) -> dict:
    return {"id": e.id, "at": iso_z(e.at), "actor": e.actor, "action": e.action, "outcome": e.outcome,
            "org_id": e.org_id, "insured_id": e.insured_id, "flag_id": e.flag_id, "camera_id": e.camera_id,
            "subject": e.subject, "request_id": e.request_id, "detail": e.detail or {}, "note": e.note}
