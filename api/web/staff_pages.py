"""The staff page of the operator UI: an organisation's staff with their photos, photo upload, erasure,
and the regulars suggested as staff (confirm / dismiss). Who may manage which organisation is
api/scope.py's ``can_manage_staff``; the photos and crops load from the audited API routes
(api/routes/staff.py), so every view of a face is an audit event naming the person."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from api.routes.staff import roster
from api.scope import STAFF_MANAGERS, can_manage_staff
from api.web.common import Ctx, WebError, form_checked, need_role, render, web_ctx
from facepay.enrollment import PhotoResult
from storage.db import session_scope
from storage.models import STAFF_ROLES, Camera, Organisation

router = APIRouter(include_in_schema=False)

WEB_ROLES = tuple(r for r in STAFF_MANAGERS if r != "ingest")  # people log in; ingest is a machine key


def _orgs(ctx: Ctx) -> list[Organisation]:
    with session_scope(ctx.rt.sessions) as db:
        orgs = list(db.scalars(select(Organisation).order_by(Organisation.id)))
        db.expunge_all()
    return [o for o in orgs if can_manage_staff(ctx.who, o.id)]


def _org(ctx: Ctx, org_id: str) -> str:
    need_role(ctx, *WEB_ROLES)
    if not can_manage_staff(ctx.who, org_id):
        raise WebError(404, "not_found")  # another organisation's staff do not exist for this person
    return org_id


def _back(org_id: str, **params) -> RedirectResponse:
    extra = "".join(f"&{k}={quote(str(v), safe='')}" for k, v in params.items())
    return RedirectResponse(f"/staff?org={quote(org_id, safe='')}{extra}", status_code=303)


def _result_line(ctx: Ctx, r: PhotoResult) -> dict:
    """A photo's outcome in the person's language (the stage's English reason only when no words exist)."""
    t = ctx.t
    why = None
    if r.status == "refused":
        key = f"refused_{r.code}"
        why = t(key) if t(key) != key else r.reason
    return {"name": r.name, "status": r.status, "label": t(f"photo_{r.status}"), "why": why}


def _page(ctx: Ctx, org_id: str | None, status: int = 200, **values):
    orgs = _orgs(ctx)
    if org_id is None and orgs:
        org_id = orgs[0].id
    members, suggestions, cameras = [], [], {}
    if org_id is not None:
        staff = roster(ctx.rt)
        rid = ctx.request.state.request_id
        members = staff.members(org_id, actor=ctx.who.actor, request_id=rid)
        suggestions = staff.suggestions(org_id, "pending", actor=ctx.who.actor, request_id=rid)
        with session_scope(ctx.rt.sessions) as db:
            cameras = dict(db.execute(select(Camera.id, Camera.name).where(Camera.org_id == org_id)).all())
    for m in members:
        m["created"] = datetime.fromisoformat(m["created_at"])
    for s in suggestions:
        s["first"], s["last"] = datetime.fromisoformat(s["first_seen"]), datetime.fromisoformat(s["last_seen"])
        s["camera_name"] = cameras.get(s["camera_id"], s["camera_id"])
    return render(ctx, "staff.html", status=status, orgs=orgs, org_id=org_id, members=members,
                  suggestions=suggestions, roles=STAFF_ROLES, **values)


@router.get("/staff")
def staff_page(ctx: Ctx = Depends(web_ctx), org: str = "", erased: str = "", confirmed: str = "",
               dismissed: int = 0):
    need_role(ctx, *WEB_ROLES)
    org_id = _org(ctx, org) if org else None
    t = ctx.t
    notice = (t("staff_erased", id=erased) if erased else t("suggestion_confirmed", id=confirmed) if confirmed
              else t("suggestion_dismissed") if dismissed else None)
    return _page(ctx, org_id, notice=notice)


@router.post("/staff/{org_id}/photos")
async def upload(org_id: str, ctx: Ctx = Depends(web_ctx)):
    """Photos of one staff member from the upload form; the page shows each photo's outcome."""
    _org(ctx, org_id)
    await form_checked(ctx)
    form = await ctx.request.form()  # parsed once by Starlette; the files are the same objects
    files = [f for f in form.getlist("photos") if hasattr(f, "read")]
    limit = ctx.rt.settings.max_photos_per_request
    if not files:
        raise WebError(400, "bad_request", ctx.t("refused_empty"))
    if len(files) > limit:
        raise WebError(413, "bad_request", f"at most {limit} photos per upload")
    items = []
    for i, f in enumerate(files):
        data = await f.read(ctx.rt.settings.max_upload_bytes + 1)
        items.append((f.filename or f"photo{i + 1}", data))
    staff_id = str(form.get("staff_id") or "").strip()
    res = await run_in_threadpool(roster(ctx.rt, enrol=True).enroll, org_id, staff_id, items,
                                  name=str(form.get("name") or "") or None, role=str(form.get("role") or "") or None,
                                  actor=ctx.who.actor, request_id=ctx.request.state.request_id, source="ui")
    counts = res.to_dict()
    summary = ctx.t("staff_result", e=counts["enrolled"], d=counts["duplicates"], r=counts["refused"])
    return await run_in_threadpool(_page, ctx, org_id, 200 if res.ok else 422, summary=summary,
                                   results=[_result_line(ctx, r) for r in res.results], upload_ok=res.ok)


async def _act(ctx: Ctx, org_id: str, action, *args, back: dict, **kw) -> RedirectResponse:
    """A checked form's action on the roster, then back to the organisation's staff page."""
    await run_in_threadpool(action, org_id, *args, actor=ctx.who.actor, request_id=ctx.request.state.request_id,
                            **kw)
    return _back(org_id, **back)


@router.post("/staff/{org_id}/{staff_id}/erase")
async def erase(org_id: str, staff_id: str, ctx: Ctx = Depends(web_ctx)):
    _org(ctx, org_id)
    await form_checked(ctx)
    return await _act(ctx, org_id, roster(ctx.rt).erase, staff_id, back={"erased": staff_id})


@router.post("/staff/{org_id}/suggestions/{suggestion_id}/confirm")
async def confirm(org_id: str, suggestion_id: str, ctx: Ctx = Depends(web_ctx)):
    _org(ctx, org_id)
    form = await form_checked(ctx)
    staff_id = str(form.get("staff_id") or "").strip()
    return await _act(ctx, org_id, roster(ctx.rt).confirm, suggestion_id, back={"confirmed": staff_id},
                      staff_id=staff_id, name=str(form.get("name") or "") or None,
                      role=str(form.get("role") or "") or None)


@router.post("/staff/{org_id}/suggestions/{suggestion_id}/dismiss")
async def dismiss(org_id: str, suggestion_id: str, ctx: Ctx = Depends(web_ctx)):
    _org(ctx, org_id)
    await form_checked(ctx)
    return await _act(ctx, org_id, roster(ctx.rt).dismiss, suggestion_id, back={"dismissed": 1})
