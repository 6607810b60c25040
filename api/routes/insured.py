"""Enrollment of insured persons' photos, and erasure. Called by the insurance data exchange."""
from __future__ import annotations

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.services import Services
from api.uploads import read_upload
from kernel.ids import InvalidInsuredId, check_insured_id

router = APIRouter(prefix="/v1/insured", tags=["enrollment"], responses=errors(*AUTHENTICATED, 415))


def _checked_id(insured_id: str) -> str:
    try:
        return check_insured_id(insured_id)
    except InvalidInsuredId as e:
        raise ApiError(400, "invalid_insured_id", str(e)) from None


@router.put("/{insured_id}/photos")
async def enroll_photos(
    insured_id: str,
    request: Request,
    photos: list[UploadFile] = File(..., description="One or more JPEG/PNG photos of the insured person."),
    rt: Services = Depends(runtime),
    who: Principal = Depends(require("ingest", "admin")),
):
    """Enroll photos. Each photo is judged alone: one without exactly one usable face is refused
    with its reason while the others enroll. 200 when at least one photo is (or already was)
    enrolled, 422 when all were refused."""
    _checked_id(insured_id)
    limit = rt.settings.max_photos_per_request
    if len(photos) > limit:
        raise ApiError(413, "too_many_photos", f"at most {limit} photos per request")
    items = [(p.filename or f"photo{i + 1}", await read_upload(p, rt.settings.max_upload_bytes))
             for i, p in enumerate(photos)]
    results = await run_in_threadpool(
        rt.enroller.enroll, insured_id, items, actor=who.actor, request_id=request.state.request_id)
    body = {
        "insured_id": insured_id,
        "enrolled": sum(r.status == "enrolled" for r in results),
        "duplicates": sum(r.status == "duplicate" for r in results),
        "refused": sum(r.status == "refused" for r in results),
        "results": [r.to_dict() for r in results],
    }
    ok = body["enrolled"] + body["duplicates"] > 0
    return JSONResponse(body, status_code=200 if ok else 422)


@router.delete("/{insured_id}")
async def erase(
    insured_id: str,
    request: Request,
    rt: Services = Depends(runtime),
    who: Principal = Depends(require("ingest", "admin")),
):
    """Right to erasure: every enrolled photo and template of the person is deleted; an audit
    record (ids and counts only) remains. 404 when nothing was enrolled under that id."""
    _checked_id(insured_id)
    result = await run_in_threadpool(rt.enroller.erase, insured_id, actor=who.actor,
                                     request_id=request.state.request_id)
    if not result["found"] and result["photos_deleted"] == 0:
        raise ApiError(404, "not_enrolled", f"nothing is enrolled under insured id {insured_id}")
    return result
