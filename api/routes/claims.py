"""Records of the national platform in (``POST /v1/claims``) and the data checks over them
(``POST /v1/claims/check``).

``POST /v1/claims`` takes one platform message or a list of them, each as the institution sends it to the
platform: ``{"infno": "2204", "fixmedins_code": "H1", "input": {"feedetail": [...]}}`` (interfaces and
fields: docs/claims.md). Idempotent by each record's natural key; good records are kept, every refused
record is reported with its message index, its record index within the message and the reason:
200 all accepted (or already there), 207 some refused, 422 none accepted. Settlements (2207/2304) are
queued for their footage check as through ``POST /v1/settlements``.
"""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.scope import can_ingest_for, can_see_org
from api.services import Services
from correlate.claim_checks import run_checks
from correlate.claims_import import ClaimError, ClaimImporter, RecordInvalid, audit_claims, flatten
from kernel.timefmt import TimeInvalid, iso_z, parse_instant
from storage.audit import audit
from storage.db import session_scope

router = APIRouter(prefix="/v1", tags=["claims"], responses=errors(*AUTHENTICATED))


@router.post("/claims", responses={207: {"description": "Some records refused: the body lists them (message, "
                                                        "record, reason) beside the counts accepted"}})
def post_claims(request: Request, body: list | dict = Body(..., description="One platform message {infno, fixmedins_code, "
                                                               "input} or a list of them (docs/claims.md)."),
                rt: Services = Depends(runtime), who: Principal = Depends(require("ingest", "admin"))):
    messages = body if isinstance(body, list) else [body]
    if not messages:
        raise ApiError(422, "empty", "the list of messages is empty")
    flat: list[tuple[str, object]] = []
    refused: list[ClaimError] = []
    for i, m in enumerate(messages):
        try:
            rows = flatten(m)
        except RecordInvalid as e:
            refused.append(ClaimError(f"{i}", m.get("infno") if isinstance(m, dict) else None, None, str(e)))
            continue
        flat += [(f"{i}.{j}", r) for j, r in enumerate(rows)]
        if len(flat) > rt.settings.claims_max_lines:
            raise ApiError(413, "too_many_records", f"more than {rt.settings.claims_max_lines} records in one "
                           "request; send them in several")
    with session_scope(rt.sessions) as db:
        allowed = None
        if who.role != "admin":
            orgs = {r.get("fixmedins_code") for _, r in flat
                    if isinstance(r, dict) and isinstance(r.get("fixmedins_code"), str)}
            allowed = {o for o in orgs if can_ingest_for(who, o)}
        imp = ClaimImporter(db, rt.settings, actor=who.actor, allowed_orgs=allowed)
        imp.result.errors += refused
        for where, r in flat:
            imp.add(where, r)
        imp.flush()
        result = imp.result
        audit_claims(db, result, actor=who.actor, source="api", request_id=request.state.request_id)
    queued = rt.jobs.enqueue(result.settlements_created) if result.settlements_created else 0
    errs = []
    for e in result.errors:
        msg, _, rec = str(e.line).partition(".")
        errs.append({"message": int(msg), "record": int(rec) if rec else None, "infno": e.infno, "key": e.key,
                     "reason": e.reason})
    errs.sort(key=lambda x: (x["message"], x["record"] if x["record"] is not None else -1))
    out = {**result.summary(), "queued": queued, "errors": errs, "warnings": result.warnings}
    accepted = sum(result.imported.values()) + result.unchanged
    status = 200 if not errs else (207 if accepted else 422)
    if status == 422:
        out = {"error": {"code": "invalid_records", "reason": f"all {result.total} records were refused",
                         "errors": errs}}
    return JSONResponse(out, status_code=status)


class CheckRequest(BaseModel):
    org_id: str = Field(..., max_length=64, description="The organisation (fixmedins_code) whose records to check.")
    start: str = Field(..., max_length=40, description="Start of the period, ISO 8601 with a zone.")
    end: str = Field(..., max_length=40, description="End of the period (exclusive), ISO 8601 with a zone.")


@router.post("/claims/check")
def check_claims(req: CheckRequest, request: Request, rt: Services = Depends(runtime),
                 who: Principal = Depends(require("admin", "inspector"))):
    """Run every data check (correlate/claim_rules.py) over one organisation's records of a period:
    flags are raised once (a second run finds them known). Admins and the inspectors of the
    organisation's region; at most ``claims_check_max_days`` days."""
    try:
        start, end = parse_instant(req.start, "start"), parse_instant(req.end, "end")
    except TimeInvalid as e:
        raise ApiError(422, "invalid_time", e.reason) from None
    if end <= start:
        raise ApiError(422, "invalid_period", "end must be after start")
    if end - start > timedelta(days=rt.settings.claims_check_max_days):
        raise ApiError(422, "period_too_long", f"at most {rt.settings.claims_check_max_days} days per run")
    if not can_see_org(who, req.org_id):
        raise ApiError(404, "not_found", f"no organisation {req.org_id!r}")
    with session_scope(rt.sessions) as db:
        counts, flags = run_checks(db, rt.settings, org_id=req.org_id, start=start, end=end,
                                   legal=rt.legal_holds, actor=who.actor, checker=lambda: rt.checker)
        audit(db, actor=who.actor, action="claims.check", outcome="ok", org_id=req.org_id,
              request_id=request.state.request_id,
              detail={"start": iso_z(start), "end": iso_z(end), "flags": len(flags)})
        out = {"org_id": req.org_id, "start": iso_z(start), "end": iso_z(end), "counts": counts,
               "flags": [{"id": f.id, "type": f.type, "level": f.level} for f in flags]}
    return out
