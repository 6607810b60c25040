"""The index's own metrics, read from the database at scrape time (every replica shows the same truth)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from storage.db import session_scope
from storage.models import Flag, RetentionRun, Settlement

log = logging.getLogger(__name__)


class DbCollector:
    """Read at scrape time from the index: the check queue, open flags, the last retention run, and on
    PostgreSQL procrastinate's job table. A failing database gives ``dualcheck_db_up 0``, not a 500."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions

    @staticmethod
    def _families():
        return {
            "up": GaugeMetricFamily("dualcheck_db_up", "1 when the index database answered this scrape."),
            "due": GaugeMetricFamily("dualcheck_settlements_due", "Settlements whose check is due now "
                                     "(pending or waiting, next check time reached): the check queue depth."),
            "age": GaugeMetricFamily("dualcheck_settlements_due_oldest_age_seconds",
                                     "How long the oldest due settlement has been due (0 when none)."),
            "status": GaugeMetricFamily("dualcheck_settlements_unfinished", "Settlements not yet decided, by status.",
                                        labels=["status"]),
            "jobs": GaugeMetricFamily("dualcheck_jobs", "procrastinate jobs (PostgreSQL) by status.",
                                      labels=["status"]),
            "flags": GaugeMetricFamily("dualcheck_flags_open", "Flags awaiting a decision (open or inquiry), by "
                                       "type and level.", labels=["type", "level"]),
            "ret": GaugeMetricFamily("dualcheck_retention_last_success_timestamp_seconds",
                                     "When the last successful (not dry) retention run finished."),
            "ret_seg": GaugeMetricFamily("dualcheck_retention_last_run_deleted_segments",
                                         "Segments the last successful retention run deleted."),
        }

    def describe(self):
        return list(self._families().values())

    def collect(self):
        f = self._families()
        try:
            with session_scope(self.sessions) as db:
                now = datetime.now(timezone.utc)
                unfinished = ("pending", "waiting")
                due_when = func.coalesce(Settlement.next_check_at, Settlement.imported_at)
                n, oldest = db.execute(select(func.count(), func.min(due_when)).where(
                    Settlement.status.in_(unfinished), due_when <= now)).one()
                f["due"].add_metric([], n or 0)
                if oldest is not None and oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=timezone.utc)
                f["age"].add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
                counts = dict(db.execute(select(Settlement.status, func.count()).where(
                    Settlement.status.in_(unfinished + ("failed",))).group_by(Settlement.status)).all())
                for st in unfinished + ("failed",):
                    f["status"].add_metric([st], counts.get(st, 0))
                for type_, level, c in db.execute(select(Flag.type, Flag.level, func.count()).where(
                        Flag.status.in_(("open", "inquiry"))).group_by(Flag.type, Flag.level)):
                    f["flags"].add_metric([type_, str(level)], c)
                last = db.execute(select(RetentionRun.finished_at, RetentionRun.counts).where(
                    RetentionRun.state == "done", RetentionRun.dry_run.is_(False))
                    .order_by(RetentionRun.finished_at.desc()).limit(1)).first()
                if last is not None and last.finished_at is not None:
                    f["ret"].add_metric([], last.finished_at.timestamp())
                    f["ret_seg"].add_metric([], (last.counts or {}).get("segments_deleted", 0))
                if db.bind.dialect.name == "postgresql" and db.execute(
                        text("select to_regclass('procrastinate_jobs')")).scalar() is not None:
                    for st, c in db.execute(text("select status::text, count(*) from procrastinate_jobs "
                                                 "group by status")):
                        f["jobs"].add_metric([st], c)
            f["up"].add_metric([], 1)
        except Exception as e:  # the scrape must still answer: Prometheus alerts on dualcheck_db_up
            log.warning("metrics: database not readable: %s", type(e).__name__)
            f = {"up": GaugeMetricFamily("dualcheck_db_up", "1 when the index database answered this scrape.",
                                         value=0)}
        return list(f.values())
