"""Evidence holds: keep a camera's footage over a time range past retention (or one capture)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.deps import principal, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.cameras import parse_time
from api.scope import can_see_org
from api.services import Services
from storage.db import session_scope
from storage.holds import list_holds, place_hold, release_hold, view
from storage.models import Camera, EvidenceHold, Verification

router = APIRouter(prefix="/v1", tags=["holds"], responses=errors(*AUTHENTICATED, 409))


class HoldIn(BaseModel):
    reason: str = Field(..., description="The case the footage is kept for.")
    camera_id: str | None = None
    start: str | None = Field(None, description="ISO 8601 with zone")
    end: str | None = Field(None, description="ISO 8601 with zone")
    verification_id: str | None = Field(None, description="Hold one face-pay capture instead of footage.")
    flag_id: str | None = None


class ReleaseIn(BaseModel):
    note: str | None = Field(None, max_length=500)



@router.post("/holds", status_code=201)
def create_hold(body: HoldIn, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Place a hold: footage of ``camera_id`` overlapping [start, end) - or the capture of
    ``verification_id`` - is not deleted by retention while the hold is active."""
    start = parse_time(body.start, "start") if body.start is not None else None
    end = parse_time(body.end, "end") if body.end is not None else None
    with session_scope(rt.sessions) as db:
        org = None
        if body.camera_id is not None:
            cam = db.get(Camera, body.camera_id)
            org = cam.org_id if cam else None
        elif body.verification_id is not None:
            v = db.get(Verification, body.verification_id)
            org = v.org_id if v else None
        if org is not None and not can_see_org(who, org):
            raise ApiError(404, "not_found", "no such camera or verification")
        hold = place_hold(db, actor=who.actor, reason=body.reason, camera_id=body.camera_id, start=start,
                          end=end, verification_id=body.verification_id, flag_id=body.flag_id,
                          request_id=request.state.request_id, legal=rt.legal_holds)
        return view(hold)


@router.delete("/holds/{hold_id}")
def delete_hold(hold_id: str, request: Request, body: ReleaseIn | None = None, rt: Services = Depends(runtime),
                who: Principal = Depends(principal)):
    """Release a hold (it stays on record with who released it and when)."""
    with session_scope(rt.sessions) as db:
        h = db.get(EvidenceHold, hold_id)
        if h is None or not can_see_org(who, h.org_id):
            raise ApiError(404, "not_found", f"no hold {hold_id!r}")
        hold = release_hold(db, hold_id, actor=who.actor, request_id=request.state.request_id,
                            note=body.note if body else None, legal=rt.legal_holds)
        return view(hold)


@router.get("/holds")
def get_holds(camera_id: str | None = None, org_id: str | None = None, active: bool | None = None,
              rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Holds the caller may see; filter by camera, organisation, active (true/false)."""
    with session_scope(rt.sessions) as db:
        holds = list_holds(db, camera_id=camera_id, org_id=org_id, active=active)
        return {"holds": [view(h) for h in holds if can_see_org(who, h.org_id)]}
