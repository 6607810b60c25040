"""A counter camera's reference picture: the counter with nobody on the customer side
(correlate/reference.py says why the check wants it). Operators and admins set it from a recorded
moment, everyone who may see the camera's still frame may look at it; every view is audited."""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request, Response

from api.deps import principal, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.cameras import editable_camera, footage_store, parse_time, visible_camera
from api.services import Services
from correlate import reference as reference_mod
from correlate.check import detect_wide
from correlate.tracking import box_of
from storage.audit import audit
from storage.db import session_scope

router = APIRouter(prefix="/v1", tags=["cameras"], responses=errors(*AUTHENTICATED))


def _view(cam) -> dict:
    ref = cam.reference
    return {"camera_id": cam.id, "reference": None if not ref else
            {k: ref.get(k) for k in ("at", "set_by", "set_at", "sha256", "width", "height")}}


@router.get("/cameras/{camera_id}/reference")
def get_reference(camera_id: str, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Whether the camera has a reference picture, from when, set by whom."""
    with session_scope(rt.sessions) as db:
        return _view(visible_camera(db, who, camera_id, health_only=True))


@router.put("/cameras/{camera_id}/reference", responses=errors(400, 404))
def put_reference(camera_id: str, request: Request,
                  body: dict = Body(..., examples=[{"at": "2026-12-01T08:05:00+08:00"}, {}]),
                  rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Take the recorded frame at ``at`` (the keyframe at or just before it; ``{}``: the frame the camera's
    still.jpg shows) as the counter empty. Refused (400 ``not_empty``) when it shows a face on the customer side."""
    if not isinstance(body, dict) or set(body) - {"at"}:
        raise ApiError(400, "invalid_body", 'the body must be {"at": "<ISO 8601 time>"} or {} for the newest frame')
    at = parse_time(body["at"], "at") if body.get("at") is not None else None
    store, bucket = footage_store(rt), rt.settings.bucket_footage
    pipeline, max_side = rt.pipeline, rt.settings.correlate_detect_max_side
    with session_scope(rt.sessions) as db:
        cam = editable_camera(db, who, camera_id)
        try:
            ref = reference_mod.take(db, store, bucket, cam, at, who.actor,
                                     faces=lambda img: [box_of(f) for f in detect_wide(pipeline, img, max_side)])
        except reference_mod.NoFootage as e:
            raise ApiError(404, "no_footage", str(e)) from None
        except reference_mod.PictureError as e:
            raise ApiError(400, "not_empty", str(e)) from None
        audit(db, actor=who.actor, action="camera.reference", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{cam.id}", request_id=request.state.request_id,
              detail={"camera_id": cam.id, "at": ref["at"], "sha256": ref["sha256"]})
        return _view(cam)


@router.delete("/cameras/{camera_id}/reference")
def delete_reference(camera_id: str, request: Request, rt: Services = Depends(runtime),
                     who: Principal = Depends(principal)):
    """Remove the picture: checks then use the window's own frames only."""
    with session_scope(rt.sessions) as db:
        cam = editable_camera(db, who, camera_id)
        had = reference_mod.clear(footage_store(rt), rt.settings.bucket_footage, cam)
        audit(db, actor=who.actor, action="camera.reference.clear", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{cam.id}", request_id=request.state.request_id, detail={"had": had})
        return _view(cam)


@router.get("/cameras/{camera_id}/reference.jpg", responses=errors(404))
def reference_jpg(camera_id: str, request: Request, rt: Services = Depends(runtime),
                  who: Principal = Depends(principal)):
    """The picture itself (it may show the cashier: the still frame's audience, audited, never cached)."""
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id, health_only=True)
        ref, org_id = cam.reference, cam.org_id
    if not ref:
        raise ApiError(404, "no_reference", f"camera {camera_id} has no reference picture")
    try:
        data = footage_store(rt).get_bytes(rt.settings.bucket_footage, ref["key"])
    except Exception:
        raise ApiError(404, "no_reference", f"the reference picture of camera {camera_id} is gone") from None
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="camera.still.view", outcome="ok", org_id=org_id,
              subject=f"camera:{camera_id}", request_id=request.state.request_id,
              detail={"camera_id": camera_id, "reference": True, "at": ref.get("at")})
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
