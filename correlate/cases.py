"""Cases: what inspectors decide. One case holds the findings (flags) about one settlement, or one group
flag; it is decided once, with one note, and the decision covers every open finding.

Workflow (the flags' own workflow, lifted to the case; each step also lands in every open finding's history)::

    open --inquiry (inspector; not level 5: definite, it is confirmed)--> inquiry
    inquiry (sent) --read (institution opens it: 签收)--> inquiry (sent, acknowledged)
    inquiry (sent) --answer (institution, with attachments)--> inquiry (answered: 已答复 until decided)
    open | inquiry --confirm | dismiss--> confirmed | dismissed
    open (levels 1-2, reminders) --acknowledge (已阅, also in bulk with one note)--> acknowledged

An inquiry has two deadlines counted in working days (Monday-Friday in ``web_timezone``) from when it was
sent: to acknowledge it and to answer it (settings ``inquiry_*_working_days``, per level
``inquiry_deadlines_by_level``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import filetype
from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate.case_link import OPEN_STATES
from correlate.flags import record_event as flag_event
from correlate.flags import release_holds
from correlate.reasons import scrub_scores
from kernel.errors import Refusal
from kernel.settings import Settings
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.holds import LegalHolds
from storage.models import Case, CaseAttachment, CaseEvent, Flag, new_id, utcnow

DECISIONS = {"confirm": "confirmed", "dismiss": "dismissed", "acknowledge": "acknowledged"}
REMINDER_LEVELS = (1, 2)  # 提醒: acknowledged (已阅), no inquiry needed
DEFINITE_LEVEL = 5  # 确定违规: confirmed, never sent as an inquiry
ATTACHMENT_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


class CaseError(Refusal):
    """A step that does not apply to this case now (wrong state, wrong level, bad file)."""


def findings(db: Session, case: Case) -> list[Flag]:
    """The case's findings, highest level first."""
    return list(db.scalars(select(Flag).where(Flag.case_id == case.id)
                           .order_by(Flag.level.desc(), Flag.created_at, Flag.id)))


def events(db: Session, case: Case) -> list[CaseEvent]:
    return list(db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))


def _event(db: Session, case: Case, *, actor: str, role: str, action: str, from_status: str | None,
           note: str | None = None, request_id: str | None = None, detail: dict | None = None) -> CaseEvent:
    ev = CaseEvent(case_id=case.id, actor=actor, role=role, action=action, from_status=from_status,
                   to_status=case.status, note=note, at=utcnow())
    db.add(ev)
    audit(db, actor=actor, action=f"case.{action}", outcome="ok", org_id=case.org_id, subject=f"case:{case.id}",
          request_id=request_id, note=note,
          detail={"level": case.level, "from": from_status, "to": case.status, **(detail or {})})
    return ev


# --- deadlines --------------------------------------------------------------------------------------


def add_working_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """``start`` plus ``days`` working days (Monday-Friday, local time of ``tz``): the same local time of
    day on the ``days``-th working day after it."""
    t = start.astimezone(tz)
    n = 0
    while n < days:
        t = t + timedelta(days=1)
        if t.weekday() < 5:
            n += 1
    return t.astimezone(start.tzinfo)


def deadline_days(settings: Settings, level: int) -> tuple[int, int]:
    ack, answer = settings.inquiry_deadlines_by_level.get(level) or (settings.inquiry_ack_working_days,
                                                                      settings.inquiry_answer_working_days)
    return int(ack), int(answer)


def deadlines(case: Case, now: datetime | None = None) -> dict:
    """The inquiry's deadlines as shown: due time, seconds remaining (negative: overdue), whether met."""
    now = now or utcnow()
    out = {}
    for name, due, met in (("ack", case.ack_due_at, case.acknowledged_at), ("answer", case.answer_due_at,
                                                                             case.answered_at)):
        if due is None:
            continue
        out[name] = {"due": due, "met_at": met, "remaining_s": None if met else (due - now).total_seconds(),
                     "overdue": (met or now) > due}
    return out


def overdue(case: Case, now: datetime | None = None) -> bool:
    return case.inquiry_state == "sent" and any(d["overdue"] and d["met_at"] is None
                                                for d in deadlines(case, now).values())


# --- workflow ---------------------------------------------------------------------------------------


def _open_findings(db: Session, case: Case) -> list[Flag]:
    return [f for f in findings(db, case) if f.status in OPEN_STATES]


def decide(db: Session, case: Case, decision: str, *, actor: str, role: str, note: str,
           request_id: str | None = None, legal: LegalHolds | None) -> Case:
    """Confirm, dismiss or acknowledge (已阅) the case: once, for all its open findings. Dismissing and
    acknowledging release the findings' evidence holds (and the attachments' legal holds)."""
    if decision not in DECISIONS:
        raise CaseError(400, "invalid_decision", "decision must be 'confirm', 'dismiss' or 'acknowledge'")
    if case.status not in OPEN_STATES:
        raise CaseError(409, "invalid_transition", f"the case is already {case.status}")
    if decision == "acknowledge" and case.level not in REMINDER_LEVELS:
        raise CaseError(409, "not_a_reminder", f"only reminders (levels 1-2) are acknowledged; this case is level "
                        f"{case.level}: confirm or dismiss it")
    before = case.status
    case.status = DECISIONS[decision]
    case.updated_at = case.closed_at = utcnow()
    _event(db, case, actor=actor, role=role, action=case.status, from_status=before, note=note,
           request_id=request_id)
    for f in _open_findings(db, case):
        f_before = f.status
        f.status, f.updated_at, f.closed_at = case.status, case.updated_at, case.closed_at
        flag_event(db, f, actor=actor, role=role, action=case.status, from_status=f_before, note=note,
                   request_id=request_id)
        if case.status != "confirmed":
            release_holds(db, f, actor=actor, request_id=request_id, legal=legal)
    if case.status != "confirmed" and legal is not None:  # the answer's attachments are evidence no more
        bucket = legal.settings.bucket_footage
        keys = [a.key for a in db.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case.id))]
        if keys and legal.store.locked(bucket):
            legal.store.set_legal_hold(bucket, keys, False)
    return case


def acknowledge_many(db: Session, cases: list[Case], *, actor: str, role: str, note: str,
                     request_id: str | None = None, legal: LegalHolds | None) -> list[Case]:
    """Bulk 已阅 with one note: all or nothing, reminders (levels 1-2) only."""
    wrong = [c.id for c in cases if c.level not in REMINDER_LEVELS]
    if wrong:
        raise CaseError(409, "not_a_reminder", f"only reminders (levels 1-2) are acknowledged in bulk; not: "
                        f"{', '.join(wrong[:10])}")
    closed = [c.id for c in cases if c.status not in OPEN_STATES]
    if closed:
        raise CaseError(409, "invalid_transition", f"already decided: {', '.join(closed[:10])}")
    return [decide(db, c, "acknowledge", actor=actor, role=role, note=note, request_id=request_id, legal=legal)
            for c in cases]


def send_inquiry(db: Session, case: Case, *, actor: str, role: str, note: str, settings: Settings,
                 request_id: str | None = None) -> Case:
    if case.level >= DEFINITE_LEVEL:
        raise CaseError(409, "definite", "a level-5 case is a definite violation: confirm it, no inquiry is sent")
    if case.status not in OPEN_STATES or case.inquiry_state == "sent":
        raise CaseError(409, "invalid_transition", f"an inquiry cannot be sent on a case that is {case.status}"
                        + (" with an inquiry awaiting its answer" if case.inquiry_state == "sent" else ""))
    before = case.status
    now = utcnow()
    ack, answer = deadline_days(settings, case.level)
    tz = ZoneInfo(settings.web_timezone)
    case.status, case.inquiry_state, case.updated_at = "inquiry", "sent", now
    case.inquiry_sent_at, case.acknowledged_at, case.answered_at, case.answer_read_at = now, None, None, None
    case.ack_due_at, case.answer_due_at = add_working_days(now, ack, tz), add_working_days(now, answer, tz)
    _event(db, case, actor=actor, role=role, action="inquiry_sent", from_status=before, note=note,
           request_id=request_id, detail={"ack_due": iso_z(case.ack_due_at), "answer_due": iso_z(case.answer_due_at)})
    for f in _open_findings(db, case):
        f_before = f.status
        f.status, f.inquiry_state, f.updated_at = "inquiry", "sent", now
        flag_event(db, f, actor=actor, role=role, action="inquiry_sent", from_status=f_before, note=note,
                   request_id=request_id)
    return case


def mark_read(db: Session, case: Case, *, who_role: str, actor: str, request_id: str | None = None) -> bool:
    """The institution opening a sent inquiry acknowledges it (签收); the inspector opening an answered
    case has read the answer. Returns whether anything changed."""
    now = utcnow()
    if who_role == "institution" and case.inquiry_state == "sent" and case.acknowledged_at is None:
        case.acknowledged_at = now
        _event(db, case, actor=actor, role=who_role, action="inquiry_read", from_status=case.status,
               request_id=request_id)
        return True
    if who_role in ("inspector", "admin") and case.answered_at is not None and case.answer_read_at is None:
        case.answer_read_at = now
        return True
    return False


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def check_attachments(files: list[Upload], settings: Settings) -> list[tuple[Upload, str]]:
    """Each file's type as read from its content (PDF, JPEG, PNG only), within the size and count limits."""
    if len(files) > settings.inquiry_attachment_max_files:
        raise CaseError(400, "too_many_files", f"at most {settings.inquiry_attachment_max_files} files per answer")
    out = []
    for f in files:
        if not f.data:
            raise CaseError(400, "empty", f"{f.filename} is empty")
        if len(f.data) > settings.inquiry_attachment_max_bytes:
            raise CaseError(413, "too_large", f"{f.filename} is over the limit of "
                            f"{settings.inquiry_attachment_max_bytes} bytes")
        kind = filetype.guess_mime(f.data)
        if kind not in ATTACHMENT_TYPES:
            raise CaseError(415, "unsupported_type", f"{f.filename}: only PDF, JPEG and PNG files are accepted "
                            f"(the content reads as {kind or 'unknown'})")
        out.append((f, kind))
    return out


def answer_inquiry(db: Session, case: Case, *, actor: str, role: str, note: str, files: list[Upload] = (),
                   settings: Settings, store=None, request_id: str | None = None) -> list[CaseAttachment]:
    """The institution's answer, with its attachments: stored in the evidence (footage) bucket, under an S3
    legal hold where the bucket has object lock (evidence of an open case), each named in the history."""
    if case.status != "inquiry" or case.inquiry_state != "sent":
        raise CaseError(409, "no_open_inquiry", "this case has no inquiry awaiting an answer")
    checked = check_attachments(list(files), settings)
    if checked and store is None:
        raise CaseError(503, "store_unavailable", "attachments cannot be stored now")
    now = utcnow()
    bucket = settings.bucket_footage
    atts = []
    for f, kind in checked:
        aid = new_id()
        key = f"case-attachments/{case.org_id}/{case.id}/{aid}.{ATTACHMENT_TYPES[kind]}"
        store.put_bytes(bucket, key, f.data, content_type=kind)
        if store.locked(bucket):
            store.set_legal_hold(bucket, [key], True)
        a = CaseAttachment(id=aid, case_id=case.id, org_id=case.org_id, filename=_safe_name(f.filename),
                           content_type=kind, size=len(f.data), sha256=hashlib.sha256(f.data).hexdigest(), key=key,
                           uploaded_by=actor, uploaded_at=now)
        db.add(a)
        atts.append(a)
    case.inquiry_state, case.updated_at, case.answered_at, case.answer_read_at = "answered", now, now, None
    case.acknowledged_at = case.acknowledged_at or now
    listed = "".join(f"\n[{a.filename}]" for a in atts)
    _event(db, case, actor=actor, role=role, action="inquiry_answered", from_status="inquiry", note=note + listed,
           request_id=request_id, detail={"attachments": [{"id": a.id, "sha256": a.sha256, "size": a.size}
                                                          for a in atts]})
    for f in findings(db, case):
        if f.status == "inquiry" and f.inquiry_state == "sent":
            f.inquiry_state, f.updated_at = "answered", now
            flag_event(db, f, actor=actor, role=role, action="inquiry_answered", from_status="inquiry", note=note,
                       request_id=request_id)
    return atts


def _safe_name(name: str | None) -> str:
    base = (name or "attachment").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable())[:200] or "attachment"


# --- views ------------------------------------------------------------------------------------------


def view(case: Case, *, finding_views: list[dict] | None = None, events: list[CaseEvent] | None = None,
         attachments: list[CaseAttachment] | None = None, limited: bool = False) -> dict:
    """The case as the API shows it; its findings as correlate.flags.view gives them (addressable by id)."""
    out = {
        "id": case.id, "level": case.level, "status": case.status, "org_id": case.org_id,
        "settlement_id": case.settlement_id, "insured_id": case.insured_id, "occurred_at": iso_z(case.occurred_at),
        "created_at": iso_z(case.created_at), "updated_at": iso_z(case.updated_at), "closed_at": iso_z(case.closed_at),
        "inquiry": None if case.inquiry_sent_at is None else {
            "state": case.inquiry_state, "sent_at": iso_z(case.inquiry_sent_at),
            "ack_due": iso_z(case.ack_due_at), "answer_due": iso_z(case.answer_due_at),
            "acknowledged_at": iso_z(case.acknowledged_at), "answered_at": iso_z(case.answered_at),
            "overdue": overdue(case)},
        "replied": case.inquiry_state == "answered" and case.status == "inquiry",
    }
    if not limited:
        out["answer_read"] = case.answer_read_at is not None
    if finding_views is not None:
        out["findings"] = finding_views
    if events is not None:
        out["events"] = [{"at": iso_z(e.at), "actor": e.actor, "role": e.role, "action": e.action,
                          "flag_id": e.flag_id, "from": e.from_status, "to": e.to_status,
                          "note": scrub_scores(e.note) if limited and e.role == "system" else e.note}
                         for e in events]
    if attachments is not None:
        out["attachments"] = [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                               "sha256": a.sha256, "uploaded_at": iso_z(a.uploaded_at),
                               "url": f"/v1/cases/{case.id}/attachments/{a.id}"} for a in attachments]
    return out
