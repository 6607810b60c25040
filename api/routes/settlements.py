"""Settlements in: ``POST /v1/settlements`` (a JSON list), for the insurance data exchange.

Idempotent by ``settlement_id``. Every row is validated; good rows are kept and queued for checking,
every refused row is reported with its index and reason (never dropped silently):
200 all accepted (or already there), 207 some refused, 422 none accepted.
"""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.scope import can_ingest_for
from api.services import Services
from correlate.settlements import Importer, audit_import
from storage.db import session_scope

router = APIRouter(prefix="/v1", tags=["settlements"])


@router.post("/settlements")
def post_settlements(request: Request, rows: list = Body(..., description="Settlement objects: settlement_id, "
                     "insured_id, org_id, counter or terminal_id, settled_at (ISO 8601 with zone), amount, type "
                     "(outpatient|inpatient|pharmacy), optional verification_id."),
                     rt: Services = Depends(runtime), who: Principal = Depends(require("ingest", "admin"))):
    if not rows:
        raise ApiError(422, "empty", "the list of settlements is empty")
    if len(rows) > rt.settings.correlate_import_max_rows:
        raise ApiError(413, "too_many_rows", f"{len(rows)} settlements; at most "
                       f"{rt.settings.correlate_import_max_rows} per request")
    with session_scope(rt.sessions) as db:
        allowed = None
        if who.role != "admin":
            orgs = {r.get("org_id") for r in rows if isinstance(r, dict) and isinstance(r.get("org_id"), str)}
            allowed = {o for o in orgs if can_ingest_for(who, o)}
        imp = Importer(db, actor=who.actor, allowed_orgs=allowed)
        for i, raw in enumerate(rows):
            imp.add(i, raw)
        audit_import(db, imp.result, actor=who.actor, source="api", request_id=request.state.request_id)
        result = imp.result
    queued = 0
    if result.created:
        queued = rt.jobs.enqueue(result.created)
    body = {**result.summary(), "queued": queued, "created": result.created, "unchanged": result.unchanged,
            "errors": [e.to_dict("index") for e in result.errors]}
    status = 200 if not result.errors else (207 if result.created or result.unchanged else 422)
    if status == 422:
        body = {"error": {"code": "invalid_settlements", "reason": f"all {len(rows)} settlements were refused",
                          "errors": body["errors"]}}
    return JSONResponse(body, status_code=status)


