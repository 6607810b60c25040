"""The audit trail page (``/audit``): admins and auditors filter the trail by actor, institution, insured
person, flag, camera, kind of access and day, page through it and download it as CSV (the link is
``/v1/audit.csv`` with the same filters). Each view of the page is itself an audit event."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query

from api.responses import ROW_ID_MAX
from api.routes.audit import AUDIT_READERS, CSV_MAX_ROWS, OFFSET_MAX
from api.web.common import Ctx, form_day, need_role, render, web_ctx
from api.web.i18n import MESSAGES
from kernel.timefmt import iso_z
from storage.audit import REFUSED, TrailFilter, last_event_id, read_trail
from storage.audit import audit as audit_event
from storage.db import session_scope

router = APIRouter(include_in_schema=False)

PAGE = 50
_ACT = "audit_act_"
ACTIONS = tuple(k[len(_ACT):] for k in MESSAGES if k.startswith(_ACT) and k != _ACT + REFUSED)


def _day(ctx: Ctx, value: str, name: str, end: bool = False) -> datetime | None:
    """A day of the form, in the UI's timezone, as the UTC instant it starts (``end``: the next day's)."""
    d = form_day(value, name)
    if d is None:
        return None
    return datetime.combine(d + timedelta(days=1 if end else 0), time(0), tzinfo=ctx.t.tz).astimezone(timezone.utc)


def action_words(t, action: str, outcome: str) -> str:
    """An action as words of the page's language; a refused request keeps its method and path."""
    if outcome.startswith("refused:") and " " in action:
        return f"{t(_ACT + REFUSED)} {action}"
    return t(_ACT + action) if _ACT + action in MESSAGES else action


def outcome_words(t, outcome: str) -> str:
    if outcome == "ok":
        return t("audit_outcome_ok")
    if outcome.startswith("refused:"):
        code = outcome.split(":", 1)[1]
        return f"{t('audit_outcome_refused')} ({t('audit_refused_' + code) if 'audit_refused_' + code in MESSAGES else code})"
    if "audit_outcome_" + outcome in MESSAGES:
        return t("audit_outcome_" + outcome)
    return t.decision(outcome)  # a face check's decision; anything else as written


def subject_words(t, subject: str | None) -> str:
    """``kind:id`` as the kind's word and the id (ids stay as they are)."""
    kind, sep, rest = (subject or "").partition(":")
    if not sep or "audit_subject_" + kind not in MESSAGES:
        return subject or "—"
    return f"{t('audit_subject_' + kind)} {rest}"


@router.get("/audit")
def audit_page(ctx: Ctx = Depends(web_ctx), actor: str = Query("", max_length=200), org: str = Query("", max_length=64),
               insured: str = Query("", max_length=64), flag: str = Query("", max_length=32),
               camera: str = Query("", max_length=64), action: str = Query("", max_length=64),
               date_from: str = Query("", max_length=10), date_to: str = Query("", max_length=10),
               offset: int = Query(0, ge=0, le=OFFSET_MAX), max_id: int | None = Query(None, ge=0, le=ROW_ID_MAX)):
    need_role(ctx, *AUDIT_READERS)
    since, until = _day(ctx, date_from, "date_from"), _day(ctx, date_to, "date_to", end=True)
    f = TrailFilter(actor=actor.strip() or None, org_id=org.strip() or None, insured_id=insured.strip() or None,
                    flag_id=flag.strip() or None, camera_id=camera.strip() or None, action=action or None,
                    since=since, until=until, max_id=max_id)
    with session_scope(ctx.rt.sessions) as db:
        if f.max_id is None:  # the pager keeps this snapshot: new events (this view's own) shift no page
            f = replace(f, max_id=last_event_id(db))
        total, events = read_trail(db, f, limit=PAGE, offset=offset)
        audit_event(db, actor=ctx.who.actor, action="audit.read", outcome="ok",
                    request_id=ctx.request.state.request_id,
                    detail={"filters": f.as_dict(), "offset": offset, "count": len(events), "view": "web"})
    form = {"actor": actor, "org": org, "insured": insured, "flag": flag, "camera": camera, "action": action,
            "date_from": date_from, "date_to": date_to}
    api_query = {k: v for k, v in {"actor": f.actor, "org": f.org_id, "insured": f.insured_id, "flag": f.flag_id,
                                   "camera": f.camera_id, "action": f.action, "from": iso_z(since),
                                   "to": iso_z(until)}.items() if v}
    # a person's note shows; the system's (an English reason) stays in the raw record with the detail
    rows = [{"e": e, "action": action_words(ctx.t, e.action, e.outcome), "outcome": outcome_words(ctx.t, e.outcome),
             "subject": subject_words(ctx.t, e.subject),
             "note": e.note if e.actor.startswith("user:") else None,
             "detail": json.dumps({**(e.detail or {}), **({"note": e.note} if e.note and not e.actor.startswith("user:")
                                                          else {})}, ensure_ascii=False, sort_keys=True)[:300]}
            for e in events]

    def page_link(o: int) -> str:
        return "/audit?" + urlencode({**{k: v for k, v in form.items() if v}, "offset": o, "max_id": f.max_id})

    return render(ctx, "audit.html", rows=rows, total=total, offset=offset, page=PAGE, f=form,
                  actions=[(a, ctx.t(_ACT + a)) for a in ACTIONS], refused=REFUSED,
                  csv_url="/v1/audit.csv" + ("?" + urlencode(api_query) if api_query else ""), csv_max=CSV_MAX_ROWS,
                  prev_url=page_link(max(offset - PAGE, 0)) if offset > 0 else None,
                  next_url=page_link(offset + PAGE) if offset + PAGE < total else None)
