"""The bed editor of a ward camera: its latest frame with the beds drawn over it; operators and admins outline
a bed by clicking on the frame, name it as admissions do and save it through the JSON API (``PUT /v1/beds``,
cookie-authenticated with the session's CSRF token), and take each bed's empty pictures from a recorded
moment (``PUT /v1/beds/{id}/reference``)."""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends

from api.routes.cameras import ZONE_EDITORS
from api.scope import can_manage_cameras
from api.web.common import Ctx, WebError, camera_seen, render, web_ctx
from correlate import beds as beds_mod
from storage.db import session_scope
from storage.models import Organisation

router = APIRouter(include_in_schema=False)

JS_WORDS = ("bed_points", "bed_saved", "bed_save_failed", "bed_need_points", "bed_delete", "bed_none",
            "bed_ref_day", "bed_ref_night", "bed_ref_yes", "bed_ref_no", "bed_ref_taken", "bed_ref_failed",
            "bed_take_day", "bed_take_night")


@router.get("/cameras/{camera_id}/beds")
def beds_page(camera_id: str, ctx: Ctx = Depends(web_ctx)):
    if ctx.who.role not in ("inspector", "operator", "admin"):
        raise WebError(403, "forbidden")
    with session_scope(ctx.rt.sessions) as db:
        cam = camera_seen(db, ctx, camera_id)
        org = db.get(Organisation, cam.org_id)
        beds = [beds_mod.view(b) for b in beds_mod.list_beds(db, [cam.org_id]) if b.camera_id == cam.id]
        offset = datetime.now(ctx.t.tz).strftime("%z")
        data = {"camera_id": cam.id, "org_id": cam.org_id, "beds": beds, "csrf": ctx.csrf,
                "editable": ctx.who.role in ZONE_EDITORS and can_manage_cameras(ctx.who, cam.org_id) and cam.role == "ward",
                "offset": f"{offset[:3]}:{offset[3:]}", "words": {k: ctx.t(k) for k in JS_WORDS}}
        return render(ctx, "beds.html", cam=cam, org_name=org.name if org else cam.org_id, data=data,
                      is_ward=cam.role == "ward")
