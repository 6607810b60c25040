"""An organisation's footage retention (``retention_days``; none = the ``retention_days`` setting).
Admins read and set it; the next retention run uses it. Every change is an audit event."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.services import Services
from storage.db import session_scope
from storage.models import Organisation
from storage.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, RetentionInvalid, set_org_retention

router = APIRouter(prefix="/v1/orgs", tags=["organisations"], responses=errors(*AUTHENTICATED))


class RetentionIn(BaseModel):
    days: int | None = Field(..., description=f"Days to keep footage ({MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}); "
                             "null: the default setting.")


def retention_view(org: Organisation, default_days: int) -> dict:
    return {"org_id": org.id, "retention_days": org.retention_days,
            "effective_days": org.retention_days or default_days, "default_days": default_days}


@router.get("/{org_id}/retention")
def get_retention(org_id: str, rt: Services = Depends(runtime), who: Principal = Depends(require("admin"))):
    with session_scope(rt.sessions) as db:
        org = db.get(Organisation, org_id)
        if org is None:
            raise ApiError(404, "not_found", f"no organisation {org_id!r}")
        return retention_view(org, rt.settings.retention_days)


@router.put("/{org_id}/retention")
def put_retention(org_id: str, body: RetentionIn, request: Request, rt: Services = Depends(runtime),
                  who: Principal = Depends(require("admin"))):
    """Set (``{"days": 365}``) or clear (``{"days": null}``) the organisation's footage retention."""
    with session_scope(rt.sessions) as db:
        try:
            org = set_org_retention(db, org_id, body.days, actor=who.actor, request_id=request.state.request_id)
        except LookupError:
            raise ApiError(404, "not_found", f"no organisation {org_id!r}") from None
        except RetentionInvalid as e:
            raise ApiError(400, "invalid_retention", str(e)) from None
        return retention_view(org, rt.settings.retention_days)
