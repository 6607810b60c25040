"""The 监测预警 page: a month's watch-rule warnings per responsible unit, with the Excel and CSV lists to
download (the audited API routes, api/routes/watch.py), a form to run a past month, and each person's
figures month by month. Inspectors see the households of their regions (api/scope.py ``watch_regions``) and
work each warning (correlate/watch_review.py): take it for review, assign it, confirm or dismiss it with a
note; the list filters by that state. A confirmed warning links to the person's cases in the queue (a case is
an institution's; a warning is a person's, so it does not become one)."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from api.scope import visible_orgs, watch_regions
from api.web.common import Ctx, WebError, form_checked, need_role, render, web_ctx
from correlate.watch import Month, WatchInvalid, person_history, run_month, warnings_of
from correlate.watch_review import OPEN_STATES, ReviewRefused, act, events
from correlate.watch_rules import BY_ID, category_of
from storage.audit import audit
from storage.db import session_scope
from storage.models import WATCH_STATES, Case, Household, User, WatchRun, WatchWarning

router = APIRouter(include_in_schema=False)
COUNTS = {"watch_admissions_month": "watch_times", "watch_inpatient_days_year": "watch_days"}


def _cat(ctx: Ctx, key: str | None) -> str:
    return ctx.t(f"watch_cat_{key}") if key in ("tekun", "dibao", "tuopin", "jiance") else ctx.t("watch_cat_other")


def _value(ctx: Ctx, rule_id: str, v: str) -> str:
    return ctx.t(COUNTS.get(rule_id, "watch_yuan"), n=v, v=v)


def _disposition(ctx: Ctx, level: int) -> str:
    return ctx.t("watch_reminder" if level <= 2 else "watch_check" if level <= 4 else "watch_definite")


def _rule_name(ctx: Ctx, rule_id: str) -> str:
    r = BY_ID[rule_id]
    return r.name_zh if ctx.t.lang == "zh" else r.name_en


def _month_or_latest(ctx: Ctx, db, month: str) -> str | None:
    if month:
        try:
            return Month.parse(month, ZoneInfo(ctx.rt.settings.claims_timezone)).key
        except WatchInvalid as e:
            raise WebError(400, "bad_request", ctx.t(f"watch_{e.code}", m=month[:7])) from None
    return db.scalar(select(WatchRun.month).where(WatchRun.finished_at.is_not(None))
                     .order_by(WatchRun.month.desc()).limit(1))


def _line(ctx: Ctx, w: WatchWarning) -> dict:
    return {"psn_no": w.psn_no, "household_id": w.household_id, "unit": w.unit or ctx.t("watch_no_unit"),
            "category": _cat(ctx, w.category), "rule": _rule_name(ctx, w.rule_id),
            "figure": _value(ctx, w.rule_id, w.figure),
            "threshold": ctx.t("watch_more_than", v=_value(ctx, w.rule_id, w.threshold)),
            "level": w.level, "disposition": _disposition(ctx, w.level), "reminder": w.level <= 2,
            "first_month": w.first_month, "new": w.first_month == w.month, "rule_id": w.rule_id,
            "id": w.id, "state": w.state, "state_label": ctx.t(f"watch_state_{w.state}"), "assignee": w.assignee,
            "state_note": w.state_note, "open": w.state in OPEN_STATES}


def _assignable(db) -> list[User]:
    """Who can be given a warning: active inspectors and admins (each row offers those of its region)."""
    return list(db.scalars(select(User).where(User.disabled.is_(False), User.role.in_(("inspector", "admin")))
                           .order_by(User.role.desc(), User.username)))


def _for_region(users: list[User], region: str | None) -> list[User]:
    return [u for u in users if u.role == "admin" or "*" in (u.regions or []) or region in (u.regions or [])]


def _case_counts(db, ctx: Ctx, psn_nos: set[str]) -> dict[str, int]:
    """How many cases of each person the caller may open in the queue."""
    if not psn_nos:
        return {}
    q = select(Case.insured_id, func.count()).where(Case.insured_id.in_(sorted(psn_nos))).group_by(Case.insured_id)
    orgs = visible_orgs(ctx.who)
    if orgs is not None:
        q = q.where(Case.org_id.in_(sorted(orgs)))
    return dict(db.execute(q).all())


STATE_FILTERS = ("", "active", *WATCH_STATES)


def _list_page(ctx: Ctx, month: str, unit: str, notice: str | None = None, state: str = ""):
    with session_scope(ctx.rt.sessions) as db:
        m = _month_or_latest(ctx, db, month)
        months = list(db.scalars(select(WatchRun.month).where(WatchRun.finished_at.is_not(None))
                                 .distinct().order_by(WatchRun.month.desc())))
        run = None
        rows: list[WatchWarning] = []
        if m:
            run = db.scalar(select(WatchRun).where(WatchRun.month == m, WatchRun.finished_at.is_not(None))
                            .order_by(WatchRun.id.desc()).limit(1))
            rows = warnings_of(db, m, regions=watch_regions(ctx.who))
            audit(db, actor=ctx.who.actor, action="watch.warnings_view", outcome="ok", subject=f"watch:{m}",
                  request_id=ctx.request.state.request_id, detail={"format": "page", "unit": unit or None,
                                                                   "count": len(rows)})
        units = sorted({w.unit or "" for w in rows})
        shown = [w for w in rows if (not unit or (w.unit or "") == (unit if unit != "-" else ""))
                 and (not state or w.state == state or (state == "active" and w.state in OPEN_STATES))]
        users = _assignable(db)
        cases = _case_counts(db, ctx, {w.psn_no for w in shown if w.psn_no and w.state == "confirmed"})
        groups: dict[str, list[dict]] = {}
        for w in shown:
            line = _line(ctx, w)
            line["assignees"] = [(u.username, u.display_name or u.username) for u in _for_region(users, w.region)]
            line["history"] = [{"at": e.at, "actor": e.actor, "role": e.role, "action": e.action,
                                "from": e.from_status, "to": e.to_status, "assignee": e.to_assignee, "note": e.note}
                               for e in events(db, w)]
            line["cases"] = cases.get(w.psn_no, 0) if w.psn_no else 0
            line["stale"] = run is not None and w.run_id != run.id
            groups.setdefault(w.unit or ctx.t("watch_no_unit"), []).append(line)
        finished = run.finished_at if run else None
    q = {"month": m or ""}
    if unit:
        q["unit"] = "" if unit == "-" else unit
    dl = urlencode(q)
    return render(ctx, "watch.html", month=m, months=months, units=units, unit=unit, groups=groups,
                  state=state, states=STATE_FILTERS, finished=finished, xlsx=f"/v1/watch/warnings.xlsx?{dl}", csv=f"/v1/watch/warnings.csv?{dl}",
                  notice=notice, can_run=ctx.who.role in ("admin", "inspector"))


@router.get("/watch")
def watch_page(ctx: Ctx = Depends(web_ctx), month: str = "", unit: str = "", ran: str = "", state: str = "",
               done: str = ""):
    need_role(ctx, "inspector", "admin")
    if state not in STATE_FILTERS:
        raise WebError(400, "bad_request", ctx.t("watch_err_invalid_state"))
    notice = None
    if ran:
        parts = ran.split(",")
        if len(parts) == 3:
            notice = ctx.t("watch_ran", m=parts[0], n=parts[1], k=parts[2])
    if done in WATCH_STATES:
        notice = ctx.t("watch_done", s=ctx.t(f"watch_state_{done}"))
    return _list_page(ctx, month, unit[:100], notice, state)


@router.post("/watch/warnings/{warning_id}")
async def watch_act(warning_id: int, ctx: Ctx = Depends(web_ctx)):
    """One step on a warning from the list: review, assign, confirm or dismiss (note required to close), or reopen
    a closed one (the reason required)."""
    need_role(ctx, "inspector", "admin")
    form = await form_checked(ctx)
    action = str(form.get("action") or "")
    back = {k: str(form.get(k) or "")[:100] for k in ("month", "unit", "state")}
    regions = watch_regions(ctx.who)
    try:
        with session_scope(ctx.rt.sessions) as db:
            w = db.get(WatchWarning, warning_id)
            if w is None or (regions is not None and w.region not in regions):
                raise WebError(404, "not_found")
            act(db, w, action, actor=ctx.who.actor, role=ctx.who.role,
                assignee=str(form.get("assignee") or "").strip() or None, note=str(form.get("note") or ""),
                request_id=ctx.request.state.request_id)
            done = w.state
    except ReviewRefused as e:
        raise WebError(e.status, "bad_request", ctx.t(f"watch_err_{e.code}")) from None
    q = urlencode({**{k: v for k, v in back.items() if v}, "done": done})
    return RedirectResponse(f"/watch?{q}#w-{warning_id}", status_code=303)


@router.post("/watch/run")
async def watch_run(ctx: Ctx = Depends(web_ctx)):
    need_role(ctx, "inspector", "admin")
    form = await form_checked(ctx)
    month = str(form.get("month") or "").strip()

    def go():
        with session_scope(ctx.rt.sessions) as db:
            run, rows = run_month(db, ctx.rt.settings, month, actor=ctx.who.actor,
                                  request_id=ctx.request.state.request_id)
            return run.month, len(rows), run.summary.get("new", 0)

    try:
        m, n, k = await run_in_threadpool(go)
    except WatchInvalid as e:
        raise WebError(400, "bad_request", ctx.t(f"watch_{e.code}", m=month[:7])) from None
    return RedirectResponse(f"/watch?month={quote(m)}&ran={quote(f'{m},{n},{k}')}", status_code=303)


@router.get("/watch/person/{psn_no}")
def watch_person(psn_no: str, ctx: Ctx = Depends(web_ctx), month: str = ""):
    need_role(ctx, "inspector", "admin")
    if len(psn_no) > 64:
        raise WebError(404, "not_found")
    regions = watch_regions(ctx.who)
    with session_scope(ctx.rt.sessions) as db:
        h = db.get(Household, psn_no)
        if regions is not None and (h is None or h.region not in regions):
            raise WebError(404, "not_found")
        m = _month_or_latest(ctx, db, month) or f"{datetime.now(ctx.t.tz):%Y-%m}"
        try:
            data = person_history(db, ctx.rt.settings, psn_no, m)
        except WatchInvalid as e:
            raise WebError(400, "bad_request", ctx.t(f"watch_{e.code}", m=m)) from None
        audit(db, actor=ctx.who.actor, action="watch.person_view", outcome="ok", subject=f"psn:{psn_no}",
              request_id=ctx.request.state.request_id, detail={"month": m, "source": "page"})
        warns = list(db.scalars(select(WatchWarning).where(WatchWarning.id.in_([w["id"] for w in data["warnings"]]))
                                .order_by(WatchWarning.month, WatchWarning.rule_id)))
        lines = [{**_line(ctx, w), "month": w.month} for w in warns]
    cats = [{**c, "name": _cat(ctx, category_of(c["psn_idet_type"], ctx.rt.settings.watch_idet_types)),
             "begin": datetime.fromisoformat(c["begntime"]),
             "end": datetime.fromisoformat(c["endtime"]) if c["endtime"] else None,
             "source_label": ctx.t("watch_source_1101" if c["source"] == "1101" else "watch_source_list")}
            for c in data["categories"]]
    return render(ctx, "watch_person.html", psn_no=psn_no, month=m, data=data, cats=cats, lines=lines)
