"""The zones editor: a camera's latest frame with its zones drawn over it; operators and admins draw
customer / staff / ignore polygons by clicking on the frame and save them through the JSON API
(``PUT /v1/cameras/{id}/zones``, cookie-authenticated with the session's CSRF token)."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select

from api.routes.cameras import ZONE_EDITORS
from api.web.common import Ctx, WebError, camera_seen, render, web_ctx
from ingest.cameras import MAX_ZONE_LABEL, MAX_ZONES, ZONE_KINDS, ZONE_POINTS
from storage.db import session_scope
from storage.models import Organisation, User

router = APIRouter(include_in_schema=False)

# what zones.js shows, in the page's language (the script has no tables of its own)
JS_WORDS = ("zone_kind_customer", "zone_kind_staff", "zone_kind_ignore", "zone_delete", "zone_saved",
            "zone_unsaved", "zone_need_points", "zone_no_still", "zone_none", "zone_save_failed", "zone_points",
            "zone_too_many", "ref_taken", "ref_cleared", "ref_failed", "ref_not_empty", "ref_no_footage")


@router.get("/cameras/{camera_id}/zones")
def zones_page(camera_id: str, ctx: Ctx = Depends(web_ctx)):
    if ctx.who.role not in ("inspector", "operator", "admin"):
        raise WebError(403, "forbidden")
    with session_scope(ctx.rt.sessions) as db:
        cam = camera_seen(db, ctx, camera_id)
        org = db.get(Organisation, cam.org_id)
        data = {"camera_id": cam.id, "zones": cam.zones or [], "editable": ctx.who.role in ZONE_EDITORS,
                "csrf": ctx.csrf, "kinds": list(ZONE_KINDS), "max_zones": MAX_ZONES, "points": list(ZONE_POINTS),
                "max_label": MAX_ZONE_LABEL, "words": {k: ctx.t(k) for k in JS_WORDS}}
        ref_by = display_name(db, (cam.reference or {}).get("set_by"))
        return render(ctx, "zones.html", cam=cam, org_name=org.name if org else cam.org_id, data=data, ref_by=ref_by)


def display_name(db, actor: str | None) -> str:
    """'user:li' -> that user's display name; the CLI and others as they are."""
    if not actor:
        return ""
    if actor.startswith("user:"):
        u = db.scalar(select(User).where(User.username == actor[5:]))
        if u is not None:
            return u.display_name or u.username
    if actor.startswith("key:"):
        return "API 密钥 " + actor[4:]
    return "命令行" if actor == "cli" else actor
