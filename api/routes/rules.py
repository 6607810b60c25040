"""The rule library (规则库) over HTTP: admins edit, inspectors and auditors read, institutions see nothing.

* ``GET /v1/rules``: every rule as it stands, by class, with its precision (confirmed ÷ decided);
* ``GET /v1/rules/stats``: precision per rule and per version (违规确认率), with the counts;
* ``GET /v1/rules/{id}``: one rule, its history (who, when, note, before -> after) and its reference data;
* ``PATCH /v1/rules/{id}``: level, enabled, thresholds, effective_from / effective_to, with a required note;
  the next version (correlate/rulebook.py), audited;
* ``POST /v1/rules/{id}/reference?kind=...``: a CSV file of reference data (correlate/rule_reference.py)
  as the body; per-row errors with line numbers, a new version when anything changed.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.scope import visible_orgs
from api.services import Services
from correlate import rule_reference, rulebook
from correlate.rule_precision import precision
from kernel.timefmt import TimeInvalid, iso_z, parse_instant
from storage.db import session_scope
from storage.models import RuleChange

router = APIRouter(prefix="/v1", tags=["rules"], responses=errors(*AUTHENTICATED))
READERS = ("admin", "inspector", "auditor")
MAX_CSV_BYTES = 20 * 1024 * 1024


def _stats_orgs(who: Principal) -> list[str] | None:
    """Inspectors count the flags of their regions; admins and auditors every flag (counts only)."""
    if who.role in ("admin", "auditor"):
        return None
    return sorted(visible_orgs(who) or ())


def change_view(c: RuleChange) -> dict:
    return {"version": c.version, "at": iso_z(c.at), "actor": c.actor, "note": c.note, "before": c.before,
            "after": c.after}


def reference_view(r) -> dict:
    return {"kind": r.kind, "med_list_codg": r.med_list_codg, "group": r.group_name, "value": r.value,
            "drug_genname": r.label, "version": r.version, "imported_at": iso_z(r.imported_at)}


@router.get("/rules")
def list_rules(rt: Services = Depends(runtime), who: Principal = Depends(require(*READERS))):
    """Every rule of the library as it stands (class, names, level, switch, thresholds, dates, version),
    with its precision over the flags the caller may count."""
    with session_scope(rt.sessions) as db:
        book = rulebook.load(db, rt.settings)
        stats = {s["rule"]: s for s in precision(db, org_ids=_stats_orgs(who))}
        rules = [{**r.view(), "precision": {k: v for k, v in stats.get(r.id, {}).items() if k != "rule"} or None,
                  "reference": rule_reference.counts(db, r.id)}
                 for r in sorted(book, key=lambda r: (r.rule_class, r.id))]
    return {"rules": rules}


@router.get("/rules/stats")
def rule_stats(rt: Services = Depends(runtime), who: Principal = Depends(require(*READERS))):
    """Precision per rule and per version (confirmed ÷ decided, decided = confirmed + dismissed)."""
    with session_scope(rt.sessions) as db:
        return {"rules": precision(db, org_ids=_stats_orgs(who))}


@router.get("/rules/{rule_id}")
def get_rule(rule_id: str, rt: Services = Depends(runtime), who: Principal = Depends(require(*READERS))):
    with session_scope(rt.sessions) as db:
        r = rulebook.current(db, rule_id[:60], rt.settings)
        stats = next((s for s in precision(db, org_ids=_stats_orgs(who)) if s["rule"] == r.id), None)
        return {**r.view(), "history": [change_view(c) for c in rulebook.history(db, r.id)],
                "precision": stats, "reference": rule_reference.counts(db, r.id),
                "reference_rows": [reference_view(x) for x in rule_reference.rows_of(db, r.id)]}


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=rulebook.NOTE_MAX,
                             description="Why (the batch, the expert review): required.")
    level: int | None = Field(None, description="警示级别 1-5.")
    enabled: bool | None = None
    thresholds: dict | None = Field(None, description="Some of the rule's own thresholds, each of its kind.")
    effective_from: str | None = Field(None, max_length=40, description="ISO 8601 with a zone, or null to clear.")
    effective_to: str | None = Field(None, max_length=40, description="ISO 8601 with a zone, or null to clear.")


def _when(body: RulePatch, name: str):
    if name not in body.model_fields_set:
        return rulebook.UNSET
    text = getattr(body, name)
    if text is None or text == "":
        return None
    try:
        return parse_instant(text, name)
    except TimeInvalid as e:
        raise ApiError(422, "invalid_time", e.reason) from None


@router.patch("/rules/{rule_id}", responses=errors(409))
def patch_rule(rule_id: str, body: RulePatch, request: Request, rt: Services = Depends(runtime),
               who: Principal = Depends(require("admin"))):
    """The next version of the rule; every change needs a note and is kept in the rule's history."""
    eff_from, eff_to = _when(body, "effective_from"), _when(body, "effective_to")
    with session_scope(rt.sessions) as db:
        r = rulebook.change(db, rule_id[:60], actor=who.actor, note=body.note or "", level=body.level,
                            enabled=body.enabled, thresholds=body.thresholds, effective_from=eff_from,
                            effective_to=eff_to, request_id=request.state.request_id)
        return {**r.view(), "history": [change_view(c) for c in rulebook.history(db, r.id)[:1]]}


@router.post("/rules/{rule_id}/reference", responses=errors(413), openapi_extra={"requestBody": {
    "required": True, "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "The CSV file (UTF-8, a header row; columns per kind in docs/rules.md)."}})
async def import_reference(rule_id: str, request: Request,
                           kind: str = Query(..., max_length=24, description="days_supply | substitution_group | "
                                             "price_band"),
                           note: str = Query("", max_length=rulebook.NOTE_MAX, description="Why: required."),
                           rt: Services = Depends(runtime), who: Principal = Depends(require("admin"))):
    """Import a CSV file of reference data (docs/rules.md): 200 every row accepted, 207 some refused
    (``errors``: line and reason), 422 none accepted."""
    body = await request.body()
    if len(body) > MAX_CSV_BYTES:
        raise ApiError(413, "too_large", f"at most {MAX_CSV_BYTES // (1024 * 1024)} MB of CSV per import")

    def go() -> dict:
        with session_scope(rt.sessions) as db:
            res = rule_reference.import_csv(db, rule_id[:60], kind, body, actor=who.actor, note=note,
                                            source="api", request_id=request.state.request_id)
            return res.summary()

    out = await run_in_threadpool(go)
    accepted = out["imported"] + out["changed"] + out["unchanged"]
    status = 200 if not out["errors"] else (207 if accepted else 422)
    if status == 422:
        out = {"error": {"code": "invalid_rows", "reason": f"all {out['rows']} rows were refused",
                         "errors": out["errors"]}}
    return JSONResponse(out, status_code=status)
