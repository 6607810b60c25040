"""The overview: flags per institution per week, by type and level, and confirmation rates, over a
period chosen on the page; every bar links to the queue filtered to the flags behind it. Below them the
precision of each rule and of each of its versions (违规确认率 = confirmed ÷ decided,
correlate/rule_precision.py), with the counts."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from sqlalchemy import func, select

from api.web import charts
from api.web.common import Ctx, WebError, need_role, orgs_visible, render, web_ctx
from api.web.rules_pages import pct, version_text
from correlate import rulebook
from correlate.rule_precision import precision
from storage.db import session_scope
from storage.models import Flag

router = APIRouter(include_in_schema=False)

PERIODS = (4, 8, 13, 26, 52)  # weeks


def _day_start(ctx: Ctx, d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=ctx.t.tz).astimezone(timezone.utc)


def queue_link(**q) -> str:
    """The flag queue filtered to what a chart element counts (every status unless given)."""
    q.setdefault("status", "all")
    return "/flags?" + urlencode({k: v for k, v in q.items() if v not in (None, "")})


@router.get("/overview")
def overview(ctx: Ctx = Depends(web_ctx), weeks: str = "8"):
    need_role(ctx, "inspector", "admin")
    if not (weeks.isdigit() and 1 <= int(weeks) <= 52):
        raise WebError(400, "bad_request", "weeks must be a whole number from 1 to 52")
    weeks = int(weeks)
    t = ctx.t
    today = datetime.now(t.tz).date()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(weeks=weeks - 1)
    since = _day_start(ctx, first)
    period = {"date_from": first.isoformat(), "date_to": today.isoformat()}
    with session_scope(ctx.rt.sessions) as db:
        orgs = orgs_visible(db, ctx.who)
        ids = [o.id for o in orgs]
        rows = db.execute(select(Flag.org_id, Flag.type, Flag.level, Flag.occurred_at, Flag.case_id)
                          .where(Flag.org_id.in_(ids), Flag.occurred_at >= since)).all()
        decided = db.execute(select(Flag.rule, Flag.status, func.count())
                             .where(Flag.org_id.in_(ids), Flag.occurred_at >= since).group_by(Flag.rule, Flag.status)).all()
        per_version = precision(db, org_ids=ids, since=since)
    names = rulebook.declared()

    def rule_name(rule_id: str) -> str:
        r = names.get(rule_id)
        return (r.name_zh if t.lang == "zh" else r.name_en) if r else t.flag_type(rule_id)

    precision_rows = [{"rule": p["rule"], "name": rule_name(p["rule"]), "pct": pct(p["precision"]), **p,
                       "versions": [{**v, "label": version_text(t, v["version"]), "pct": pct(v["precision"])}
                                    for v in p["versions"]]} for p in per_version if p["decided"]]
    week_starts = [first + timedelta(weeks=i) for i in range(weeks)]
    per_org = []
    for o in orgs:
        mine = [r for r in rows if r.org_id == o.id]
        if not mine:
            continue
        # cases with a finding of each level, per week: what the queue lists behind each bar
        seen: dict[tuple[int, int], set] = {}
        for r in mine:
            wk = (t.local(r.occurred_at).date() - first).days // 7
            if 0 <= wk < weeks:
                seen.setdefault((r.level, wk), set()).add(r.case_id or id(r))
        series = {lvl: [len(seen.get((lvl, wk), ())) for wk in range(weeks)] for lvl in (1, 2, 3, 4, 5)}

        def week_link(i: int, lvl: int, org_id: str = o.id) -> str:
            a = week_starts[i]
            return queue_link(org=org_id, flevel=lvl, date_from=a.isoformat(),
                              date_to=min(a + timedelta(days=6), today).isoformat())

        per_org.append({"org": o, "svg": charts.stacked_weeks(series, [t.date(_day_start(ctx, w)) for w in week_starts],
                                                              t, link=week_link)})
    # cases with a finding of each type and level: what the queue lists behind each bar (a case with two
    # findings of one type counts once, as it is one row of the queue)
    cases_by_type: dict[str, dict[int, set]] = {}
    for r in rows:
        cases_by_type.setdefault(r.type, {}).setdefault(r.level, set()).add(r.case_id or id(r))
    by_type = {typ: {lvl: len(c) for lvl, c in per.items()} for typ, per in cases_by_type.items()}
    rates: dict[str, dict[str, int]] = {}
    for rule, status, n in decided:
        rates.setdefault(rule, {}).setdefault(status, 0)
        rates[rule][status] += n
    rate_rows = []
    for rule, c in sorted(rates.items()):
        done = c.get("confirmed", 0) + c.get("dismissed", 0)
        rate_rows.append({"rule": rule, "confirmed": c.get("confirmed", 0), "decided": done,
                          "total": sum(c.values()), "rate": (c.get("confirmed", 0) / done) if done else None})
    return render(ctx, "overview.html", per_org=per_org, weeks=weeks, periods=PERIODS, since=t.date(since),
                  until=t.date(_day_start(ctx, today)),
                  type_svg=charts.type_levels(by_type, t, link=lambda typ, lvl: queue_link(type=typ, flevel=lvl, **period)),
                  rate_svg=charts.rates(rate_rows, t, link=lambda rule: queue_link(type=rule, status="confirmed", **period)),
                  rate_rows=rate_rows, precision_rows=precision_rows)
