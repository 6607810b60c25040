"""Append-only audit trail. Callers pass ids and counts, never images, templates or secrets."""
from __future__ import annotations

from sqlalchemy.orm import Session

from storage.models import AuditEvent


def audit(
    session: Session, *, actor: str, action: str, outcome: str, org_id: str | None = None,
    subject: str | None = None, request_id: str | None = None, detail: dict | None = None,
    note: str | None = None,
) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, outcome=outcome, org_id=org_id, subject=subject,
                       request_id=request_id, detail=detail or {}, note=note)
    session.add(event)
    return event
