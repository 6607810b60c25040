"""The worker's daily bed checks (挂床住院): once the day is over, every open admission's bed is checked at
the previous day's check times, as ``POST /v1/ward/check`` would, and the rule is applied.

Run by the correlation worker (correlate/jobs.py): a procrastinate periodic task on PostgreSQL, the
in-process poller on SQLite, every few minutes. Idempotent, so a run every poll is harmless: a check time
is checked once (``bed_checks`` is unique per admission and instant), a flag once (its dedup key).

"Open": not discharged, or discharged within the days looked back over (its last days still get checked).
The run looks back ``ward_schedule_days`` days from local midnight, so a worker that was down yesterday
catches up today; it never checks today's times (their footage may still be on its way).
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from correlate.ward_checks import RunReport, WardChecker
from storage.db import session_scope
from storage.models import utcnow

log = logging.getLogger(__name__)


def window(settings, now: datetime) -> tuple[datetime, datetime] | None:
    """[since, until) of the check times a run at ``now`` covers (UTC), or None before ``ward_schedule_time``."""
    tz = ZoneInfo(settings.claims_timezone)
    local = now.astimezone(tz)
    h, m = (int(v) for v in settings.ward_schedule_time.split(":"))
    if local.time() < time(h, m):
        return None
    midnight = datetime.combine(local.date(), time(0), tzinfo=tz)
    return ((midnight - timedelta(days=settings.ward_schedule_days)).astimezone(timezone.utc),
            midnight.astimezone(timezone.utc))


def run_due(checker, now: datetime | None = None) -> RunReport | None:
    """The daily run for the correlation worker's ``checker`` (correlate/check.py Checker: its settings,
    store, face pipeline and legal holds). None when the schedule is off or today's run time has not come."""
    s = checker.settings
    if not s.ward_schedule:
        return None
    span = window(s, now or utcnow())
    if span is None:
        return None
    ward = WardChecker(settings=s, store=checker.store, pipeline=checker.pipeline, legal=checker.legal)
    with session_scope(checker.sessions) as db:
        rep = ward.run(db, now=span[1], since=span[0])
    if rep.checks or rep.flags:
        log.info("daily bed checks: %d checks %s, %d flags", rep.checks, rep.by_outcome, len(rep.flags))
    return rep
