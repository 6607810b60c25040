"""Flags (findings): creation (idempotent), their append-only history, evidence holds.

A flag is a finding; it joins the case of its settlement (or its group) when raised
(correlate/case_link.py), and is reviewed with that case (correlate/cases.py):

    open --inquiry (inspector sends 网上质询)--> inquiry --answer (institution)--> inquiry (answered)
    open | inquiry --confirm--> confirmed        (holds stay: the footage is evidence)
    open | inquiry --dismiss--> dismissed        (this flag's holds are released; retention applies)
    open (levels 1-2) --acknowledge--> acknowledged (已阅; holds released)

Every step is a ``flag_events`` row (who, role, when, from/to status, note) and an audit event.
Flags are created once per ``dedup_key``: re-checking a settlement never duplicates a flag.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from correlate.case_link import attach
from correlate.reasons import Reason, limited_reason, scrub_scores, strip_scores, text_and_parts
from kernel import metrics
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.holds import LegalHolds, place_hold, release_hold
from storage.models import EvidenceHold, Flag, FlagEvent, utcnow


def record_event(db: Session, flag: Flag, *, actor: str, role: str, action: str, from_status: str | None,
           note: str | None = None, request_id: str | None = None) -> FlagEvent:
    ev = FlagEvent(flag_id=flag.id, actor=actor, role=role, action=action, from_status=from_status,
                   to_status=flag.status, note=note)
    db.add(ev)
    audit(db, actor=actor, action=f"flag.{action}", outcome="ok", org_id=flag.org_id, subject=f"flag:{flag.id}",
          request_id=request_id, detail={"type": flag.type, "level": flag.level, "from": from_status,
                                         "to": flag.status}, note=note)
    return ev


def _hold(db: Session, flag: Flag, *, camera_id: str | None, start=None, end=None, verification_id=None,
          actor: str, legal: LegalHolds | None) -> None:
    place_hold(db, actor=actor, reason=f"flag {flag.id}: {flag.type} (level {flag.level})", camera_id=camera_id,
               start=start, end=end, verification_id=verification_id, flag_id=flag.id, legal=legal)


def raise_flag(db: Session, *, type: str, rule: str, level: int, org_id: str, settlement_ids: list[str],
               occurred_at: datetime, reason: Reason | str, evidence: dict, model: dict, rule_version: str,
               dedup_key: str, holds: list[tuple[str, datetime, datetime]] = (), verification_id: str | None = None,
               actor: str = "correlate", legal: LegalHolds | None) -> tuple[Flag, bool]:
    """Create the flag (and its holds) unless one with ``dedup_key`` exists. Returns (flag, created)."""
    existing = db.scalar(select(Flag).where(Flag.dedup_key == dedup_key))
    if existing is not None:
        return existing, False
    reason, evidence = _with_parts(reason, evidence)
    flag = Flag(type=type, rule=rule, level=level, org_id=org_id, settlement_id=settlement_ids[0] if settlement_ids
                else None, settlement_ids=list(settlement_ids), occurred_at=occurred_at, reason=reason,
                evidence=evidence, model=model, rule_version=rule_version, dedup_key=dedup_key, status="open")
    db.add(flag)
    db.flush()
    record_event(db, flag, actor=actor, role="system", action="created", from_status=None, note=reason)
    attach(db, flag, actor=actor)  # the finding joins its settlement's (or its group's) case
    for cam, a, b in holds:
        _hold(db, flag, camera_id=cam, start=a, end=b, actor=actor, legal=legal)
    if verification_id:
        _hold(db, flag, camera_id=None, verification_id=verification_id, actor=actor, legal=legal)
    # counted when the flag is committed: a check rolled back and retried must not count it twice
    event.listen(db, "after_commit", lambda _s: metrics.FLAGS_RAISED.labels(type, str(level)).inc(), once=True)
    return flag, True


def _with_parts(reason: Reason | str, evidence: dict) -> tuple[str, dict]:
    """The English text for the reason column; the parts (for the UI's languages) into the evidence."""
    text, parts = text_and_parts(reason)
    return text, ({**evidence, "reason_parts": parts} if parts else evidence)


def extend_flag(db: Session, flag: Flag, *, settlement_ids: list[str], evidence: dict, reason: Reason | str,
                occurred_at: datetime, holds: list[tuple[str, datetime, datetime]] = (),
                actor: str = "correlate", legal: LegalHolds | None) -> bool:
    """A group flag (one face many cards, repeated footage_missing) takes in new settlements."""
    new = [s for s in settlement_ids if s not in (flag.settlement_ids or [])]
    if not new:
        return False
    flag.settlement_ids = list(flag.settlement_ids or []) + new
    reason, evidence = _with_parts(reason, evidence)
    flag.evidence = evidence
    flag.reason = reason
    flag.occurred_at = max(flag.occurred_at, occurred_at)
    flag.updated_at = utcnow()
    record_event(db, flag, actor=actor, role="system", action="evidence_added", from_status=flag.status,
           note=f"settlements added: {', '.join(new)[:400]}")
    for cam, a, b in holds:
        _hold(db, flag, camera_id=cam, start=a, end=b, actor=actor, legal=legal)
    return True


# --- holds of a finding ---------------------------------------------------------------------------


def release_holds(db: Session, flag: Flag, *, actor: str, request_id: str | None = None,
                  legal: LegalHolds | None) -> int:
    # only holds of the flag's own organisation: a hold's scope is its organisation (a hold naming
    # this flag from elsewhere, written before place_hold refused that, is not this flag's to release)
    holds = list(db.scalars(select(EvidenceHold).where(EvidenceHold.flag_id == flag.id,
                                                       EvidenceHold.org_id == flag.org_id,
                                                       EvidenceHold.released_at.is_(None))))
    for h in holds:
        release_hold(db, h.id, actor=actor, request_id=request_id, note=f"flag {flag.id} dismissed", legal=legal)
    return len(holds)


# --- views ----------------------------------------------------------------------------------------

LIMITED_EVIDENCE_KEYS = ("cameras", "window", "settlement", "outcome", "coverage", "people_seen",
                         "settlements", "count", "counters", "reason_parts",  # parts: the reason text, as codes
                         # a data check's lines (the institution's own records) and its moment; no scores in them
                         "lines", "moment", "consulting_room")


def view(flag: Flag, *, evidence: str = "full", events: list[FlagEvent] | None = None,
         holds: list[EvidenceHold] | None = None) -> dict:
    """The flag as the API shows it. ``evidence='limited'`` (institution users) leaves out every
    biometric item (face crops, scores, enrolled photo references, the face-pay capture): the reason,
    its parts and the system's event notes are given without the similarities they quote."""
    ev = dict(flag.evidence or {})
    reason = flag.reason
    if evidence == "limited":
        ev = strip_scores({k: v for k, v in ev.items() if k in LIMITED_EVIDENCE_KEYS})
        reason, parts = limited_reason(flag.reason, (flag.evidence or {}).get("reason_parts"))
        if parts:
            ev["reason_parts"] = parts
    out = {
        "id": flag.id, "type": flag.type, "rule": flag.rule, "level": flag.level, "status": flag.status,
        "org_id": flag.org_id, "settlement_id": flag.settlement_id, "settlement_ids": flag.settlement_ids,
        "occurred_at": iso_z(flag.occurred_at), "reason": reason, "evidence": ev,
        "inquiry_state": flag.inquiry_state, "created_at": iso_z(flag.created_at),
        "updated_at": iso_z(flag.updated_at), "closed_at": iso_z(flag.closed_at), "case_id": flag.case_id,
    }
    if evidence == "full":
        out["rule_version"], out["model"] = flag.rule_version, flag.model
    if events is not None:
        out["events"] = [{"at": iso_z(e.at), "actor": e.actor, "role": e.role, "action": e.action,
                          "from": e.from_status, "to": e.to_status,
                          "note": scrub_scores(e.note) if evidence == "limited" and e.role == "system" else e.note}
                         for e in events]
    if holds is not None and evidence == "full":
        out["holds"] = [{"id": h.id, "camera_id": h.camera_id, "start": iso_z(h.start_at), "end": iso_z(h.end_at),
                         "verification_id": h.verification_id, "active": h.released_at is None} for h in holds]
    return out
