"""Settlements in: ``POST /v1/settlements`` (a JSON list), for the insurance data exchange; and out:
``GET /v1/settlements/{id}``, the settlement with its check (state, outcome, reason, people, faces).

Idempotent by ``settlement_id``. Every row is validated; good rows are kept and queued for checking,
every refused row is reported with its index and reason (never dropped silently):
200 all accepted (or already there), 207 some refused, 422 none accepted. Accepted rows whose counter
or terminal no camera of the organisation covers come back as ``warnings`` (they would be checked as
``footage_missing``).
"""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from api.deps import principal, require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.flags import settlement_flags
from api.scope import can_ingest_for, can_see_settlement, evidence_level
from api.services import Services
from correlate.reasons import limited_reason, strip_scores
from correlate.settlements import Importer, audit_import
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.db import session_scope
from storage.models import FaceEvidence, Settlement, SettlementCheck, StaffMember

router = APIRouter(prefix="/v1", tags=["settlements"], responses=errors(*AUTHENTICATED, 409))


@router.post("/settlements", responses={207: {"description": "Some rows refused: the body lists them (errors, with index and reason) beside those accepted"}})
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
        imp.add_many(list(enumerate(rows)))
        audit_import(db, imp.result, actor=who.actor, source="api", request_id=request.state.request_id)
        result = imp.result
    queued = 0
    if result.created:
        queued = rt.jobs.enqueue(result.created)
    body = {**result.summary(), "queued": queued, "created": result.created, "unchanged": result.unchanged,
            "errors": [e.to_dict("index") for e in result.errors],
            "warnings": [w.to_dict("index") for w in result.warnings]}
    status = 200 if not result.errors else (207 if result.created or result.unchanged else 422)
    if status == 422:
        body = {"error": {"code": "invalid_settlements", "reason": f"all {len(rows)} settlements were refused",
                          "errors": body["errors"]}}
    return JSONResponse(body, status_code=status)


SETTLEMENT_READERS = ("admin", "inspector", "ingest", "terminal")


def _faces(db, chk: SettlementCheck, full: bool, flags: list) -> list[dict]:
    """The check's faces: who, where, when; scores and crop URLs for full evidence only. A crop is
    served by the audited flag routes, so a face gets a crop URL only when a visible flag lists it."""
    rows = list(db.scalars(select(FaceEvidence).where(FaceEvidence.check_id == chk.id)
                           .order_by(FaceEvidence.seen_at, FaceEvidence.id)))
    staff_ids = {m.id: m.staff_id for m in db.scalars(select(StaffMember).where(
        StaffMember.id.in_({r.staff_member_id for r in rows if r.staff_member_id})))} if rows else {}
    crop_of = {}
    for f in flags:
        for face in (f.evidence or {}).get("faces") or []:
            if face.get("evidence_id"):
                crop_of.setdefault(face["evidence_id"], f"/v1/flags/{f.id}/faces/{face['evidence_id']}")
    out = []
    for r in rows:
        d = {"evidence_id": r.id, "camera_id": r.camera_id, "seen_at": iso_z(r.seen_at), "track": r.track,
             "zone": r.zone, "is_payer": bool(r.is_payer), "is_insured": bool(r.is_insured),
             "staff_id": staff_ids.get(r.staff_member_id) if r.staff_member_id else None}
        if full:
            d.update(insured_score=r.insured_score, capture_score=r.capture_score, staff_score=r.staff_score,
                     box=r.box, crop_url=crop_of.get(r.id))
        out.append(d)
    return out


@router.get("/settlements/{settlement_id}")
def get_settlement(settlement_id: str, request: Request, rt: Services = Depends(runtime),
                   who: Principal = Depends(principal)):
    """A settlement (the fields the import takes), its check state (``pending`` | ``waiting`` | ``done``
    | ``failed``, attempts, last error, next check), and once checked the outcome, the reason (English
    text and its parts), the people summary, the faces and the ids of the flags it raised.

    Visible to admins, inspectors of its region, the ingest keys that may import it and the terminals
    of its organisation; scores, boxes and crop URLs only for inspectors and admins. Other callers and
    unknown ids get 404 alike."""
    if who.role not in SETTLEMENT_READERS:
        raise ApiError(403, "forbidden", f"a {who.role} may not read settlements")
    with session_scope(rt.sessions) as db:
        st = db.get(Settlement, settlement_id[:100])
        if st is None or not can_see_settlement(who, st.org_id):
            raise ApiError(404, "not_found", f"no settlement {settlement_id[:100]!r}")
        full = evidence_level(who) == "full"
        out = {
            "settlement": {"settlement_id": st.id, "insured_id": st.insured_id, "org_id": st.org_id,
                           "counter": st.counter, "terminal_id": st.terminal_id, "settled_at": iso_z(st.settled_at),
                           "amount": st.amount, "type": st.type, "verification_id": st.verification_id},
            "imported_at": iso_z(st.imported_at),
            "check": {"status": st.status, "attempts": st.attempts or 0, "last_error": st.last_error,
                      "next_check_at": iso_z(st.next_check_at), "checked_at": iso_z(st.checked_at)},
            "outcome": st.outcome, "reason": None, "reason_parts": None, "people": None, "faces": [],
            "flags": [],
        }
        chk = db.scalar(select(SettlementCheck).where(SettlementCheck.settlement_id == st.id))
        flags = settlement_flags(db, st.id)
        out["flags"] = [f.id for f in flags]
        if chk is not None:
            summary = dict(chk.summary or {})
            reason, parts = chk.reason, summary.pop("reason_parts", None)
            if not full:  # limited evidence: no similarity, threshold or score, in the text or the people
                reason, parts = limited_reason(reason, parts)
                summary = strip_scores(summary)
            out.update(outcome=chk.outcome, reason=reason, reason_parts=parts,
                       people=summary, faces=_faces(db, chk, full, flags if full else []))
            out["check"].update(check_id=chk.id, window_start=iso_z(chk.window_start),
                                window_end=iso_z(chk.window_end), cameras=chk.cameras,
                                duration_ms=round(chk.duration_ms or 0.0, 1), rule_version=chk.rule_version)
            if full:
                out["check"].update(best_insured_score=chk.best_insured_score, capture_score=chk.capture_score,
                                    model=chk.model)
        audit(db, actor=who.actor, action="settlement.view", outcome="ok", org_id=st.org_id,
              subject=f"settlement:{st.id}", request_id=request.state.request_id)
        return out
