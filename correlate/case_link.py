"""Which case a finding belongs to, and attaching it: one case per settlement, one per group flag.

Kept apart from correlate/cases.py (the workflow) because raising a flag (correlate/flags.py) attaches it,
and the workflow uses the flags' own history.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.audit import audit
from storage.models import Case, CaseEvent, Flag, Settlement, utcnow

# rules over several settlements: their flag is a case of its own (the group), not one settlement's
GROUP_TYPES = ("one_face_many_cards", "repeated_footage_missing")
OPEN_STATES = ("open", "inquiry")


def case_key(flag: Flag) -> str:
    if flag.type in GROUP_TYPES or not flag.settlement_id:
        return f"group:{flag.dedup_key}"
    return f"settlement:{flag.settlement_id}"


def _amount(s: Settlement | None) -> float | None:
    try:
        return float(Decimal(s.amount)) if s is not None else None
    except (InvalidOperation, ValueError):
        return None


def attach(db: Session, flag: Flag, *, actor: str) -> Case:
    """Put a new finding into its case (made on the first finding). The case's level becomes the highest of
    its findings'; a finding arriving after the case was decided reopens it (the decision did not cover it)."""
    key = case_key(flag)
    case = db.scalar(select(Case).where(Case.key == key))
    now = utcnow()
    if case is None:
        s = db.get(Settlement, flag.settlement_id) if not key.startswith("group:") and flag.settlement_id else None
        case = Case(key=key, org_id=flag.org_id, settlement_id=s.id if s else None,
                    insured_id=s.insured_id if s else None, amount=_amount(s), level=flag.level, status="open",
                    occurred_at=flag.occurred_at, created_at=now, updated_at=now)
        db.add(case)
        db.flush()
        action, before = "created", None
    else:
        before = case.status
        case.level = max(case.level, flag.level)
        case.occurred_at = max(case.occurred_at, flag.occurred_at)
        case.updated_at = now
        if case.status not in OPEN_STATES:
            case.status, case.closed_at = "open", None
        elif case.status == "inquiry":  # the finding joins the inquiry under way
            flag.status, flag.inquiry_state = "inquiry", case.inquiry_state
        action = "finding_added"
    flag.case_id = case.id
    db.add(CaseEvent(case_id=case.id, flag_id=flag.id, actor=actor, role="system", action=action,
                     from_status=before, to_status=case.status, note=flag.reason, at=now))
    audit(db, actor=actor, action=f"case.{action}", outcome="ok", org_id=case.org_id, subject=f"case:{case.id}",
          detail={"flag_id": flag.id, "level": case.level, "type": flag.type})
    return case
