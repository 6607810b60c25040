"""Background checks: procrastinate on PostgreSQL, an in-process poller on the embedded SQLite default.

The settlement row is the source of truth: ``pending`` (never checked or retrying after an error),
``waiting`` (its footage is not all uploaded yet; ``next_check_at`` says when to look again),
``done`` (outcome stored) or ``failed`` (``correlate_max_attempts`` errors in a row). Jobs only say
"check settlement X now"; they are deferred with ``queueing_lock=settlement:X`` (at most one queued
job per settlement) and the check itself is idempotent (a ``done`` settlement is not re-checked; a
re-check replaces the result; flags have unique dedup keys), so a job run twice is harmless.

What a kill loses: nothing durable. A check killed half-way committed nothing (results are written
in one transaction at the end) and its settlement is still ``pending``/``waiting``; every worker start
(and ``run-pending``) re-enqueues those rows, so the check simply runs again. Evidence crops uploaded by
the killed attempt stay as orphan objects under ``evidence/`` (overwritten keys are per check id).
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Callable

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from correlate import ward_schedule
from correlate.check import Checker, Waiting
from correlate.watch import run_due
from kernel import metrics
from kernel.settings import Settings
from storage.db import session_scope
from storage.models import Settlement, utcnow

log = logging.getLogger(__name__)

TASK_NAME = "dualcheck.check_settlement"
WATCH_TASK = "dualcheck.watch_month"  # the monthly watch rules (correlate/watch.py run_due: idempotent)
WARD_TASK = "dualcheck.ward_day"  # the daily bed checks (correlate/ward_schedule.py run_due: idempotent)
QUEUE = "correlate"
ENQUEUE_BATCH = 1000  # settlements queued per round trip
WATCH_POLL_S = 600.0


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def pg_conninfo(url: str) -> str:
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def check_one(checker: Checker, settlement_id: str, *, raise_errors: bool = False) -> str:
    """Run one check and record what happened on the settlement row. Returns the new status
    (``done``, ``waiting``, ``pending`` after an error, ``failed``, or ``missing``)."""
    s, sessions = checker.settings, checker.sessions
    try:
        res = checker.check(settlement_id)
    except LookupError:
        return "missing"
    except Exception as e:
        log.exception("check of settlement %s failed", settlement_id)
        with session_scope(sessions) as db:
            st = db.get(Settlement, settlement_id)
            st.attempts = (st.attempts or 0) + 1
            st.last_error = f"{type(e).__name__}: {e}"[:500]
            if st.attempts >= s.correlate_max_attempts:
                st.status, st.next_check_at = "failed", None
            else:
                st.status = "pending"
                st.next_check_at = utcnow() + timedelta(seconds=min(600, 5 * 2 ** st.attempts))
            status = st.status
        metrics.CHECKS.labels(status).inc()
        if raise_errors and status != "failed":
            raise
        return status
    if isinstance(res, Waiting):
        with session_scope(sessions) as db:
            st = db.get(Settlement, settlement_id)
            st.status, st.next_check_at, st.last_error = "waiting", res.next_check_at, res.reason
        metrics.CHECKS.labels("waiting").inc()
        return "waiting"
    metrics.CHECKS.labels("done").inc()
    return "done"


def due(sessions: sessionmaker[Session], limit: int | None = None, include_future: bool = False) -> list[str]:
    with session_scope(sessions) as db:
        q = select(Settlement.id).where(Settlement.status.in_(("pending", "waiting")))
        if not include_future:
            q = q.where((Settlement.next_check_at.is_(None)) | (Settlement.next_check_at <= utcnow()))
        q = q.order_by(Settlement.next_check_at, Settlement.settled_at)
        if limit:
            q = q.limit(limit)
        return list(db.scalars(q))


def run_pending(checker: Checker, limit: int | None = None, progress=None) -> dict[str, int]:
    """Check every settlement that is due now, in this process (any database). Returns status counts."""
    counts: dict[str, int] = {}
    for sid in due(checker.sessions, limit):
        status = check_one(checker, sid)
        counts[status] = counts.get(status, 0) + 1
        if progress:
            progress(sid, status)
    return counts


class InProcessWorker(threading.Thread):
    """The embedded default's worker: polls the settlements table (SQLite has no job queue)."""

    def __init__(self, checker: Checker):
        super().__init__(name="correlate-worker", daemon=True)
        self.checker = checker
        self.stop_evt = threading.Event()
        self.checked = 0

    def run(self) -> None:
        last_watch = 0.0
        while not self.stop_evt.is_set():
            if time.monotonic() - last_watch >= WATCH_POLL_S or not last_watch:
                last_watch = time.monotonic()
                try:
                    run_due(self.checker.sessions, self.checker.settings)
                except Exception:
                    log.exception("the monthly watch rules failed; retried at the next poll")
                try:
                    ward_schedule.run_due(self.checker)
                except Exception:
                    log.exception("the daily bed checks failed; retried at the next poll")
            try:
                ids = due(self.checker.sessions, limit=50)
            except Exception:
                log.exception("could not read due settlements")
                ids = []
            for sid in ids:
                if self.stop_evt.is_set():
                    break
                check_one(self.checker, sid)
                self.checked += 1
            if not ids:
                self.stop_evt.wait(self.checker.settings.correlate_job_poll_s)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_evt.set()
        self.join(timeout)


# --- procrastinate (PostgreSQL) ------------------------------------------------------------------


class Jobs:
    """The job queue of one process (built once per process by the wiring, dualcheck/runtime.py). On SQLite, ``enqueue`` is a no-op (the poller
    finds the rows).

    Two procrastinate apps: the worker's (tasks, run by ``run_worker``) and a deferrer for enqueueing,
    opened once and kept: opening one per ``POST /v1/settlements`` cost a pool of fresh PostgreSQL
    connections (and their TLS/auth round trips) on every request."""

    def __init__(self, *, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
                 checker: Callable[[], Checker]):
        # ``checker`` is called only when this process runs checks: enqueueing (the API) never loads models
        self.settings, self.engine, self.sessions, self._checker = settings, engine, sessions, checker
        self.url = settings.effective_database_url
        self._app = None
        self._deferrer = None
        self._lock = threading.Lock()
        self._schema_ok = False

    @property
    def postgres(self) -> bool:
        return is_postgres(self.url)

    def app(self):
        with self._lock:
            if self._app is None:
                app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=pg_conninfo(self.url)))
                settings, checker = self.settings, self._checker
                max_attempts = settings.correlate_max_attempts

                @app.task(name=TASK_NAME, queue=QUEUE, pass_context=False,
                          retry=procrastinate.RetryStrategy(max_attempts=max_attempts, exponential_wait=5))
                def check_settlement(settlement_id: str) -> str:
                    status = check_one(checker(), settlement_id, raise_errors=True)
                    if status == "waiting":
                        self._defer_sync(app, [settlement_id], delay_s=settings.correlate_recheck_s)
                    return status

                sessions = self.sessions

                @app.periodic(cron="*/10 * * * *", periodic_id="watch")
                @app.task(name=WATCH_TASK, queue=QUEUE, pass_context=False)
                def watch_month(timestamp: int) -> str | None:
                    return run_due(sessions, settings)

                @app.periodic(cron="*/10 * * * *", periodic_id="ward")
                @app.task(name=WARD_TASK, queue=QUEUE, pass_context=False)
                def ward_day(timestamp: int) -> int | None:
                    rep = ward_schedule.run_due(checker())
                    return None if rep is None else rep.checks

                self._app = app
            return self._app

    def deferrer(self):
        """The enqueueing app, open (a small pool: enqueueing is one INSERT per batch)."""
        with self._lock:
            if self._deferrer is None:
                app = procrastinate.App(connector=procrastinate.PsycopgConnector(
                    conninfo=pg_conninfo(self.url), min_size=1, max_size=4,
                    kwargs={"application_name": "dualcheck-enqueue"}))
                app.open()
                self._deferrer = app
            return self._deferrer

    def close(self) -> None:
        with self._lock:
            if self._deferrer is not None:
                self._deferrer.close()
                self._deferrer = None

    def ensure_schema(self) -> None:
        if self._schema_ok:  # once per process: every POST /v1/settlements comes through here
            return
        with self.engine.connect() as c:
            present = c.execute(text("select to_regclass('procrastinate_jobs')")).scalar()
        if present is None:
            app = self.app()
            with app.open():
                app.schema_manager.apply_schema()
        self._schema_ok = True

    def _defer_sync(self, app, ids: list[str], delay_s: float | None = None) -> int:
        n = 0
        for sid in ids:
            try:
                kw = {"queueing_lock": f"settlement:{sid}", "queue": QUEUE}
                if delay_s:
                    kw["schedule_in"] = {"seconds": int(delay_s)}
                app.configure_task(TASK_NAME, **kw).defer(settlement_id=sid)
                n += 1
            except AlreadyEnqueued:
                pass
        return n

    def _defer_batch(self, app, ids: list[str]) -> int:
        """Queue many checks in two round trips per ``ENQUEUE_BATCH``: which settlements have a job
        waiting already (their queueing lock is taken), then one insert of the others (procrastinate's
        batch defer). A batch defer is all or nothing: when another process queued one of them in
        between, that batch goes one job at a time, as before, so every settlement still ends with
        exactly one waiting job."""
        n = 0
        for i in range(0, len(ids), ENQUEUE_BATCH):
            chunk = list(dict.fromkeys(ids[i:i + ENQUEUE_BATCH]))
            locks = [f"settlement:{sid}" for sid in chunk]
            with self.engine.connect() as c:
                taken = set(c.execute(text("select queueing_lock from procrastinate_jobs where status = 'todo' "
                                           "and queueing_lock = any(:locks)"), {"locks": locks}).scalars())
            todo = [sid for sid, lock in zip(chunk, locks) if lock not in taken]
            if not todo:
                continue
            try:
                # one job per settlement, each with its own lock (batch_defer would give them all one)
                d = app.configure_task(TASK_NAME, queue=QUEUE)
                d.job_manager.batch_defer_jobs([d.job.evolve(queueing_lock=lock, task_kwargs={"settlement_id": sid})
                                                for sid, lock in zip(chunk, locks) if lock not in taken])
                n += len(todo)
            except AlreadyEnqueued:
                n += self._defer_sync(app, todo)
        return n

    def enqueue(self, ids: list[str]) -> int:
        """Queue checks for these settlements now (PostgreSQL); a no-op on SQLite."""
        if not self.postgres or not ids:
            return 0
        self.ensure_schema()
        return self._defer_batch(self.deferrer(), ids)

    def requeue(self) -> int:
        """Re-enqueue every pending/waiting settlement (worker start: the rows are the truth)."""
        if not self.postgres:
            return 0
        self.ensure_schema()
        return self._defer_batch(self.deferrer(), due(self.sessions, include_future=True))

    def run_worker(self, concurrency: int = 1, wait: bool = True) -> None:
        """Blocking. PostgreSQL: a procrastinate worker; SQLite: the in-process poller until Ctrl-C."""
        if self.postgres:
            n = self.requeue()
            log.info("re-enqueued %d pending settlements", n)
            self.app().run_worker(queues=[QUEUE], concurrency=concurrency, wait=wait,
                                  delete_jobs="successful", install_signal_handlers=True)
            return
        w = InProcessWorker(self._checker())
        w.start()
        try:
            while w.is_alive():
                time.sleep(0.5)
                if not wait and not due(self.sessions):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            w.stop()
