"""The audit trail, readable: ``GET /v1/audit`` (a page of events as JSON) and ``GET /v1/audit.csv`` (the
same filters, streamed as CSV, at most ``CSV_MAX_ROWS`` rows). Admins and auditors only; every read of
the trail is itself an audit event (``audit.read``, ``audit.export``) naming the filters used.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, ROW_ID_MAX, errors
from api.services import Services
from kernel.timefmt import TimeInvalid, parse_day, parse_instant
from storage.audit import TrailFilter, count_trail, event_dict, iter_trail, last_event_id, read_trail
from storage.audit import audit as audit_event
from storage.db import session_scope

router = APIRouter(prefix="/v1", tags=["audit"], responses=errors(*AUTHENTICATED))

AUDIT_READERS = ("admin", "auditor")
PAGE_MAX = 500
OFFSET_MAX = 1_000_000
CSV_MAX_ROWS = 100_000  # one export; narrow the filters (or page the JSON) for more
CSV_COLUMNS = ("id", "at", "actor", "action", "outcome", "org_id", "insured_id", "flag_id", "camera_id", "subject",
               "request_id", "detail", "note")


def trail_time(value: str | None, name: str, end: bool = False) -> datetime | None:
    """ISO 8601 with a zone, or a date (a UTC day; ``to`` then means the end of that day)."""
    if not value or not value.strip():
        return None
    v = value.strip().replace(" ", "+")  # an unescaped '+' of a query string arrives as a space
    try:  # the one parser of user-supplied times, with its supported range (kernel/timefmt.py)
        if len(v) == 10:
            d = datetime.combine(parse_day(v, name), datetime.min.time(), tzinfo=timezone.utc)
            return d + timedelta(days=1) if end else d
        return parse_instant(v, name)
    except TimeInvalid as e:
        raise ApiError(400, "invalid_time", e.reason) from None


def trail_filter(actor: str | None = Query(None, max_length=200, description="user:NAME, key:ID, cli, or a bare name"),
                 org: str | None = Query(None, max_length=64, description="Organisation id"),
                 insured: str | None = Query(None, max_length=64, description="Insured person's id"),
                 flag: str | None = Query(None, max_length=32, description="Flag id"),
                 camera: str | None = Query(None, max_length=64, description="Camera id"),
                 action: str | None = Query(None, max_length=64, description="An action (flag.view), a prefix "
                                            "with * (evidence.*), or 'refused' for refused requests"),
                 date_from: str | None = Query(None, alias="from", max_length=40,
                                               description="ISO 8601 with zone, or YYYY-MM-DD (UTC)"),
                 date_to: str | None = Query(None, alias="to", max_length=40,
                                             description="Exclusive; YYYY-MM-DD means up to the end of that day"),
                 max_id: int | None = Query(None, ge=0, le=ROW_ID_MAX, description="Only events up to this id: pass the max_id "
                                            "of the first page to page through a fixed snapshot")
                 ) -> TrailFilter:
    since, until = trail_time(date_from, "from"), trail_time(date_to, "to", end=True)
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "invalid_range", "to must be after from")
    return TrailFilter(actor=actor or None, org_id=org or None, insured_id=insured or None, flag_id=flag or None,
                       camera_id=camera or None, action=action or None, since=since, until=until, max_id=max_id)


@router.get("/audit")
def list_audit(request: Request, f: TrailFilter = Depends(trail_filter),
               limit: int = Query(100, ge=1, le=PAGE_MAX), offset: int = Query(0, ge=0, le=OFFSET_MAX),
               rt: Services = Depends(runtime), who: Principal = Depends(require(*AUDIT_READERS))):
    """Audit events matching every filter given, newest first: ``total`` matching, one page of ``events``
    (who, what, outcome, organisation, insured person, flag, camera, subject, request id, detail, note),
    and ``max_id``: pass it back with the next ``offset`` so that pages stay put while events arrive."""
    with session_scope(rt.sessions) as db:
        if f.max_id is None:  # new events (this read's own among them) would shift the later pages
            f = replace(f, max_id=last_event_id(db))
        total, rows = read_trail(db, f, limit=limit, offset=offset)
        out = {"total": total, "limit": limit, "offset": offset, "max_id": f.max_id,
               "events": [event_dict(e) for e in rows]}
        audit_event(db, actor=who.actor, action="audit.read", outcome="ok", request_id=request.state.request_id,
                    detail={"filters": f.as_dict(), "limit": limit, "offset": offset, "count": len(rows)})
    return out


def _cell(v) -> str:
    """A CSV cell that a spreadsheet shows as text: a value starting with = + - @ (or a tab/CR) would be
    run as a formula (CSV injection), and notes and paths come from callers."""
    s = "" if v is None else (json.dumps(v, ensure_ascii=False, sort_keys=True) if isinstance(v, dict) else str(v))
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def _csv_lines(rt: Services, f: TrailFilter, n: int) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")  # a BOM: spreadsheets then read the Chinese of notes and names as UTF-8
    w.writerow(CSV_COLUMNS)
    for e in iter_trail(rt.sessions, f, max_rows=n):
        d = event_dict(e)
        w.writerow([_cell(d[c]) for c in CSV_COLUMNS])
        if buf.tell() > 64 * 1024:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


@router.get("/audit.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "The matching events as CSV (UTF-8 "
                             "with BOM), newest first; X-Total-Count and X-Truncated say whether all are in it"}})
def export_audit(request: Request, f: TrailFilter = Depends(trail_filter),
                 limit: int = Query(CSV_MAX_ROWS, ge=1, le=CSV_MAX_ROWS), rt: Services = Depends(runtime),
                 who: Principal = Depends(require(*AUDIT_READERS))):
    """The matching events as CSV, newest first, at most ``limit`` (≤ 100,000) rows, streamed."""
    with session_scope(rt.sessions) as db:
        total = count_trail(db, f)
        n = min(total, limit)
        audit_event(db, actor=who.actor, action="audit.export", outcome="ok", request_id=request.state.request_id,
                    detail={"filters": f.as_dict(), "rows": n, "total": total})
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="dualcheck-audit-{stamp}.csv"',
               "X-Total-Count": str(total), "X-Truncated": "true" if total > n else "false"}
    return StreamingResponse(_csv_lines(rt, f, n), media_type="text/csv; charset=utf-8", headers=headers)
