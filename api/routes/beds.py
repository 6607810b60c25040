"""Ward beds and the bed-hanging checks (correlate/beds.py, correlate/ward_checks.py).

The bed map is camera configuration: admins and the operators of the organisation's regions set it, those
who may see the camera's health may list it. The checks' results name a patient: admins and the
inspectors of the region read them (an institution sees its own admission's timeline without the face
results); a kept frame is a camera picture (can_see_frames) and every view is audited.
"""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy import select

from api.deps import principal, require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.cameras import editable_camera, footage_store, parse_time
from api.scope import can_see_camera_health, can_see_frames, can_see_org
from api.services import Services
from correlate import beds as beds_mod
from correlate import rulebook
from correlate.check import detect_wide
from correlate.tracking import box_of
from correlate.ward_checks import RULE, WardChecker, timeline, timeline_checks
from storage.audit import audit
from storage.db import session_scope
from storage.models import BedCheck, ClaimAdmission, Organisation, WardBed

router = APIRouter(prefix="/v1", tags=["wards"], responses=errors(*AUTHENTICATED))

BED_FIELDS = {"org_id", "bed", "dept_codg", "camera_id", "region"}
MAX_ROW_ID = 2**31 - 1  # an id the index can hold (a larger one is a 422, never a 500)


def _refused(e: beds_mod.BedRefusal) -> ApiError:
    return ApiError(e.status, e.code, e.reason)


def _visible_bed(db, who: Principal, bed_id: int) -> WardBed:
    bed = db.get(WardBed, bed_id)
    if bed is None or not can_see_camera_health(who, bed.org_id):
        raise ApiError(404, "not_found", f"no bed {bed_id}")
    return bed


@router.get("/beds")
def list_beds(org_id: str | None = Query(None, max_length=64), rt: Services = Depends(runtime),
              who: Principal = Depends(principal)):
    """The bed map: each bed id (as admissions name it) with its ward camera, region and empty pictures."""
    with session_scope(rt.sessions) as db:
        rows = beds_mod.list_beds(db, [org_id] if org_id else None)
        return {"beds": [beds_mod.view(b) for b in rows if can_see_camera_health(who, b.org_id)]}


@router.put("/beds", responses=errors(400, 404))
def put_bed(request: Request, body: dict = Body(..., examples=[{
        "org_id": "H0001", "bed": "12", "dept_codg": "A03", "camera_id": "WARD-3",
        "region": [[0.05, 0.4], [0.27, 0.4], [0.3, 0.86], [0.02, 0.86]]}]),
        rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Map a bed to a ward camera and its region there (fractions of the frame); mapping it again moves it
    (its empty pictures are dropped when the camera or the region changes)."""
    if not isinstance(body, dict) or set(body) - BED_FIELDS or not {"org_id", "bed", "camera_id", "region"} <= set(body):
        raise ApiError(400, "invalid_body", "the body must be {org_id, bed, camera_id, region[, dept_codg]}")
    if not isinstance(body["camera_id"], str) or not isinstance(body["org_id"], str):
        raise ApiError(400, "invalid_body", "org_id and camera_id must be texts")
    with session_scope(rt.sessions) as db:
        cam = editable_camera(db, who, body["camera_id"][:64])
        if cam.org_id != body["org_id"]:
            raise ApiError(400, "camera_of_another_org", f"camera {cam.id} belongs to {cam.org_id}, not {body['org_id']}")
        try:
            bed = beds_mod.set_bed(db, org_id=body["org_id"], bed_no=body["bed"], camera_id=cam.id,
                                   region=body["region"], actor=who.actor, dept_codg=body.get("dept_codg") or "")
        except beds_mod.BedRefusal as e:
            raise _refused(e) from None
        audit(db, actor=who.actor, action="bed.set", outcome="ok", org_id=bed.org_id, subject=f"bed:{bed.id}",
              request_id=request.state.request_id, detail={"bed": bed.bed_no, "dept": bed.dept_codg,
                                                           "camera_id": bed.camera_id})
        return beds_mod.view(bed)


@router.delete("/beds/{bed_id}", responses=errors(404))
def delete_bed(bed_id: int = Path(..., ge=1, le=MAX_ROW_ID), *, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    with session_scope(rt.sessions) as db:
        bed = _visible_bed(db, who, bed_id)
        editable_camera(db, who, bed.camera_id)
        view = beds_mod.view(bed)
        beds_mod.remove_bed(db, footage_store(rt), rt.settings.bucket_footage, bed)
        audit(db, actor=who.actor, action="bed.remove", outcome="ok", org_id=view["org_id"], subject=f"bed:{bed_id}",
              request_id=request.state.request_id, detail={"bed": view["bed"], "dept": view["dept_codg"]})
        return {"removed": view}


@router.put("/beds/{bed_id}/reference", responses=errors(400, 404))
def put_reference(bed_id: int = Path(..., ge=1, le=MAX_ROW_ID), *, request: Request,
                  body: dict = Body(..., examples=[{"at": "2026-12-01T15:00:00+08:00", "light": "day"}]),
                  rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Take the recorded frame at ``at`` as the bed's empty picture for its light (``day`` or ``night``:
    infrared; by default the frame's own). Refused (400 ``not_empty``) with a face in the bed's region."""
    if not isinstance(body, dict) or set(body) - {"at", "light"} or "at" not in body:
        raise ApiError(400, "invalid_body", 'the body must be {"at": "<ISO 8601 time>"[, "light": "day"|"night"]}')
    at = parse_time(body["at"] if isinstance(body["at"], str) else None, "at")
    pipeline, max_side = rt.pipeline, rt.settings.correlate_detect_max_side
    with session_scope(rt.sessions) as db:
        bed = _visible_bed(db, who, bed_id)
        editable_camera(db, who, bed.camera_id)
        try:
            ref = beds_mod.take_reference(db, footage_store(rt), rt.settings.bucket_footage, bed, at, who.actor,
                                          light=body.get("light"),
                                          faces=lambda img: [box_of(f) for f in detect_wide(pipeline, img, max_side)])
        except beds_mod.BedRefusal as e:
            raise _refused(e) from None
        audit(db, actor=who.actor, action="bed.reference", outcome="ok", org_id=bed.org_id, subject=f"bed:{bed.id}",
              request_id=request.state.request_id, detail={"at": ref["at"], "sha256": ref["sha256"]})
        return beds_mod.view(bed)


@router.post("/ward/check", responses=errors(400, 404))
def run_checks(request: Request, body: dict = Body(..., examples=[{"org_id": "H0001"}, {"org_id": "H0001",
                                                                                         "mdtrt_id": "M1"}]),
               rt: Services = Depends(runtime), who: Principal = Depends(require("admin", "inspector"))):
    """Check the beds of an organisation's admissions up to now (each check time once) and apply 挂床住院."""
    if not isinstance(body, dict) or set(body) - {"org_id", "mdtrt_id"} or not isinstance(body.get("org_id"), str):
        raise ApiError(400, "invalid_body", 'the body must be {"org_id": "...", ["mdtrt_id": "..."]}')
    org_id, mdtrt_id = body["org_id"][:64], body.get("mdtrt_id")
    if mdtrt_id is not None and not isinstance(mdtrt_id, str):
        raise ApiError(400, "invalid_body", "mdtrt_id must be a text")
    if not can_see_org(who, org_id):
        raise ApiError(404, "not_found", f"no organisation {org_id!r}")
    checker = WardChecker(settings=rt.settings, store=footage_store(rt), pipeline=rt.pipeline, legal=rt.legal_holds)
    with session_scope(rt.sessions) as db:
        if db.get(Organisation, org_id) is None:
            raise ApiError(404, "not_found", f"no organisation {org_id!r}")
        rep = checker.run(db, org_ids=[org_id], mdtrt_id=mdtrt_id)
        audit(db, actor=who.actor, action="ward.check", outcome="ok", org_id=org_id,
              request_id=request.state.request_id, detail=rep.view())
        return rep.view()


@router.get("/admissions/{mdtrt_id}/timeline", responses=errors(404))
def admission_timeline(mdtrt_id: str, request: Request, org_id: str = Query(..., max_length=64),
                       rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """The admission's bed checks, days x check times: present / absent / unknown and why."""
    full = can_see_org(who, org_id)
    if not full and not (who.role == "institution" and who.org_id == org_id):
        raise ApiError(404, "not_found", f"no admission {mdtrt_id!r}")
    with session_scope(rt.sessions) as db:
        adm = db.scalar(select(ClaimAdmission).where(ClaimAdmission.org_id == org_id,
                                                     ClaimAdmission.mdtrt_id == mdtrt_id[:64]))
        if adm is None:
            raise ApiError(404, "not_found", f"no admission {mdtrt_id!r}")
        rule = rulebook.current(db, RULE, rt.settings)
        tl = timeline(timeline_checks(db, org_id, adm.mdtrt_id), list(rule.thresholds.get("check_times") or []))
        if not full:  # no face results for the institution
            for d in tl["days"]:
                for c in d["cells"]:
                    if c:
                        c.pop("face", None)
        audit(db, actor=who.actor, action="ward.timeline.view", outcome="ok", org_id=org_id,
              subject=f"admission:{adm.mdtrt_id}", request_id=request.state.request_id)
        return {"org_id": org_id, "mdtrt_id": adm.mdtrt_id, "psn_no": adm.psn_no, "rule": rule.tag, **tl}


@router.get("/ward/checks/{check_id}/frame.jpg", responses=errors(404))
def check_frame(check_id: int = Path(..., ge=1, le=MAX_ROW_ID), *, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """The frame kept of one bed check (a camera picture: audited, never cached)."""
    with session_scope(rt.sessions) as db:
        c = db.get(BedCheck, check_id)
        if c is None or not can_see_frames(who, c.org_id) or not c.frame_key:
            raise ApiError(404, "not_found", f"no frame of check {check_id}")
        key, org_id = c.frame_key, c.org_id
        audit(db, actor=who.actor, action="camera.still.view", outcome="ok", org_id=org_id,
              subject=f"bed_check:{check_id}", request_id=request.state.request_id,
              detail={"camera_id": c.camera_id, "mdtrt_id": c.mdtrt_id, "at": c.at.isoformat()})
    try:
        data = footage_store(rt).get_bytes(rt.settings.bucket_footage, key)
    except Exception:
        raise ApiError(404, "not_found", f"the frame of check {check_id} is gone") from None
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


