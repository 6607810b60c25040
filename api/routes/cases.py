"""Cases: the queue inspectors work (one case per settlement, or per group flag), decided once; online
inquiries with deadlines, answers with attachments; the case report (PDF) and the queue as xlsx.

The findings stay addressable as flags (api/routes/flags.py); a case lists them. Who sees what is
api/scope.py's: institutions only cases sent to them as an inquiry, never scores or face images.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from minio.error import S3Error
from openpyxl import Workbook
from pydantic import BaseModel, Field
from sqlalchemy import and_, func, or_, select

from api.case_faces import case_faces, face_key
from api.case_report import build_report
from api.deps import principal, runtime
from api.errors import ApiError
from api.faces import aligned_face
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.cameras import footage_store
from api.routes.flags import _by_settlement, _links
from api.scope import can_see_flag, evidence_level, visible_orgs
from api.services import Services
from api.uploads import read_upload
from api.web.i18n import FLAG_TYPES
from correlate import cases as workflow
from correlate.flags import view as flag_view
from kernel.timefmt import TimeInvalid, iso_z, parse_day
from storage.audit import audit
from storage.db import session_scope
from storage.models import Case, CaseAttachment, Flag, Organisation, Settlement, utcnow

router = APIRouter(prefix="/v1", tags=["cases"], responses=errors(*AUTHENTICATED, 409))

CASE_VIEWERS = ("admin", "inspector", "institution")
STATUS_FILTERS = ("active", "open", "inquiry", "replied", "overdue", "confirmed", "dismissed", "acknowledged", "all")
SORTS = {"level": "level", "age": "age", "amount": "amount"}
MAX_PAGE = 500
EXPORT_MAX_ROWS = 20000


def viewer(who: Principal = Depends(principal)) -> Principal:
    if who.role not in CASE_VIEWERS:
        raise ApiError(403, "forbidden", f"a {who.role} key may not see cases")
    return who


def get_case(db, case_id: str, who: Principal) -> Case:
    c = db.get(Case, case_id[:64])
    if c is None or not can_see_flag(who, c.org_id, c.inquiry_state):
        raise ApiError(404, "not_found", f"no case {case_id[:64]!r}")
    return c


# --- the queue's filter, shared by the API, the web queue and the xlsx export ----------------------------


@dataclass
class CaseFilter:
    org: str = ""
    level: int | None = None
    levels: tuple[int, ...] = ()
    type: str = ""
    finding_level: int | None = None  # cases with a finding of this level (of ``type``, when given too)
    status: str = "active"
    q: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None  # exclusive
    sort: str = "level"
    desc: bool = True
    extra: list = field(default_factory=list)

    def conditions(self, org_ids: list[str] | None, who_role: str, now: datetime) -> list:
        conds = []
        if org_ids is not None:
            conds.append(Case.org_id.in_(org_ids))
        if who_role == "institution":
            conds.append(Case.inquiry_state.is_not(None))
        if self.org:
            conds.append(Case.org_id == self.org)
        if self.level is not None:
            conds.append(Case.level == self.level)
        if self.levels:
            conds.append(Case.level.in_(self.levels))
        if self.type or self.finding_level is not None:
            # one finding of that type (and level): what the overview's charts count (findings, not cases)
            fc = [Flag.type == self.type] if self.type else []
            if self.finding_level is not None:
                fc.append(Flag.level == self.finding_level)
            conds.append(Case.id.in_(select(Flag.case_id).where(*fc)))
        s = self.status
        if s == "active":
            conds.append(Case.status.in_(("open", "inquiry")))
        elif s == "replied":
            conds.append(and_(Case.status == "inquiry", Case.inquiry_state == "answered"))
        elif s == "overdue":
            conds.append(and_(Case.status == "inquiry", Case.inquiry_state == "sent",
                              or_(and_(Case.acknowledged_at.is_(None), Case.ack_due_at < now),
                                  Case.answer_due_at < now)))
        elif s == "inquiry":
            conds.append(and_(Case.status == "inquiry", Case.inquiry_state == "sent"))
        elif s != "all":
            conds.append(Case.status == s)
        if self.q:
            q = self.q.strip()[:100]
            name = "%" + q.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
            conds.append(or_(
                Case.id == q, Case.settlement_id == q, Case.insured_id == q, Case.org_id == q,
                Case.org_id.in_(select(Organisation.id).where(Organisation.name.like(name, escape="!"))),
                Case.id.in_(select(Flag.case_id).where(_by_settlement(q))),
                Case.id.in_(select(Flag.case_id).where(Flag.settlement_id.in_(
                    select(Settlement.id).where(Settlement.insured_id == q)))),
                Case.id.in_(select(Flag.case_id).where(Flag.id == q))))
        if self.date_from:
            conds.append(Case.occurred_at >= self.date_from)
        if self.date_to:
            conds.append(Case.occurred_at < self.date_to)
        return conds + self.extra

    def order(self) -> list:
        if self.sort == "age":  # waiting longest first (desc), or newest first
            return [Case.created_at.asc() if self.desc else Case.created_at.desc(), Case.id]
        if self.sort == "amount":
            col = func.coalesce(Case.amount, 0)
            return [col.desc() if self.desc else col.asc(), Case.level.desc(), Case.id]
        return [Case.level.desc() if self.desc else Case.level.asc(), Case.created_at.asc(), Case.id]


def _conditions(who: Principal, flt: CaseFilter) -> list:
    orgs = visible_orgs(who)
    return flt.conditions(sorted(orgs) if orgs is not None else None, who.role, utcnow())


def query_cases(db, who: Principal, flt: CaseFilter, *, limit: int, offset: int) -> tuple[int, list[Case]]:
    conds = _conditions(who, flt)
    total = db.scalar(select(func.count()).select_from(Case).where(*conds)) or 0
    rows = list(db.scalars(select(Case).where(*conds).order_by(*flt.order()).limit(limit).offset(offset)))
    return total, rows


def case_ids(db, who: Principal, flt: CaseFilter, *, limit: int) -> list[str]:
    """The ids of the queue as filtered and sorted (to find a case's neighbours)."""
    return list(db.scalars(select(Case.id).where(*_conditions(who, flt)).order_by(*flt.order()).limit(limit)))


def _day(v: str | None, name: str, end: bool = False, tz: ZoneInfo | None = None) -> datetime | None:
    if not v:
        return None
    try:
        d = parse_day(v, name)
    except TimeInvalid as e:
        raise ApiError(400, "invalid_time", e.reason) from None
    t = datetime.combine(d + timedelta(days=1) if end else d, time(0), tzinfo=tz or timezone.utc)
    return t.astimezone(timezone.utc)


def api_filter(org_id, level, type, status, q, date_from, date_to, sort, order) -> CaseFilter:
    if status not in STATUS_FILTERS:
        raise ApiError(400, "invalid_status", f"status must be one of {', '.join(STATUS_FILTERS)}")
    if sort not in SORTS:
        raise ApiError(400, "invalid_sort", f"sort must be one of {', '.join(SORTS)}")
    return CaseFilter(org=org_id or "", level=level, type=type or "", status=status, q=q or "",
                      date_from=_day(date_from, "from"), date_to=_day(date_to, "to", end=True), sort=sort,
                      desc=order == "desc")


def list_view(c: Case, findings: list[Flag], limited: bool) -> dict:
    out = workflow.view(c, limited=limited)
    out["findings"] = [{"id": f.id, "type": f.type, "level": f.level, "status": f.status} for f in findings]
    return out


def _findings_of(db, cases: list[Case]) -> dict[str, list[Flag]]:
    by: dict[str, list[Flag]] = {c.id: [] for c in cases}
    for f in db.scalars(select(Flag).where(Flag.case_id.in_(list(by))).order_by(Flag.level.desc(), Flag.id)):
        by[f.case_id].append(f)
    return by


@router.get("/cases")
def list_cases(request: Request, org_id: str | None = None, level: int | None = Query(None, ge=1, le=5),
               type: str | None = Query(None, max_length=40, description="cases with a finding of this type"),
               status: str = Query("active", description=", ".join(STATUS_FILTERS)),
               q: str | None = Query(None, max_length=100, description="case id, settlement id, insured id, "
                                     "institution id or name, finding id"),
               date_from: str | None = Query(None, alias="from"), date_to: str | None = Query(None, alias="to"),
               sort: str = Query("level", description="level | age | amount"),
               order: Literal["asc", "desc"] = "desc", limit: int = Query(100, ge=1, le=MAX_PAGE),
               offset: int = Query(0, ge=0, le=2**31), rt: Services = Depends(runtime),
               who: Principal = Depends(viewer)):
    """The queue: cases the caller may see, highest level first (or by age or amount), paged."""
    flt = api_filter(org_id, level, type, status, q, date_from, date_to, sort, order)
    with session_scope(rt.sessions) as db:
        total, rows = query_cases(db, who, flt, limit=limit, offset=offset)
        fs = _findings_of(db, rows)
        audit(db, actor=who.actor, action="cases.list", outcome="ok", request_id=request.state.request_id,
              detail={"count": len(rows), "total": total, "status": status, "q": q, "org_id": org_id})
        limited = evidence_level(who) != "full"
        return {"total": total, "cases": [list_view(c, fs[c.id], limited) for c in rows]}


@router.get("/cases/export.xlsx")
def export_xlsx(request: Request, org_id: str | None = None, level: int | None = Query(None, ge=1, le=5),
                type: str | None = Query(None, max_length=40), status: str = "active",
                q: str | None = Query(None, max_length=100), date_from: str | None = Query(None, alias="from"),
                date_to: str | None = Query(None, alias="to"), sort: str = "level",
                order: Literal["asc", "desc"] = "desc", rt: Services = Depends(runtime),
                who: Principal = Depends(viewer)):
    """The queue as filtered, as an Excel workbook (Chinese headings, local times)."""
    if who.role == "institution":
        raise ApiError(403, "forbidden", "the queue export is for inspectors")
    flt = api_filter(org_id, level, type, status, q, date_from, date_to, sort, order)
    data = queue_workbook(rt, who, flt, request.state.request_id)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="cases.xlsx"',
                             "Cache-Control": "private, no-store"})


STATUS_ZH = {"open": "待处理", "inquiry": "质询中", "confirmed": "已确认", "dismissed": "已排除", "acknowledged": "已阅"}


def queue_workbook(rt: Services, who: Principal, flt: CaseFilter, request_id: str | None) -> bytes:
    tz = ZoneInfo(rt.settings.web_timezone)
    with session_scope(rt.sessions) as db:
        total, rows = query_cases(db, who, flt, limit=EXPORT_MAX_ROWS, offset=0)
        fs = _findings_of(db, rows)
        names = dict(db.execute(select(Organisation.id, Organisation.name)).all())
        amounts = dict(db.execute(select(Settlement.id, Settlement.amount).where(
            Settlement.id.in_([c.settlement_id for c in rows if c.settlement_id]))).all())
        audit(db, actor=who.actor, action="cases.export_xlsx", outcome="ok", request_id=request_id,
              detail={"count": len(rows), "total": total, "status": flt.status, "q": flt.q or None})
    wb = Workbook()
    ws = wb.active
    ws.title = "预警案件"
    ws.append(["案件编号", "级别", "状态", "机构", "结算编号", "参保人编号", "结算时间", "金额（元）", "发现", "质询",
               "答复时间"])
    for c in rows:
        local = lambda t: t.astimezone(tz).replace(tzinfo=None) if t else None  # noqa: E731  (Excel has no zones)
        ws.append([c.id, c.level, STATUS_ZH.get(c.status, c.status), names.get(c.org_id, c.org_id),
                   c.settlement_id or "", c.insured_id or "", local(c.occurred_at),
                   float(amounts[c.settlement_id]) if c.settlement_id in amounts else None,
                   "；".join(FLAG_TYPES.get(f.type, (f.type,))[0] for f in fs[c.id]),
                   {"sent": "待答复", "answered": "已答复"}.get(c.inquiry_state or "", ""), local(c.answered_at)])
    for col, width in zip("ABCDEFGHIJK", (34, 6, 8, 20, 18, 16, 20, 12, 40, 8, 20)):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2, min_col=7, max_col=7):
        for cell in row:
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


class AckIn(BaseModel):
    case_ids: list[str] = Field(..., min_length=1, max_length=500)
    note: str = Field(..., min_length=1, max_length=4000)


@router.post("/cases/acknowledge")
def bulk_acknowledge(body: AckIn, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(viewer)):
    """已阅 for reminders (levels 1-2) in bulk, with one note; all or nothing."""
    if who.role not in ("inspector", "admin"):
        raise ApiError(403, "forbidden", "only an inspector acknowledges cases")
    with session_scope(rt.sessions) as db:
        cases = [get_case(db, i, who) for i in dict.fromkeys(body.case_ids)]
        workflow.acknowledge_many(db, cases, actor=who.actor, role=who.role, note=body.note.strip(),
                                  request_id=request.state.request_id, legal=rt.legal_holds)
        return {"acknowledged": [c.id for c in cases]}


def case_detail(db, c: Case, who: Principal) -> dict:
    lvl = evidence_level(who)
    fviews = [_links(flag_view(f, evidence=lvl), f, lvl) for f in workflow.findings(db, c)]
    atts = list(db.scalars(select(CaseAttachment).where(CaseAttachment.case_id == c.id)
                           .order_by(CaseAttachment.uploaded_at)))
    return workflow.view(c, finding_views=fviews, events=workflow.events(db, c), attachments=atts,
                         limited=lvl != "full")


@router.get("/cases/{case_id}")
def get_case_view(case_id: str, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(viewer)):
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
        out = case_detail(db, c, who)
        for f in out["findings"]:  # what was seen: each finding, as GET /v1/flags/{id}
            audit(db, actor=who.actor, action="flag.view", outcome="ok", org_id=c.org_id, subject=f"flag:{f['id']}",
                  request_id=request.state.request_id, detail={"case_id": c.id})
        return out


class DecisionIn(BaseModel):
    decision: Literal["confirm", "dismiss", "acknowledge"]
    note: str = Field(..., min_length=1, max_length=4000, description="Why: one note for all the findings.")


@router.post("/cases/{case_id}/review")
def review_case(case_id: str, body: DecisionIn, request: Request, rt: Services = Depends(runtime),
                who: Principal = Depends(viewer)):
    """Decide the case once: confirm, dismiss, or acknowledge (levels 1-2). Covers every open finding."""
    if who.role not in ("inspector", "admin"):
        raise ApiError(403, "forbidden", "only an inspector decides a case")
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
        workflow.decide(db, c, body.decision, actor=who.actor, role=who.role, note=body.note.strip(),
                        request_id=request.state.request_id, legal=rt.legal_holds)
        return case_detail(db, c, who)


class QuestionIn(BaseModel):
    note: str = Field(..., min_length=1, max_length=4000, description="The question to the institution.")


@router.post("/cases/{case_id}/inquiry")
def send_case_inquiry(case_id: str, body: QuestionIn, request: Request, rt: Services = Depends(runtime),
                      who: Principal = Depends(viewer)):
    """Send the online inquiry (网上质询) with its deadlines; not for level 5 (definite: confirmed)."""
    if who.role not in ("inspector", "admin"):
        raise ApiError(403, "forbidden", "only an inspector sends an inquiry")
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
        workflow.send_inquiry(db, c, actor=who.actor, role=who.role, note=body.note.strip(), settings=rt.settings,
                              request_id=request.state.request_id)
        return case_detail(db, c, who)


async def read_files(files: list[UploadFile], max_bytes: int) -> list[workflow.Upload]:
    out = []
    for f in files:
        if not f.filename and not f.size:
            continue  # an empty file input of a form
        out.append(workflow.Upload(f.filename or "attachment", await read_upload(f, max_bytes)))
    return out


@router.post("/cases/{case_id}/answer")
async def answer_case_inquiry(case_id: str, request: Request, note: str = Form(..., min_length=1, max_length=4000),
                              files: list[UploadFile] = File(default=[]), rt: Services = Depends(runtime),
                              who: Principal = Depends(viewer)):
    """The institution's answer, with attachments (PDF, JPEG, PNG; type read from the content; limits in
    the settings ``inquiry_attachment_*``)."""
    if who.role != "institution":
        raise ApiError(403, "forbidden", "only the institution answers an inquiry")
    uploads = await read_files(files, rt.settings.inquiry_attachment_max_bytes)

    def go():
        with session_scope(rt.sessions) as db:
            c = get_case(db, case_id, who)
            workflow.answer_inquiry(db, c, actor=who.actor, role=who.role, note=note.strip(), files=uploads,
                                    settings=rt.settings, store=footage_store(rt),
                                    request_id=request.state.request_id)
            return case_detail(db, c, who)

    return await run_in_threadpool(go)


@router.get("/cases/{case_id}/attachments/{attachment_id}")
def attachment(case_id: str, attachment_id: str, request: Request, rt: Services = Depends(runtime),
               who: Principal = Depends(viewer)):
    """An answer's attachment, shown inline (its type as sniffed at upload); every view is audited."""
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
        a = db.get(CaseAttachment, attachment_id[:32])
        if a is None or a.case_id != c.id:
            raise ApiError(404, "not_found", "no such attachment in this case")
        audit(db, actor=who.actor, action="case.attachment.view", outcome="ok", org_id=c.org_id,
              subject=f"case:{c.id}", request_id=request.state.request_id,
              detail={"attachment_id": a.id, "sha256": a.sha256})
        key, kind, name = a.key, a.content_type, a.filename
    try:
        data = footage_store(rt).get_bytes(rt.settings.bucket_footage, key)
    except S3Error as e:
        if e.code in ("NoSuchKey", "NoSuchObject"):
            raise ApiError(410, "gone", "the attachment is no longer stored") from None
        raise
    ascii_name = "".join(ch if ch.isascii() and ch.isalnum() or ch in "._-" else "_" for ch in name)
    # an image is shown in a sandbox that runs nothing; a PDF needs the browser's viewer, which a sandbox or
    # object-src 'none' (the app's CSP) would block: framing is what stays refused
    csp = "frame-ancestors 'none'" if kind == "application/pdf" else "sandbox; default-src 'none'; img-src 'self'"
    return Response(data, media_type=kind, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp,
        "Content-Disposition": f'inline; filename="{ascii_name}"'})


@router.get("/cases/{case_id}/report.pdf")
def case_report(case_id: str, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(viewer)):
    """The case report (Chinese, PDF): settlement, findings and reasons, faces side by side, key frames at the
    settlement second, decision history, evidence package hashes. Inspectors and admins (biometric)."""
    if evidence_level(who) != "full":
        raise ApiError(403, "forbidden", "the case report holds face images: inspectors only")
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
    pdf = build_report(rt, who, c.id, request.state.request_id)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="case-{c.id}.pdf"', "Cache-Control": "private, no-store"})


# --- faces side by side ---------------------------------------------------------------------------------


def _faces_of(db, c: Case, who: Principal) -> list[dict]:
    if evidence_level(who) != "full":
        raise ApiError(404, "not_found", "face images are for inspectors only")
    return case_faces(c, workflow.findings(db, c))


@router.get("/cases/{case_id}/faces")
def list_faces(case_id: str, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(viewer)):
    """The case's faces per person (enrolled photo, face-pay capture, best footage crop of each person
    seen), each with its score and time and the URLs of its aligned crop and of the original."""
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
        faces = _faces_of(db, c, who)
    base = f"/v1/cases/{case_id}/faces"
    return {"faces": [{**{k: v for k, v in x.items() if k != "at"}, "at": iso_z(x["at"]),
                       "aligned_url": f"{base}/{x['kind']}/{x['ref']}/aligned.jpg",
                       "original_url": f"{base}/{x['kind']}/{x['ref']}/original.jpg"} for x in faces]}


def _face_bytes(rt: Services, who: Principal, case_id: str, kind: str, ref: str, request: Request) -> bytes:
    with session_scope(rt.sessions) as db:
        c = get_case(db, case_id, who)
        faces = _faces_of(db, c, who)
        found = face_key(db, c, faces, kind, ref)
        if found is None:
            raise ApiError(404, "not_found", "no such face in this case's evidence")
        fid = next(x["flag_id"] for x in faces if x["kind"] == kind and x["ref"] == ref)
        audit(db, actor=who.actor, action=f"evidence.{kind}.view", outcome="ok", org_id=c.org_id,
              subject=f"case:{c.id}", request_id=request.state.request_id,
              detail={"ref": ref, "kind": kind, "flag_id": fid})
    try:
        return rt.store.get_bytes(rt.settings.bucket_biometrics, found[1])
    except S3Error as e:
        if e.code in ("NoSuchKey", "NoSuchObject"):
            raise ApiError(410, "gone", "the image is no longer stored (erased or past its retention)") from None
        raise


NO_STORE = {"Cache-Control": "private, no-store"}


@router.get("/cases/{case_id}/faces/{kind}/{ref}/original.jpg")
def face_original(case_id: str, kind: Literal["enrolled", "capture", "footage"], ref: str, request: Request,
                  rt: Services = Depends(runtime), who: Principal = Depends(viewer)):
    data = _face_bytes(rt, who, case_id, kind, ref, request)
    kind_ = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return Response(data, media_type=kind_, headers=NO_STORE)


@router.get("/cases/{case_id}/faces/{kind}/{ref}/aligned.jpg")
async def face_aligned(case_id: str, kind: Literal["enrolled", "capture", "footage"], ref: str, request: Request,
                       rt: Services = Depends(runtime), who: Principal = Depends(viewer)):
    """The face aligned as the recogniser sees it, FACE_SIZE square; ``X-Face-Box``: where it is in the
    original (x1,y1,x2,y2 as fractions), when a face was found."""
    def go():
        return aligned_face(_face_bytes(rt, who, case_id, kind, ref, request), rt.pipeline, rt.settings)

    jpg, box = await run_in_threadpool(go)
    return Response(jpg, media_type="image/jpeg",
                    headers={**NO_STORE, **({"X-Face-Box": ",".join(map(str, box))} if box else {})})
