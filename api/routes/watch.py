"""The watch rules (docs/inpatient.md): population lists in, monthly runs, warning lists out.

- ``POST /v1/watch/population``: 1101 outputs and/or flat list records (correlate/population.py);
  200 all accepted, 207 some refused, 422 none. ``POST /v1/watch/population.csv``: a list as CSV.
- ``POST /v1/watch/runs`` ``{"month": "2026-11"}``: run the rules for an ended month (replaces its warnings).
- ``GET /v1/watch/warnings`` (JSON), ``/v1/watch/warnings.xlsx``, ``/v1/watch/warnings.csv``: a month's list,
  optionally of one responsible unit or rule. Inspectors see the households of their regions.
- ``GET /v1/watch/persons/{psn_no}``: a person's figures month by month, categories, household, warnings.
- ``GET /v1/watch/warnings/{id}``: one warning, its history and the person's (household's) cases;
  ``PATCH`` it ``{"state": "reviewing"|"confirmed"|"dismissed", "assignee": "<username>", "note": "..."}``:
  the inspectors' workflow (correlate/watch_review.py); a refused step is a 4xx with ``reason`` (English)
  and ``reason_zh``. A warning cannot become a case (a case is an institution's, a warning a person's):
  its view links the person's cases instead.
Every read of the lists and of a person is audited (they name people and their medical costs); institutions
never see warnings (api/scope.py ``watch_regions``; these routes are for inspectors and admins only).
"""
from __future__ import annotations

import csv
import io
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, ROW_ID_MAX, errors
from api.scope import visible_orgs, watch_regions
from api.services import Services
from api.web.words_watch import WORDS
from correlate.population import FileInvalid, PopulationImporter, audit_population, csv_records
from correlate.watch import (
    Month,
    WatchInvalid,
    event_view,
    latest_month,
    person_history,
    run_month,
    view,
    warnings_of,
)
from correlate.watch_export import assignee_names, to_csv, to_xlsx
from correlate.watch_review import OPEN_STATES, ReviewRefused, act, events
from storage.audit import audit
from storage.db import session_scope
from storage.models import WATCH_STATES, Case, Household, WatchWarning

router = APIRouter(prefix="/v1/watch", tags=["watch"], responses=errors(*AUTHENTICATED))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.post("/population", responses={207: {"description": "Some records refused: listed with their index and "
                                                                "reason beside the counts accepted"}})
def post_population(request: Request, body: list | dict = Body(..., description="A 1101 output message, a flat "
                                                                 "list record, or a list of them."),
                    rt: Services = Depends(runtime), who: Principal = Depends(require("ingest", "admin"))):
    records = body if isinstance(body, list) else [body]
    if not records:
        raise ApiError(422, "empty", "the list of records is empty")
    if len(records) > rt.settings.watch_max_lines:
        raise ApiError(413, "too_many_records", f"more than {rt.settings.watch_max_lines} records in one request")
    with session_scope(rt.sessions) as db:
        imp = PopulationImporter(db, rt.settings, actor=who.actor)
        for i, r in enumerate(records):
            imp.add(str(i), r)
        imp.flush()
        result = imp.result
        audit_population(db, result, actor=who.actor, source="api", request_id=request.state.request_id)
    return _import_answer(result)


@router.post("/population.csv", responses={207: {"description": "Some lines refused: listed with their line "
                                                                    "number and reason"}})
async def post_population_csv(request: Request, rt: Services = Depends(runtime),
                              who: Principal = Depends(require("ingest", "admin"))):
    """A civil-affairs list as CSV (UTF-8, a header row: psn_no, household_id, unit, region, psn_idet_type,
    psn_type_lv, begntime, endtime); each line is a record as in POST /v1/watch/population."""
    limit = rt.settings.max_upload_bytes
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ApiError(413, "too_large", f"the CSV is larger than {limit} bytes; send it in parts")
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(422, "not_utf8", "the CSV must be UTF-8") from None
    try:
        items = list(csv_records(io.StringIO(text, newline="")))
    except (FileInvalid, csv.Error) as e:
        raise ApiError(422, "invalid_csv", str(e)) from None
    if not items:
        raise ApiError(422, "empty", "the CSV has no lines after its header")
    if len(items) > rt.settings.watch_max_lines:
        raise ApiError(413, "too_many_records", f"more than {rt.settings.watch_max_lines} lines in one request")

    def store():
        with session_scope(rt.sessions) as db:
            imp = PopulationImporter(db, rt.settings, actor=who.actor)
            imp.take(items)
            imp.flush()
            audit_population(db, imp.result, actor=who.actor, source="api:csv", request_id=request.state.request_id)
            return imp.result

    result = await run_in_threadpool(store)
    return _import_answer(result)


def _import_answer(result) -> JSONResponse:
    out = {**result.summary(), "errors": result.errors}
    accepted = result.total - len(result.errors)
    status = 200 if not result.errors else (207 if accepted else 422)
    if status == 422:
        out = {"error": {"code": "invalid_records", "reason": f"all {result.total} records were refused",
                         "errors": result.errors}}
    return JSONResponse(out, status_code=status)


class RunRequest(BaseModel):
    month: str = Field(..., max_length=7, description="The calendar month, YYYY-MM, ended.")


@router.post("/runs")
def post_run(req: RunRequest, request: Request, rt: Services = Depends(runtime),
             who: Principal = Depends(require("admin", "inspector"))):
    """Run the watch rules for a past month now (the worker runs the past month on its own each month)."""
    try:
        with session_scope(rt.sessions) as db:
            run, rows = run_month(db, rt.settings, req.month, actor=who.actor, request_id=request.state.request_id)
            return {"run_id": run.id, **{k: v for k, v in run.summary.items()}}
    except WatchInvalid as e:
        raise ApiError(e.status, e.code, e.reason) from None


def _month(db, month: str | None) -> str:
    if month:
        return month
    m = latest_month(db)
    if m is None:
        raise ApiError(404, "no_run", "the watch rules have not run yet: POST /v1/watch/runs {\"month\": \"YYYY-MM\"}")
    return m


STATE_FILTERS = (*WATCH_STATES, "active")


def _state(state: str | None) -> str | None:
    if state and state not in STATE_FILTERS:
        raise refused(ReviewRefused(422, "invalid_state", f"state must be one of {', '.join(STATE_FILTERS)}"))
    return state or None


def refused(e: ReviewRefused) -> ApiError:
    """The refusal as the API says it: the English reason, and the Chinese one of the page's words."""
    zh = WORDS.get(f"watch_err_{e.code}", {}).get("zh")
    return ApiError(e.status, e.code, e.reason, **({"reason_zh": zh} if zh else {}))


def _list(rt, who: Principal, request: Request, month, unit, rule, fmt: str, state: str | None = None):
    state = _state(state)
    with session_scope(rt.sessions) as db:
        m = _month(db, month)
        try:
            Month.parse(m, ZoneInfo(rt.settings.claims_timezone))
        except WatchInvalid as e:
            raise ApiError(e.status, e.code, e.reason) from None
        rows = warnings_of(db, m, unit=unit, regions=watch_regions(who), rule_id=rule, state=state)
        audit(db, actor=who.actor, action="watch.warnings_view", outcome="ok", subject=f"watch:{m}",
              request_id=request.state.request_id, detail={"format": fmt, "unit": unit, "rule": rule,
                                                           "state": state, "count": len(rows)})
        names = assignee_names(db, rows) if fmt in ("xlsx", "csv") else {}
        db.expunge_all()
    return m, rows, names


@router.get("/warnings")
def get_warnings(request: Request, month: str | None = Query(None, max_length=7), unit: str | None = Query(None, max_length=100),
                 rule: str | None = Query(None, max_length=60),
                 state: str | None = Query(None, max_length=16, description="open, reviewing, confirmed, dismissed, "
                                           "or active (open and reviewing)"),
                 rt: Services = Depends(runtime), who: Principal = Depends(require("admin", "inspector"))):
    m, rows, _ = _list(rt, who, request, month, unit, rule, "json", state)
    return {"month": m, "count": len(rows), "warnings": [view(w) for w in rows]}


def _download(data: bytes, media: str, name: str) -> Response:
    return Response(data, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=\"watch.{name.rsplit('.', 1)[1]}\"; "
                               f"filename*=UTF-8''{quote(name)}"})


@router.get("/warnings.xlsx")
def get_warnings_xlsx(request: Request, month: str | None = Query(None, max_length=7),
                      unit: str | None = Query(None, max_length=100),
                      state: str | None = Query(None, max_length=16), rt: Services = Depends(runtime),
                      who: Principal = Depends(require("admin", "inspector"))):
    m, rows, names = _list(rt, who, request, month, unit, None, "xlsx", state)
    return _download(to_xlsx(m, rows, names), XLSX, f"监测预警名单-{m}{'-' + unit if unit else ''}.xlsx")


@router.get("/warnings.csv")
def get_warnings_csv(request: Request, month: str | None = Query(None, max_length=7),
                     unit: str | None = Query(None, max_length=100),
                     state: str | None = Query(None, max_length=16), rt: Services = Depends(runtime),
                     who: Principal = Depends(require("admin", "inspector"))):
    m, rows, names = _list(rt, who, request, month, unit, None, "csv", state)
    return _download(to_csv(rows, names), "text/csv; charset=utf-8", f"监测预警名单-{m}{'-' + unit if unit else ''}.csv")


@router.get("/persons/{psn_no}")
def get_person(psn_no: str, request: Request, month: str | None = Query(None, max_length=7),
               rt: Services = Depends(runtime), who: Principal = Depends(require("admin", "inspector"))):
    if len(psn_no) > 64:
        raise ApiError(422, "invalid_psn_no", "psn_no is longer than 64 characters")
    regions = watch_regions(who)
    with session_scope(rt.sessions) as db:
        h = db.get(Household, psn_no)
        if regions is not None and (h is None or h.region not in regions):
            raise ApiError(404, "not_found", f"no person {psn_no!r} in your regions")
        m = _month(db, month)
        try:
            out = person_history(db, rt.settings, psn_no, m)
        except WatchInvalid as e:
            raise ApiError(e.status, e.code, e.reason) from None
        audit(db, actor=who.actor, action="watch.person_view", outcome="ok", subject=f"psn:{psn_no}",
              request_id=request.state.request_id, detail={"month": m})
    return out


# --- one warning and the inspectors' workflow ----------------------------------------------------------


def get_warning(db, warning_id: int, who: Principal) -> WatchWarning:
    """The warning, if the caller's regions hold it (404 otherwise: never a hint it exists)."""
    w = db.get(WatchWarning, warning_id)
    regions = watch_regions(who)
    if w is None or (regions is not None and w.region not in regions):
        raise ApiError(404, "not_found", f"no watch warning {warning_id} in your regions")
    return w


def person_cases(db, w: WatchWarning, who: Principal) -> list[dict]:
    """The cases of the warning's person (of every member, for a household's) the caller may see."""
    people = [w.psn_no] if w.psn_no else [m["psn_no"] for m in (w.detail or {}).get("members", [])]
    if not people:
        return []
    q = select(Case).where(Case.insured_id.in_(people))
    orgs = visible_orgs(who)
    if orgs is not None:
        q = q.where(Case.org_id.in_(sorted(orgs)))
    return [{"id": c.id, "insured_id": c.insured_id, "org_id": c.org_id, "level": c.level, "status": c.status,
             "url": f"/v1/cases/{c.id}"} for c in db.scalars(q.order_by(Case.occurred_at.desc()).limit(100))]


def warning_detail(db, w: WatchWarning, who: Principal) -> dict:
    return {**view(w), "events": [event_view(e) for e in events(db, w)], "cases": person_cases(db, w, who)}


WarningId = Annotated[int, Path(ge=1, le=ROW_ID_MAX, description="A watch warning's id (from the warnings list).")]


@router.get("/warnings/{warning_id}")
def get_one_warning(warning_id: WarningId, request: Request, rt: Services = Depends(runtime),
                    who: Principal = Depends(require("admin", "inspector"))):
    with session_scope(rt.sessions) as db:
        w = get_warning(db, warning_id, who)
        audit(db, actor=who.actor, action="watch.warning_view", outcome="ok", subject=f"watch_warning:{w.id}",
              request_id=request.state.request_id, detail={"insured_id": w.psn_no, "household_id": w.household_id})
        return warning_detail(db, w, who)


class WarningChange(BaseModel):
    state: str | None = Field(None, max_length=16, description="reviewing (核查中), confirmed (已核实) or "
                              "dismissed (已排除); reviewing on a closed warning reopens it (the note says why)")
    assignee: str | None = Field(None, max_length=64, description="The username of the inspector who checks it "
                                 "(an active inspector of the warning's region, or an admin)")
    note: str | None = Field(None, max_length=4000, description="Required to confirm, dismiss or reopen.")


# the state asked for -> the workflow's step
STEPS = {"reviewing": "review", "confirmed": "confirm", "dismissed": "dismiss"}


@router.patch("/warnings/{warning_id}", responses={409: {"description": "Not from the warning's state now"}})
def patch_warning(warning_id: WarningId, body: WarningChange, request: Request, rt: Services = Depends(runtime),
                  who: Principal = Depends(require("admin", "inspector"))):
    """Take a warning for review, assign it, confirm or dismiss it (with a note), or reopen a closed one
    (``state: reviewing`` with the reason as its note). Audited."""
    try:
        if body.state is None and body.assignee is None:
            raise ReviewRefused(422, "nothing_to_change", "give a state, an assignee or both")
        if body.state == "open":
            raise ReviewRefused(409, "cannot_reopen", "a warning does not go back to open")
        if body.state is not None and body.state not in STEPS:
            raise ReviewRefused(422, "invalid_state", f"state must be one of {', '.join(STEPS)}")
        with session_scope(rt.sessions) as db:
            w = get_warning(db, warning_id, who)
            step = STEPS[body.state] if body.state else "assign"
            if step == "review" and w.state == "reviewing" and body.assignee:
                step = "assign"  # already in review: a new assignee is a reassignment
            if step == "review" and w.state not in OPEN_STATES:
                step = "reopen"  # back in review from confirmed or dismissed: the note says why
            act(db, w, step, actor=who.actor, role=who.role, assignee=body.assignee, note=body.note,
                request_id=request.state.request_id)
            return warning_detail(db, w, who)
    except ReviewRefused as e:
        raise refused(e) from None
