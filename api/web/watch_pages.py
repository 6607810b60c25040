"""The 监测预警 page: a month's watch-rule warnings per responsible unit, with the Excel and CSV lists to
download (the audited API routes, api/routes/watch.py), a form to run a past month, and each person's
figures month by month. Inspectors see the households of their regions (api/scope.py ``watch_regions``)."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from api.scope import watch_regions
from api.web.common import Ctx, WebError, form_checked, need_role, render, web_ctx
from correlate.watch import Month, WatchInvalid, person_history, run_month, warnings_of
from correlate.watch_rules import BY_ID, category_of
from storage.audit import audit
from storage.db import session_scope
from storage.models import Household, WatchRun, WatchWarning

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
            "first_month": w.first_month, "new": w.first_month == w.month, "rule_id": w.rule_id}


def _list_page(ctx: Ctx, month: str, unit: str, notice: str | None = None):
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
        shown = [w for w in rows if not unit or (w.unit or "") == (unit if unit != "-" else "")]
        groups: dict[str, list[dict]] = {}
        for w in shown:
            groups.setdefault(w.unit or ctx.t("watch_no_unit"), []).append(_line(ctx, w))
        finished = run.finished_at if run else None
    q = {"month": m or ""}
    if unit:
        q["unit"] = "" if unit == "-" else unit
    dl = urlencode(q)
    return render(ctx, "watch.html", month=m, months=months, units=units, unit=unit, groups=groups,
                  finished=finished, xlsx=f"/v1/watch/warnings.xlsx?{dl}", csv=f"/v1/watch/warnings.csv?{dl}",
                  notice=notice, can_run=ctx.who.role in ("admin", "inspector"))


@router.get("/watch")
def watch_page(ctx: Ctx = Depends(web_ctx), month: str = "", unit: str = "", ran: str = ""):
    need_role(ctx, "inspector", "admin")
    notice = None
    if ran:
        parts = ran.split(",")
        if len(parts) == 3:
            notice = ctx.t("watch_ran", m=parts[0], n=parts[1], k=parts[2])
    return _list_page(ctx, month, unit[:100], notice)


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
