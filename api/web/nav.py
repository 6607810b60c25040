"""Unread counts in the navigation: answers an inspector has not opened yet, inquiries an institution has
not opened yet (opening one acknowledges it: correlate/cases.py)."""
from __future__ import annotations

from sqlalchemy import func, select

from api.keys import Principal
from api.scope import visible_orgs
from storage.db import session_scope
from storage.models import Case


def unread_counts(sessions, who: Principal) -> dict:
    if who.role not in ("inspector", "admin", "institution"):
        return {}
    orgs = visible_orgs(who)
    conds = [Case.org_id.in_(sorted(orgs))] if orgs is not None else []
    out = {}
    with session_scope(sessions) as db:
        if who.role in ("inspector", "admin"):
            out["replies"] = db.scalar(select(func.count()).select_from(Case).where(
                *conds, Case.status == "inquiry", Case.inquiry_state == "answered", Case.answer_read_at.is_(None))) or 0
        if who.role in ("institution", "admin"):
            out["inquiries"] = db.scalar(select(func.count()).select_from(Case).where(
                *conds, Case.status == "inquiry", Case.inquiry_state == "sent", Case.acknowledged_at.is_(None))) or 0
    return out
