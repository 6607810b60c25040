"""The monthly run of the watch rules (correlate/watch_rules.py) over admissions, discharges and
settlements in the platform's field names, for the people and households of the population lists
(correlate/population.py).

A run is for a calendar month M in ``claims_timezone`` that has ended: "in a month" means M itself;
"in the year" means from 1 January of M's year to the end of M. A person is watched by a rule in M when
one of the rule's categories is valid at some moment of M; the figures are then the person's (or the
household's) whole year to the end of M. A later run of the same month replaces that month's warnings
(figures of late-imported records count); the warnings of other months stay as they were. A warning
raised again keeps what inspectors did with it (correlate/watch_review.py): it is updated, not replaced.

Figures are exact: amounts are summed as integer cents in the database and compared as decimals, so a
figure exactly at a threshold is never warned ("超过": more than) and one cent above always is.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Numeric, and_, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from correlate import rulebook
from correlate.watch_review import OPEN_STATES, carry_over
from correlate.watch_rules import BY_ID, HOUSEHOLD_RULES, category_of
from kernel.errors import Refusal
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.db import session_scope
from storage.models import (
    ClaimAdmission,
    ClaimDischarge,
    ClaimSettlement,
    Household,
    PersonCategory,
    WatchRun,
    WatchWarning,
    WatchWarningEvent,
    utcnow,
)

log = logging.getLogger(__name__)
CHUNK = 500


class WatchInvalid(Refusal):
    def __init__(self, reason: str, status: int = 422, code: str = "watch_invalid"):
        super().__init__(status, code, reason)


@dataclass(frozen=True)
class Month:
    """A calendar month in the claims' time zone, with its bounds as aware datetimes."""

    year: int
    month: int
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> "Month":
        t = (text or "").strip()
        if len(t) != 7 or t[4] != "-" or not (t[:4].isdigit() and t[5:].isdigit()) or not 1 <= int(t[5:]) <= 12 \
                or not 2000 <= int(t[:4]) <= 2999:
            raise WatchInvalid(f"month must be YYYY-MM (e.g. 2026-11), not {t[:20]!r}", code="month_invalid")
        return cls(int(t[:4]), int(t[5:]), tz)

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> date:
        return date(self.year + (self.month == 12), self.month % 12 + 1, 1)

    def at(self, d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=self.tz)

    @property
    def start(self) -> datetime:
        return self.at(self.first_day)

    @property
    def end(self) -> datetime:
        return self.at(self.next_first_day)

    @property
    def year_start(self) -> datetime:
        return self.at(date(self.year, 1, 1))

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1, self.tz)

    def months_of_year(self) -> list["Month"]:
        return [Month(self.year, m, self.tz) for m in range(1, self.month + 1)]


def _chunks(items, n=CHUNK):
    items = list(items)
    for i in range(0, len(items), n):
        yield items[i:i + n]


# --- who is watched --------------------------------------------------------------------------------


def watched(db: Session, settings, m: Month, psn_nos: set[str] | None = None) -> dict[str, set[str]]:
    """psn_no -> the watch categories valid at some moment of month ``m``."""
    q = select(PersonCategory.psn_no, PersonCategory.psn_idet_type).where(
        PersonCategory.begntime < m.end, or_(PersonCategory.endtime.is_(None), PersonCategory.endtime > m.start))
    out: dict[str, set[str]] = defaultdict(set)
    rows = []
    if psn_nos is None:
        rows = db.execute(q).all()
    else:
        for ch in _chunks(psn_nos):
            rows += db.execute(q.where(PersonCategory.psn_no.in_(ch))).all()
    for psn, code in rows:
        cat = category_of(code, settings.watch_idet_types)
        if cat:
            out[psn].add(cat)
    return dict(out)


# --- figures ---------------------------------------------------------------------------------------


def admissions_in_month(db: Session, m: Month, psn_nos) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for ch in _chunks(psn_nos):
        for psn, org, mdtrt, t in db.execute(select(
                ClaimAdmission.psn_no, ClaimAdmission.org_id, ClaimAdmission.mdtrt_id, ClaimAdmission.begntime)
                .where(ClaimAdmission.psn_no.in_(ch), ClaimAdmission.begntime >= m.start,
                       ClaimAdmission.begntime < m.end).order_by(ClaimAdmission.begntime)):
            out[psn].append({"fixmedins_code": org, "mdtrt_id": mdtrt, "begntime": t.isoformat()})
    return dict(out)


def inpatient_days(db: Session, m: Month, psn_nos) -> dict[str, int]:
    """Days in hospital in the year to the end of ``m``: per stay the local dates from admission (counted)
    to discharge (not counted; a same-day stay is one day), a stay still open at the month's end counted
    to its last day; a date in two stays counts once."""
    tz = m.tz
    y0, y1 = date(m.year, 1, 1), m.next_first_day
    days: dict[str, set[date]] = defaultdict(set)
    since = m.year_start - timedelta(days=400)  # a stay begun last year can reach into this one
    for ch in _chunks(psn_nos):
        stays = db.execute(select(ClaimAdmission.psn_no, ClaimAdmission.org_id, ClaimAdmission.mdtrt_id,
                                  ClaimAdmission.begntime)
                           .where(ClaimAdmission.psn_no.in_(ch), ClaimAdmission.begntime < m.end,
                                  ClaimAdmission.begntime >= since)).all()
        if not stays:
            continue
        ends = {(o, md): t for o, md, t in db.execute(
            select(ClaimDischarge.org_id, ClaimDischarge.mdtrt_id, ClaimDischarge.endtime)
            .where(ClaimDischarge.psn_no.in_(ch)))}
        for psn, org, mdtrt, begn in stays:
            a = begn.astimezone(tz).date()
            end = ends.get((org, mdtrt))
            if end is None or end >= m.end:
                b = y1  # still in hospital at the month's end: every day of the month counts
            else:
                b = max(end.astimezone(tz).date(), a + timedelta(days=1))
            d = max(a, y0)
            while d < min(b, y1):
                days[psn].add(d)
                d += timedelta(days=1)
    return {p: len(s) for p, s in days.items()}


def _cents():
    return func.sum(cast(func.round(cast(ClaimSettlement.psn_part_amt, Numeric(18, 2)) * 100), BigInteger))


def burden(db: Session, start: datetime, end: datetime, psn_nos=None) -> dict[str, Decimal]:
    """psn_no -> the sum of the settlements' personal burden (psn_part_amt) settled in [start, end)."""
    q = (select(ClaimSettlement.psn_no, _cents())
         .where(ClaimSettlement.setl_time >= start, ClaimSettlement.setl_time < end,
                ClaimSettlement.psn_part_amt.is_not(None)).group_by(ClaimSettlement.psn_no))
    rows = []
    if psn_nos is None:
        rows = db.execute(q).all()
    else:
        for ch in _chunks(psn_nos):
            rows += db.execute(q.where(ClaimSettlement.psn_no.in_(ch))).all()
    return {p: Decimal(int(c or 0)) / 100 for p, c in rows}


def households(db: Session, psn_nos=None) -> tuple[dict, dict[str, list[str]]]:
    """(psn_no -> its household (psn_no, household_id, unit, region), household_id -> its members on record).
    Plain rows, not ORM objects: a county's list is hundreds of thousands of people."""
    cols = select(Household.psn_no, Household.household_id, Household.unit, Household.region)
    by_psn: dict = {}
    if psn_nos is None:
        rows = db.execute(cols).all()
    else:
        rows = []
        for ch in _chunks(psn_nos):
            rows += db.execute(cols.where(Household.psn_no.in_(ch))).all()
        ids = {h.household_id for h in rows}
        for ch in _chunks(ids):
            rows += db.execute(cols.where(Household.household_id.in_(ch))).all()
    members: dict[str, list[str]] = defaultdict(list)
    for h in rows:
        if h.psn_no not in by_psn:
            by_psn[h.psn_no] = h
            members[h.household_id].append(h.psn_no)
    return by_psn, dict(members)


def _money(x: Decimal) -> str:
    return f"{x:.2f}"


# --- the run ---------------------------------------------------------------------------------------


def evaluate(db: Session, settings, m: Month) -> tuple[list[dict], dict]:
    """The warnings of month ``m`` (not stored) and the run's counts."""
    book = rulebook.load(db, settings)
    rules = {rid: book[rid] for rid in BY_ID}
    live = {rid: r for rid, r in rules.items() if r.applies(m.start)}
    cats = watched(db, settings, m)

    def people(rule_id: str) -> set[str]:
        want = set(rules[rule_id].thresholds.get("categories") or [])
        return {p for p, c in cats.items() if c & want}

    homes, members = households(db)
    oop = burden(db, m.year_start, m.end)
    out: list[dict] = []

    def person_warning(rule_id: str, psn: str, figure: str, threshold, detail: dict) -> None:
        h = homes.get(psn)
        cat = sorted(cats.get(psn, set()) & set(rules[rule_id].thresholds.get("categories") or cats.get(psn, set())))
        out.append({"rule_id": rule_id, "subject": f"psn:{psn}", "psn_no": psn,
                    "household_id": h.household_id if h else None, "unit": h.unit if h else None,
                    "region": h.region if h else None, "category": cat[0] if cat else None, "figure": figure,
                    "threshold": str(threshold), "detail": detail})

    if "watch_admissions_month" in live:
        r = live["watch_admissions_month"]
        limit = r.thresholds["max_admissions"]
        for psn, adm in admissions_in_month(db, m, people(r.id)).items():
            if len(adm) > limit:
                person_warning(r.id, psn, str(len(adm)), limit, {"admissions": adm})
    if "watch_inpatient_days_year" in live:
        r = live["watch_inpatient_days_year"]
        limit = r.thresholds["max_days"]
        for psn, n in inpatient_days(db, m, people(r.id)).items():
            if n > limit:
                person_warning(r.id, psn, str(n), limit, {})
    if "watch_oop_person" in live:
        r = live["watch_oop_person"]
        limit = Decimal(str(r.thresholds["max_amount"]))
        for psn in people(r.id):
            if oop.get(psn, Decimal(0)) > limit:
                person_warning(r.id, psn, _money(oop[psn]), _money(limit), {})
    if "watch_oop_resident" in live:
        r = live["watch_oop_resident"]
        limit = Decimal(str(r.thresholds["max_amount"]))
        for psn, x in oop.items():
            if x > limit:
                person_warning(r.id, psn, _money(x), _money(limit), {})
    for rid in HOUSEHOLD_RULES:
        if rid not in live:
            continue
        r = live[rid]
        limit = Decimal(str(r.thresholds["max_amount"]))
        hh_ids = {homes[p].household_id for p in people(rid) if p in homes}
        for hid in sorted(hh_ids):
            mem = sorted(members.get(hid, []))
            total = sum((oop.get(p, Decimal(0)) for p in mem), Decimal(0))
            n = len(mem)
            figure = total if rid == "watch_oop_household" else total / n
            over = total > limit if rid == "watch_oop_household" else total > limit * n
            if over:
                first = homes[mem[0]]
                cat = sorted({c for p in mem for c in cats.get(p, set())} & set(r.thresholds["categories"]))
                out.append({"rule_id": rid, "subject": f"hh:{hid}", "psn_no": None, "household_id": hid,
                            "unit": first.unit, "region": first.region, "category": cat[0] if cat else None,
                            "figure": _money(figure), "threshold": _money(limit),
                            "detail": {"members": [{"psn_no": p, "burden": _money(oop.get(p, Decimal(0)))}
                                                   for p in mem], "household_total": _money(total),
                                       "household_size": n}})
    missing = db.scalar(select(func.count()).select_from(ClaimSettlement).where(
        ClaimSettlement.setl_time >= m.year_start, ClaimSettlement.setl_time < m.end,
        ClaimSettlement.psn_part_amt.is_(None))) or 0
    for w in out:
        w["level"], w["rule_version"] = rules[w["rule_id"]].level, rules[w["rule_id"]].tag
    counts = {rid: sum(1 for w in out if w["rule_id"] == rid) for rid in BY_ID}
    summary = {"month": m.key, "warnings": len(out), "by_rule": counts, "watched_people": len(cats),
               "households": len(members), "people_with_burden": len(oop),
               "settlements_without_psn_part_amt": missing,
               "rules": {rid: {"tag": r.tag, "enabled": rid in live, "thresholds": r.thresholds}
                         for rid, r in rules.items()}}
    return out, summary


def run_month(db: Session, settings, month: str, *, actor: str, now: datetime | None = None,
              request_id: str | None = None) -> tuple[WatchRun, list[WatchWarning]]:
    """Run every watch rule for ``month`` (YYYY-MM, ended) and store its warnings, replacing the month's."""
    tz = ZoneInfo(settings.claims_timezone)
    m = Month.parse(month, tz)
    if m.end > (now or utcnow()):
        raise WatchInvalid(f"the month {m.key} has not ended yet: the watch rules run for past months",
                           code="month_not_ended")
    run = WatchRun(month=m.key, actor=actor, started_at=utcnow())
    db.add(run)
    db.flush()
    found, summary = evaluate(db, settings, m)
    earlier: dict[tuple[str, str], WatchWarning] = {}
    for w in db.scalars(select(WatchWarning).where(WatchWarning.month >= f"{m.year:04d}-01",
                                                   WatchWarning.month < m.key).order_by(WatchWarning.month)):
        earlier[(w.rule_id, w.subject)] = w  # the latest earlier month of the year wins
    # the month's warnings as they stand: updated in place, so an inspector's work on one (its state,
    # assignee, history) survives a re-run; one no longer raised goes unless an inspector has touched it
    have = {(w.rule_id, w.subject): w for w in db.scalars(select(WatchWarning).where(WatchWarning.month == m.key))}
    rows = []
    for w in found:
        key = (w["rule_id"], w["subject"])
        first = earlier[key].first_month if key in earlier else m.key
        row = have.pop(key, None)
        if row is None:
            row = WatchWarning(month=m.key, run_id=run.id, first_month=first, **w)
            db.add(row)
            db.flush()
        else:
            for k, v in w.items():
                setattr(row, k, v)
            row.run_id, row.first_month = run.id, first
        if key in earlier and row.state == "open" and row.assignee is None:
            carry_over(db, row, earlier[key], actor=actor, request_id=request_id)
        rows.append(row)
    gone = [w.id for w in have.values() if w.state == "open" and w.assignee is None]
    if gone:
        db.execute(delete(WatchWarning).where(WatchWarning.id.in_(gone)))
    summary["kept_reviewed"] = len(have) - len(gone)  # worked on by inspectors, no longer raised: kept
    summary["new"] = sum(1 for r in rows if r.first_month == m.key)
    run.summary, run.finished_at = summary, utcnow()
    audit(db, actor=actor, action="watch.run", outcome="ok", subject=f"watch:{m.key}", request_id=request_id,
          detail={k: v for k, v in summary.items() if k != "rules"})
    db.flush()
    return run, rows


def due_month(settings, now: datetime) -> str | None:
    """The month the schedule should have run by ``now`` (the past month, once its run day has come)."""
    tz = ZoneInfo(settings.claims_timezone)
    local = now.astimezone(tz)
    if local.day < settings.watch_schedule_day:
        return None
    return Month(local.year, local.month, tz).previous().key


def run_due(sessions, settings, now: datetime | None = None) -> str | None:
    """The worker's monthly run: the past month, if the schedule is on, its day has come and no run of that
    month exists yet. Returns the month run, else None. Idempotent: safe on every poll."""
    if not settings.watch_schedule:
        return None
    now = now or utcnow()
    month = due_month(settings, now)
    if month is None:
        return None
    with session_scope(sessions) as db:
        if db.scalar(select(WatchRun.id).where(WatchRun.month == month, WatchRun.finished_at.is_not(None)).limit(1)):
            return None
        run, rows = run_month(db, settings, month, actor="system:schedule", now=now)
        log.info("watch rules run for %s: %d warnings", month, len(rows))
    return month


# --- reading ---------------------------------------------------------------------------------------


def warnings_of(db: Session, month: str, *, unit: str | None = None, regions: set[str] | None = None,
                rule_id: str | None = None, state: str | None = None) -> list[WatchWarning]:
    q = select(WatchWarning).where(WatchWarning.month == month)
    if state:
        q = q.where(WatchWarning.state.in_(OPEN_STATES) if state == "active" else WatchWarning.state == state)
    if unit is not None:
        q = q.where(WatchWarning.unit == unit) if unit else q.where(WatchWarning.unit.is_(None))
    if rule_id:
        q = q.where(WatchWarning.rule_id == rule_id)
    if regions is not None:
        q = q.where(WatchWarning.region.in_(sorted(regions)))
    return list(db.scalars(q.order_by(WatchWarning.unit, WatchWarning.level.desc(), WatchWarning.rule_id,
                                      WatchWarning.household_id, WatchWarning.psn_no)))


def latest_month(db: Session) -> str | None:
    return db.scalar(select(WatchRun.month).where(WatchRun.finished_at.is_not(None))
                     .order_by(WatchRun.month.desc()).limit(1))


def person_history(db: Session, settings, psn_no: str, month: str) -> dict:
    """A person's figures month by month from January to ``month``: admissions in each month, inpatient
    days, personal burden of the month and of the year so far, the household's year so far and per member;
    the person's categories and household."""
    tz = ZoneInfo(settings.claims_timezone)
    m = Month.parse(month, tz)
    homes, members = households(db, {psn_no})
    h = homes.get(psn_no)
    mem = sorted(members.get(h.household_id, [])) if h else [psn_no]
    cats = list(db.scalars(select(PersonCategory).where(PersonCategory.psn_no == psn_no)
                           .order_by(PersonCategory.begntime)))
    rows = []
    for mm in m.months_of_year():
        adm = admissions_in_month(db, mm, [psn_no]).get(psn_no, [])
        days = inpatient_days(db, mm, [psn_no]).get(psn_no, 0)
        month_oop = burden(db, mm.start, mm.end, [psn_no]).get(psn_no, Decimal(0))
        year = burden(db, mm.year_start, mm.end, mem)
        hh_total = sum(year.values(), Decimal(0))
        rows.append({"month": mm.key, "admissions": len(adm), "inpatient_days": days,
                     "burden_month": _money(month_oop), "burden_year": _money(year.get(psn_no, Decimal(0))),
                     "household_year": _money(hh_total) if h else None,
                     "per_capita_year": _money(hh_total / len(mem)) if h else None})
    return {"psn_no": psn_no, "month": m.key,
            "household": ({"household_id": h.household_id, "unit": h.unit, "region": h.region, "members": mem}
                          if h else None),
            "categories": [{"psn_idet_type": c.psn_idet_type, "category": category_of(c.psn_idet_type,
                                                                                      settings.watch_idet_types),
                            "psn_type_lv": c.psn_type_lv, "begntime": c.begntime.isoformat(),
                            "endtime": c.endtime.isoformat() if c.endtime else None, "source": c.source}
                           for c in cats],
            "figures": rows,
            "warnings": [view(w) for w in db.scalars(select(WatchWarning).where(
                or_(WatchWarning.psn_no == psn_no, and_(WatchWarning.household_id == (h.household_id if h else None),
                                                        WatchWarning.psn_no.is_(None))))
                .order_by(WatchWarning.month, WatchWarning.rule_id))]}


def view(w: WatchWarning) -> dict:
    return {"id": w.id, "month": w.month, "rule_id": w.rule_id, "rule_version": w.rule_version, "level": w.level,
            "reminder": w.level <= 2, "psn_no": w.psn_no, "household_id": w.household_id, "unit": w.unit,
            "region": w.region, "category": w.category, "figure": w.figure, "threshold": w.threshold,
            "first_month": w.first_month, "new": w.first_month == w.month, "detail": w.detail,
            "run_id": w.run_id, "state": w.state, "assignee": w.assignee, "state_note": w.state_note,
            "updated_at": iso_z(w.updated_at) if w.updated_at else None,
            "closed_at": iso_z(w.closed_at) if w.closed_at else None}


def event_view(e: WatchWarningEvent) -> dict:
    return {"at": iso_z(e.at), "actor": e.actor, "role": e.role, "action": e.action, "from_status": e.from_status,
            "to_status": e.to_status, "from_assignee": e.from_assignee, "to_assignee": e.to_assignee, "note": e.note}
