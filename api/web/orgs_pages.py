"""Admins' list of organisations with each one's footage retention, set here as through
``PUT /v1/orgs/{id}/retention`` and ``dualcheck orgs retention`` (storage/retention.py)."""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from api.web.common import Ctx, WebError, form_checked, need_role, render, web_ctx
from storage.db import session_scope
from storage.models import Organisation
from storage.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, RetentionInvalid, set_org_retention

router = APIRouter(include_in_schema=False)


@router.get("/orgs")
def orgs_page(ctx: Ctx = Depends(web_ctx), done: str = "", error: str = ""):
    need_role(ctx, "admin")
    with session_scope(ctx.rt.sessions) as db:
        orgs = list(db.scalars(select(Organisation).order_by(Organisation.id)))
        names = {o.id: o.name for o in orgs}
        saved = db.get(Organisation, done[:64]) if done else None
        note = None
        if saved is not None:
            v = (ctx.t("retention_days_n", n=saved.retention_days) if saved.retention_days
                 else ctx.t("retention_default_n", n=ctx.rt.settings.retention_days))
            note = ctx.t("retention_saved", org=names.get(saved.id, saved.id), v=v)
        return render(ctx, "orgs.html", orgs=orgs, default_days=ctx.rt.settings.retention_days, note=note,
                      error=ctx.t("retention_invalid", lo=MIN_RETENTION_DAYS, hi=MAX_RETENTION_DAYS) if error else None,
                      lo=MIN_RETENTION_DAYS, hi=MAX_RETENTION_DAYS)


@router.post("/orgs/{org_id}/retention")
async def org_retention(org_id: str, ctx: Ctx = Depends(web_ctx)):
    need_role(ctx, "admin")
    form = await form_checked(ctx)
    text = str(form.get("days") or "").strip()
    reset = form.get("action") == "default"

    def go() -> bool:
        with session_scope(ctx.rt.sessions) as db:
            try:
                set_org_retention(db, org_id[:64], None if reset else int(text), actor=ctx.who.actor,
                                  request_id=ctx.request.state.request_id)
            except LookupError:
                raise WebError(404, "not_found") from None
            except (ValueError, RetentionInvalid):  # int("") or out of range
                return False
            return True

    ok = await run_in_threadpool(go)
    q = {"done": org_id} if ok else {"error": "retention_invalid"}
    return RedirectResponse("/orgs?" + urlencode(q), status_code=303)
