"""The queue of cases, the case page (its findings, decided once), bulk 已阅, the institution's inquiries
with deadlines and attachments. The workflow is correlate/cases.py; the filter is api/routes/cases.py's."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import UploadFile

from api.case_faces import case_faces
from api.errors import ApiError
from api.routes.cameras import footage_store
from api.routes.cases import STATUS_FILTERS, CaseFilter, case_ids, query_cases, queue_workbook
from api.scope import can_see_flag, can_see_org, evidence_level
from api.uploads import read_upload
from api.web.claim_lines import claim_columns
from api.web.common import Ctx, WebError, form_checked, form_day, need_role, orgs_visible, render, web_ctx
from api.web.i18n import FLAG_TYPES
from api.web.pages import _local_day_start as local_day_start
from api.web.pages import flag_evidence
from api.web.ward_timeline import admission_card, bed_timeline
from correlate import cases as workflow
from correlate.flags import view as flag_view
from kernel.errors import Refusal
from storage.audit import audit
from storage.db import session_scope
from storage.models import Case, CaseAttachment, Flag, Settlement, utcnow

router = APIRouter(include_in_schema=False)

REVIEWERS = ("inspector", "admin")
PAGE = 50
SORTS = ("level", "age", "amount")
QUEUE_KEYS = ("org", "type", "level", "status", "date_from", "date_to", "q", "sort", "page")
NEIGHBOURS_MAX = 5000  # cases looked through to find the next one in the queue


def level_group(n: int) -> str:
    return "reminder" if n <= 2 else ("definite" if n >= 5 else "check")


def _queue_filter(ctx: Ctx, f: dict) -> CaseFilter:
    for k in ("level", "flevel"):
        if f.get(k) and f[k] not in ("1", "2", "3", "4", "5"):
            raise WebError(400, "bad_request", f"{k} must be 1-5")
    if f["status"] not in STATUS_FILTERS:
        raise WebError(400, "bad_request", f"status must be one of {', '.join(STATUS_FILTERS)}")
    if f["sort"] not in SORTS:
        raise WebError(400, "bad_request", f"sort must be one of {', '.join(SORTS)}")
    d_from, d_to = form_day(f["date_from"], "date_from"), form_day(f["date_to"], "date_to")
    return CaseFilter(org=f["org"], level=int(f["level"]) if f["level"] else None, type=f["type"][:40],
                      finding_level=int(f["flevel"]) if f.get("flevel") else None,
                      status=f["status"], q=f["q"][:100], sort=f["sort"], desc=True,
                      date_from=local_day_start(ctx.t, d_from) if d_from else None,
                      date_to=local_day_start(ctx.t, d_to + timedelta(days=1)) if d_to else None)


def _form(org="", type="", level="", status="active", date_from="", date_to="", q="", sort="level", page="1",
          flevel="") -> dict:
    return {"org": org, "type": type, "level": level, "status": status, "date_from": date_from, "date_to": date_to,
            "q": q.strip(), "sort": sort, "page": page, "flevel": flevel}


def _page_no(v: str) -> int:
    try:
        return max(1, min(int(v or 1), 10**6))
    except ValueError:
        raise WebError(400, "bad_request", "page must be a number") from None


@router.get("/flags")
def queue(ctx: Ctx = Depends(web_ctx), org: str = "", type: str = "", level: str = "", status: str = "active",
          date_from: str = "", date_to: str = "", q: str = "", sort: str = "level", page: str = "1",
          done: str = "", error: str = "", flevel: str = ""):
    """The queue: one row per case, its level chip, findings, status (已答复 / overdue marks), paged.
    ``flevel``: cases with a finding of that level (the overview's charts link here with it)."""
    need_role(ctx, *REVIEWERS)
    f = _form(org, type, level, status, date_from, date_to, q, sort, page, flevel)
    flt = _queue_filter(ctx, f)
    n = _page_no(page)
    with session_scope(ctx.rt.sessions) as db:
        orgs = orgs_visible(db, ctx.who)
        if org and org not in {o.id for o in orgs}:
            flt.extra.append(Case.id.is_(None))  # out of scope: nothing (never a hint it exists)
        counts_flt = CaseFilter(**{**flt.__dict__, "level": None, "extra": list(flt.extra)})
        counts = {lv: query_cases(db, ctx.who, CaseFilter(**{**counts_flt.__dict__, "level": lv}), limit=1,
                                  offset=0)[0] for lv in (5, 4, 3, 2, 1)}
        total, cases = query_cases(db, ctx.who, flt, limit=PAGE, offset=(n - 1) * PAGE)
        fs = {c.id: [] for c in cases}
        for fl in db.scalars(select(Flag).where(Flag.case_id.in_(list(fs))).order_by(Flag.level.desc(), Flag.id)):
            fs[fl.case_id].append(fl)
        amounts = dict(db.execute(select(Settlement.id, Settlement.amount).where(
            Settlement.id.in_([c.settlement_id for c in cases if c.settlement_id]))).all())
        types = sorted(set(FLAG_TYPES) | set(db.scalars(select(Flag.type).distinct())))
        # the queue's view keeps its name in the trail (flags.list), as GET /v1/flags'
        audit(db, actor=ctx.who.actor, action="flags.list", outcome="ok", request_id=ctx.request.state.request_id,
              detail={"view": "web", "count": len(cases), "total": total, **{k: v or None for k, v in f.items()}})
        db.flush()  # what was written (audit, read marks) is kept; then the rows are read detached
        db.expunge_all()
    now = utcnow()
    ctx_q = urlencode({k: v for k, v in f.items() if v and k != "page"})
    # waiting since the case was raised, or since the institution answered (the inspector's turn again)
    rows = [{"case": c, "findings": fs[c.id], "amount": amounts.get(c.settlement_id),
             "age_s": (now - (c.answered_at if c.status == "inquiry" and c.answered_at else c.created_at))
             .total_seconds(), "deadlines": workflow.deadlines(c, now),
             "overdue": workflow.overdue(c, now), "group": level_group(c.level)} for c in cases]

    def link(**kw) -> str:
        return "/flags?" + urlencode({k: v for k, v in {**f, "page": "1", **kw}.items() if v})

    return render(ctx, "queue.html", rows=rows, orgs=orgs, org_names={o.id: o.name for o in orgs}, types=types,
                  counts=counts, total=total, page=n, page_size=PAGE, statuses=STATUS_FILTERS, sorts=SORTS, f=f,
                  ctx_q=ctx_q, link=link, level_link=lambda lv: link(level=lv), done=done, error=error,
                  xlsx="/flags/export.xlsx?" + ctx_q)


@router.get("/flags/export.xlsx")
def queue_xlsx(ctx: Ctx = Depends(web_ctx), org: str = "", type: str = "", level: str = "", status: str = "active",
               date_from: str = "", date_to: str = "", q: str = "", sort: str = "level", flevel: str = ""):
    """The queue as filtered on the page, as xlsx."""
    need_role(ctx, *REVIEWERS)
    flt = _queue_filter(ctx, _form(org, type, level, status, date_from, date_to, q, sort, flevel=flevel))
    data = queue_workbook(ctx.rt, ctx.who, flt, ctx.request.state.request_id)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="cases.xlsx"',
                             "Cache-Control": "private, no-store"})


@router.post("/flags/acknowledge")
async def bulk_ack(ctx: Ctx = Depends(web_ctx)):
    """已阅 for the chosen reminders (levels 1-2), one note for the batch; all or nothing."""
    need_role(ctx, *REVIEWERS)
    form = await ctx.request.form()
    await form_checked(ctx)
    ids = [str(v)[:64] for v in form.getlist("case_id")][:500]
    note = str(form.get("note") or "").strip()[:2000]
    back = _safe_queue(str(form.get("ctx") or ""))
    if not ids:
        return RedirectResponse(f"{back}&error=ack_selected_none", status_code=303)
    if not note:
        return RedirectResponse(f"{back}&error=note_required", status_code=303)

    def go():
        with session_scope(ctx.rt.sessions) as db:
            cases = [_visible_case(db, ctx, i) for i in ids]
            try:
                workflow.acknowledge_many(db, cases, actor=ctx.who.actor, role=ctx.who.role, note=note,
                                          request_id=ctx.request.state.request_id, legal=ctx.rt.legal_holds)
            except Refusal as e:
                return e.code
            return None

    err = await run_in_threadpool(go)
    return RedirectResponse(f"{back}&" + (f"error={err}" if err else f"done=ack:{len(ids)}"), status_code=303)


def _safe_queue(qs: str) -> str:
    """Back to the queue as it was filtered (only the queue's own parameters)."""
    return "/flags?" + urlencode([(k, v) for k, v in parse_qsl(qs) if k in QUEUE_KEYS and k != "page"] or
                                 [("status", "active")])


# --- the case page ------------------------------------------------------------------------------------


def _visible_case(db, ctx: Ctx, case_id: str) -> Case:
    c = db.get(Case, case_id[:64])
    if c is None or not can_see_flag(ctx.who, c.org_id, c.inquiry_state):
        raise WebError(404, "not_found")
    return c


def _neighbours(db, ctx: Ctx, c: Case, qs: str) -> tuple[str | None, str | None, list[str]]:
    """The previous and next case of the queue the page was opened from (filters and sort kept)."""
    f = _form(**{k: v for k, v in parse_qsl(qs) if k in QUEUE_KEYS})
    try:
        flt = _queue_filter(ctx, f)
    except WebError:
        flt = CaseFilter()
    ids = case_ids(db, ctx.who, flt, limit=NEIGHBOURS_MAX)
    if c.id not in ids:
        return None, (ids[0] if ids else None), ids
    i = ids.index(c.id)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None), ids


@router.get("/cases/{case_id}")
def case_page(case_id: str, ctx: Ctx = Depends(web_ctx), q: str = "", done: str = "", error: str = ""):
    """One case: its level chip and status, the inquiry at its head with deadlines, each finding with its
    reason and evidence, the faces side by side, the footage, the history, one decision for all."""
    if ctx.who.role == "institution":
        return RedirectResponse(f"/inquiries/{case_id}", status_code=303)
    need_role(ctx, *REVIEWERS)
    with session_scope(ctx.rt.sessions) as db:
        c = _visible_case(db, ctx, case_id)
        fs = workflow.findings(db, c)
        if not fs:
            raise WebError(404, "not_found")
        primary = next((f for f in fs if (f.evidence or {}).get("cameras")), fs[0])
        data = flag_evidence(db, ctx, primary, biometrics=True)
        data["events"] = workflow.events(db, c)
        data["case"] = c
        data["findings"] = [{"flag": f, "view": flag_view(f, evidence="full"),
                             "claim": claim_columns(f.evidence or {}, ctx.t), "ward": bed_timeline(db, f, ctx.t)}
                            for f in fs]
        data["finding_of"] = {f.id: f for f in fs}
        # a finding about an admission (挂床住院) has no settlement: the admission takes its card
        data["admission"] = None if data.get("settlement") else admission_card(db, primary)
        data["faces_cmp"] = case_faces(c, fs)
        data["attachments"] = list(db.scalars(select(CaseAttachment).where(CaseAttachment.case_id == c.id)
                                              .order_by(CaseAttachment.uploaded_at)))
        data["question"] = next((e for e in reversed(data["events"]) if e.action == "inquiry_sent"), None)
        prev_id, next_id, _ = _neighbours(db, ctx, c, q)
        if workflow.mark_read(db, c, who_role=ctx.who.role, actor=ctx.who.actor,
                              request_id=ctx.request.state.request_id):
            pass  # the answer is read now: the unread count drops
        for f in fs:  # what was seen: each finding (the trail reads per flag and insured person)
            audit(db, actor=ctx.who.actor, action="flag.view", outcome="ok", org_id=c.org_id, subject=f"flag:{f.id}",
                  request_id=ctx.request.state.request_id, detail={"case_id": c.id})
        deadlines = workflow.deadlines(c)
        db.flush()  # what was written (audit, read marks) is kept; then the rows are read detached
        db.expunge_all()
    return render(ctx, "case.html", done=done, error=error, q=q, limited_history=False, prev_id=prev_id, next_id=next_id,
                  qs=urlencode({"q": q}) if q else "", deadlines=deadlines, overdue=workflow.overdue(c),
                  group=level_group(c.level), **data)


@router.post("/cases/{case_id}/action")
async def case_action(case_id: str, ctx: Ctx = Depends(web_ctx)):
    """confirm | dismiss | acknowledge | inquiry, with one note; then the next case of the queue opens."""
    need_role(ctx, *REVIEWERS)
    form = await form_checked(ctx)
    return await _act(ctx, case_id, form)


@router.post("/flags/{flag_id}/action")
async def finding_action(flag_id: str, ctx: Ctx = Depends(web_ctx)):
    """A form posted for a finding (pages of before cases) acts on its case."""
    need_role(ctx, *REVIEWERS)
    form = await form_checked(ctx)
    with session_scope(ctx.rt.sessions) as db:
        f = db.get(Flag, flag_id[:64])
        if f is None or f.case_id is None or not can_see_flag(ctx.who, f.org_id, f.inquiry_state):
            raise WebError(404, "not_found")
        case_id = f.case_id
    return await _act(ctx, case_id, form)


async def _act(ctx: Ctx, case_id: str, form: dict):
    action = form.get("action")
    note = str(form.get("note") or "").strip()[:2000]
    qs = str(form.get("q") or "")[:2000]
    here = f"/cases/{case_id[:64]}?" + urlencode({"q": qs})
    if action not in ("confirm", "dismiss", "inquiry", "acknowledge"):
        raise WebError(400, "bad_request", "action must be confirm, dismiss, acknowledge or inquiry")
    if not note:
        return RedirectResponse(f"{here}&error=note_required", status_code=303)

    def go():
        with session_scope(ctx.rt.sessions) as db:
            c = _visible_case(db, ctx, case_id)
            _, next_id, _ = _neighbours(db, ctx, c, qs)
            try:
                if action == "inquiry":
                    workflow.send_inquiry(db, c, actor=ctx.who.actor, role=ctx.who.role, note=note,
                                          settings=ctx.rt.settings, request_id=ctx.request.state.request_id)
                else:
                    workflow.decide(db, c, action, actor=ctx.who.actor, role=ctx.who.role, note=note,
                                    request_id=ctx.request.state.request_id, legal=ctx.rt.legal_holds)
            except workflow.CaseError as e:
                return None, e.code
            return next_id, None

    next_id, err = await run_in_threadpool(go)
    if err:
        return RedirectResponse(f"{here}&error={err}", status_code=303)
    if action == "inquiry" or next_id is None:  # an inquiry stays open here; the end of the queue: the queue
        return RedirectResponse(f"{here}&done=1" if action == "inquiry" else _safe_queue(qs) + "&done=queue_done",
                                status_code=303)
    return RedirectResponse(f"/cases/{next_id}?" + urlencode({"q": qs, "done": "1"}), status_code=303)


@router.get("/flags/{flag_id}")
def flag_page(flag_id: str, ctx: Ctx = Depends(web_ctx)):
    """A finding opens its case (the finding's section of it)."""
    with session_scope(ctx.rt.sessions) as db:
        f = db.get(Flag, flag_id[:64])
        if f is None or f.case_id is None or not can_see_flag(ctx.who, f.org_id, f.inquiry_state):
            raise WebError(404, "not_found")
        case_id = f.case_id
    if ctx.who.role == "institution":
        return RedirectResponse(f"/inquiries/{case_id}", status_code=303)
    need_role(ctx, *REVIEWERS)
    return RedirectResponse(f"/cases/{case_id}#finding-{flag_id[:64]}", status_code=303)


# --- institution: inquiries -------------------------------------------------------------------------


@router.get("/inquiries")
def inquiries(ctx: Ctx = Depends(web_ctx)):
    """Inquiries to answer (with their deadlines and overdue marks), then those answered."""
    need_role(ctx, "institution", "admin")
    with session_scope(ctx.rt.sessions) as db:
        org_ids = [o.id for o in orgs_visible(db, ctx.who)]
        cases = list(db.scalars(select(Case).where(Case.org_id.in_(org_ids), Case.inquiry_state.is_not(None))
                                .order_by(Case.answer_due_at.asc(), Case.updated_at.desc()).limit(500)))
        fs: dict[str, list[Flag]] = {c.id: [] for c in cases}
        for fl in db.scalars(select(Flag).where(Flag.case_id.in_(list(fs))).order_by(Flag.level.desc())):
            fs[fl.case_id].append(fl)
        amounts = dict(db.execute(select(Settlement.id, Settlement.amount).where(
            Settlement.id.in_([c.settlement_id for c in cases if c.settlement_id]))).all())
        db.flush()  # what was written (audit, read marks) is kept; then the rows are read detached
        db.expunge_all()
    now = utcnow()
    rows = [{"case": c, "findings": fs[c.id], "amount": amounts.get(c.settlement_id),
             "deadlines": workflow.deadlines(c, now), "overdue": workflow.overdue(c, now)} for c in cases]
    waiting = [r for r in rows if r["case"].status == "inquiry" and r["case"].inquiry_state == "sent"]
    answered = [r for r in rows if r not in waiting]
    return render(ctx, "inquiries.html", waiting=waiting, answered=answered)


def _inquiry_case(db, ctx: Ctx, ident: str) -> Case:
    """A case carrying an inquiry the person may see; a finding's id leads to its case."""
    c = db.get(Case, ident[:64])
    if c is None:
        f = db.get(Flag, ident[:64])
        c = db.get(Case, f.case_id) if f is not None and f.case_id else None
    if c is None or c.inquiry_state is None or not can_see_flag(ctx.who, c.org_id, c.inquiry_state):
        raise WebError(404, "not_found")
    return c


@router.get("/inquiries/{case_id}")
def inquiry_page(case_id: str, ctx: Ctx = Depends(web_ctx), done: str = "", error: str = ""):
    """The institution's view of one inquiry: the question at its head with the deadlines, the findings'
    reasons without scores, the settlement, its footage where api.scope lets it, the reply with attachments.
    Opening it acknowledges it (签收)."""
    need_role(ctx, "institution", "admin")
    with session_scope(ctx.rt.sessions) as db:
        c = _inquiry_case(db, ctx, case_id)
        if c.id != case_id:
            return RedirectResponse(f"/inquiries/{c.id}", status_code=303)
        fs = workflow.findings(db, c)
        primary = next((f for f in fs if (f.evidence or {}).get("cameras")), fs[0])
        data = flag_evidence(db, ctx, primary, biometrics=False)
        events = workflow.events(db, c)
        data["events"] = [e for e in events if e.action.startswith("inquiry")]
        data["question"] = next((e for e in reversed(events) if e.action == "inquiry_sent"), None)
        data["findings"] = [{"flag": f, "view": (v := flag_view(f, evidence="limited")),
                             "claim": claim_columns(v["evidence"], ctx.t)} for f in fs]
        data["finding_of"] = {f.id: f for f in fs}
        data["attachments"] = list(db.scalars(select(CaseAttachment).where(CaseAttachment.case_id == c.id)))
        if ctx.who.role == "institution":
            workflow.mark_read(db, c, who_role="institution", actor=ctx.who.actor,
                               request_id=ctx.request.state.request_id)
        audit(db, actor=ctx.who.actor, action="inquiry.view", outcome="ok", org_id=c.org_id, subject=f"case:{c.id}",
              request_id=ctx.request.state.request_id, detail={"flag_id": primary.id})
        deadlines = workflow.deadlines(c)
        footage_ok = can_see_org(ctx.who, c.org_id)
        db.flush()  # what was written (audit, read marks) is kept; then the rows are read detached
        db.expunge_all()
    s = ctx.rt.settings
    return render(ctx, "inquiry.html", done=done, error=error, case=c, limited_history=True, deadlines=deadlines,
                  overdue=workflow.overdue(c), footage_ok=footage_ok, max_mb=s.inquiry_attachment_max_bytes // 2**20,
                  max_files=s.inquiry_attachment_max_files, limited=evidence_level(ctx.who) != "full", **data)


@router.post("/inquiries/{case_id}/reply")
async def inquiry_reply(case_id: str, ctx: Ctx = Depends(web_ctx)):
    """The answer with its attachments (multipart form)."""
    need_role(ctx, "institution")
    form = await ctx.request.form()
    await form_checked(ctx)
    note = str(form.get("note") or "").strip()[:4000]
    if not note:
        return RedirectResponse(f"/inquiries/{case_id[:64]}?error=note_required", status_code=303)
    s = ctx.rt.settings
    uploads = []
    for f in form.getlist("files"):
        if isinstance(f, UploadFile) and (f.filename or f.size):
            try:
                uploads.append(workflow.Upload(f.filename or "attachment",
                                               await read_upload(f, s.inquiry_attachment_max_bytes)))
            except ApiError as e:
                raise WebError(e.status, "bad_request", e.reason) from None

    def go():
        with session_scope(ctx.rt.sessions) as db:
            c = _inquiry_case(db, ctx, case_id)
            try:
                workflow.answer_inquiry(db, c, actor=ctx.who.actor, role=ctx.who.role, note=note, files=uploads,
                                        settings=s, store=footage_store(ctx.rt), request_id=ctx.request.state.request_id)
            except workflow.CaseError as e:
                raise WebError(e.status, "bad_request", e.reason) from None
            return c.id

    cid = await run_in_threadpool(go)
    return RedirectResponse(f"/inquiries/{cid}?done=1", status_code=303)

