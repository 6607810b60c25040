"""The staff gallery of an organisation and the regulars suggested as staff (facepay/staff.py).

Who may do what is api/scope.py's ``can_manage_staff``: admin, the ingest keys of the organisation,
operators of its region. Another organisation's staff do not exist for the caller (404). Every read
of biometric data (listing, a photo, a crop) is an audit event naming the caller.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import principal, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.flags import _image
from api.scope import STAFF_MANAGERS, can_manage_staff
from api.services import Services
from api.uploads import read_upload
from facepay.staff import StaffRoster

router = APIRouter(prefix="/v1/orgs", tags=["staff"], responses=errors(*AUTHENTICATED, 409, 415))


def roster(rt: Services, *, enrol: bool = False) -> StaffRoster:
    """The staff gallery over the process's parts; the models are loaded only to enrol."""
    return StaffRoster(settings=rt.settings, sessions=rt.sessions, store=rt.store,
                       pipeline=rt.pipeline if enrol else None)


def check_access(who: Principal, org_id: str) -> None:
    if who.role not in STAFF_MANAGERS:
        raise ApiError(403, "forbidden", f"a {who.role} key may not manage staff")
    if not can_manage_staff(who, org_id):
        raise ApiError(404, "not_found", f"no organisation {org_id!r}")


def _manager(org_id: str, who: Principal = Depends(principal)) -> Principal:
    check_access(who, org_id)
    return who


@router.put("/{org_id}/staff/{staff_id}/photos")
async def enroll_staff(
    org_id: str,
    staff_id: str,
    request: Request,
    photos: list[UploadFile] = File(..., description="One or more JPEG/PNG photos of the staff member."),
    name: str | None = Form(None, description="The staff member's name (kept if omitted)."),
    role: str | None = Form(None, description="doctor, pharmacist, cashier, nurse or other."),
    rt: Services = Depends(runtime),
    who: Principal = Depends(_manager),
):
    """Enrol photos of a staff member (created with the first accepted photo). Each photo is judged
    alone by the enrolment gate; 200 when at least one photo is (or already was) enrolled, 422 when all
    were refused (nothing is stored then)."""
    limit = rt.settings.max_photos_per_request
    if len(photos) > limit:
        raise ApiError(413, "too_many_photos", f"at most {limit} photos per request")
    items = [(p.filename or f"photo{i + 1}", await read_upload(p, rt.settings.max_upload_bytes))
             for i, p in enumerate(photos)]
    res = await run_in_threadpool(roster(rt, enrol=True).enroll, org_id, staff_id, items, name=name, role=role,
                                  actor=who.actor, request_id=request.state.request_id)
    return JSONResponse(res.to_dict(), status_code=200 if res.ok else 422)


def _with_urls(m: dict) -> dict:
    for p in m["photos"]:
        p["photo_url"] = f"/v1/orgs/{m['org_id']}/staff/{m['staff_id']}/photos/{p['template_id']}"
    return m


@router.get("/{org_id}/staff")
def list_staff(org_id: str, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(_manager)):
    """The organisation's staff members with their photos (references; the images are separate, audited)."""
    members = roster(rt).members(org_id, actor=who.actor, request_id=request.state.request_id)
    return {"org_id": org_id, "staff": [_with_urls(m) for m in members]}


@router.get("/{org_id}/staff/{staff_id}")
def get_staff(org_id: str, staff_id: str, request: Request, rt: Services = Depends(runtime),
              who: Principal = Depends(_manager)):
    return _with_urls(roster(rt).get(org_id, staff_id, actor=who.actor, request_id=request.state.request_id))


@router.get("/{org_id}/staff/{staff_id}/photos/{template_id}")
def staff_photo(org_id: str, staff_id: str, template_id: str, request: Request, rt: Services = Depends(runtime),
                who: Principal = Depends(_manager)):
    """One enrolled photo of a staff member (biometric; every view audited)."""
    key = roster(rt).photo(org_id, staff_id, template_id, actor=who.actor, request_id=request.state.request_id)
    return _image(rt, key, "the photo is no longer stored (erased)")


@router.delete("/{org_id}/staff/{staff_id}")
async def erase_staff(org_id: str, staff_id: str, request: Request, rt: Services = Depends(runtime),
                      who: Principal = Depends(_manager)):
    """Erase a staff member: photos first, then templates and the member; an audit record (ids and
    counts) remains."""
    return await run_in_threadpool(roster(rt).erase, org_id, staff_id, actor=who.actor,
                                   request_id=request.state.request_id)


# --- suggested regulars -----------------------------------------------------------------------------


def _sugg_urls(s: dict) -> dict:
    s["crop_urls"] = [f"/v1/orgs/{s['org_id']}/staff-suggestions/{s['id']}/faces/{e}" for e in s["evidence_ids"]]
    return s


@router.get("/{org_id}/staff-suggestions")
def list_suggestions(org_id: str, request: Request, status: str = Query("pending"), rt: Services = Depends(runtime),
                     who: Principal = Depends(_manager)):
    """Faces seen at one counter in most checks over several days, suggested as likely staff."""
    out = roster(rt).suggestions(org_id, status, actor=who.actor, request_id=request.state.request_id)
    return {"org_id": org_id, "suggestions": [_sugg_urls(s) for s in out]}


@router.get("/{org_id}/staff-suggestions/{suggestion_id}/faces/{evidence_id}")
def suggestion_face(org_id: str, suggestion_id: str, evidence_id: str, request: Request,
                    rt: Services = Depends(runtime), who: Principal = Depends(_manager)):
    """A face crop behind a suggestion (biometric; every view audited)."""
    key = roster(rt).suggestion_face(org_id, suggestion_id, evidence_id, actor=who.actor,
                                     request_id=request.state.request_id)
    return _image(rt, key, "the face crop is no longer stored")


class ConfirmIn(BaseModel):
    staff_id: str = Field(..., min_length=1, max_length=64, description="The organisation's own id (工号).")
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, description="doctor, pharmacist, cashier, nurse or other.")


@router.post("/{org_id}/staff-suggestions/{suggestion_id}/confirm")
async def confirm_suggestion(org_id: str, suggestion_id: str, body: ConfirmIn, request: Request,
                             rt: Services = Depends(runtime), who: Principal = Depends(_manager)):
    """The face is this staff member: the member is created (or found by staff_id) with a template from
    the suggestion; from then on the face is recognised as staff."""
    out = await run_in_threadpool(roster(rt).confirm, org_id, suggestion_id, staff_id=body.staff_id,
                                  name=body.name, role=body.role, actor=who.actor,
                                  request_id=request.state.request_id)
    _with_urls(out["staff"])
    return out


@router.post("/{org_id}/staff-suggestions/{suggestion_id}/dismiss")
def dismiss_suggestion(org_id: str, suggestion_id: str, request: Request, rt: Services = Depends(runtime),
                       who: Principal = Depends(_manager)):
    """Not staff: the face is judged as a customer again."""
    return roster(rt).dismiss(org_id, suggestion_id, actor=who.actor, request_id=request.state.request_id)
