"""Check queue depth and age, checks and flags on /metrics: read from the database at scrape time (so
every replica shows the same), procrastinate's jobs on PostgreSQL, and a running `correlate worker`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.correlate import scenarios as sc
from tests.ingest.conftest_recorder import wait_for
from tests.observability.scrape import scrape_client, scrape_url


def test_queue_depth_checks_and_flags(world, testdata):
    w = world
    postgres = w.settings.effective_database_url.startswith("postgresql")
    before = scrape_client(w.client)
    assert before.get("dualcheck_db_up") == 1
    assert before.get("dualcheck_settlements_due") == 0
    assert before.get("dualcheck_flags_open", type="ghost_visit", level="4") == 0
    b = w.add_block("ghost", testdata)
    assert w.post([sc.settlement("OBS-1", "P-OBAMA", "CLINIC-A", b.settled_at, terminal="CLINIC-A-T1",
                                 counter="counter-1")]).status_code == 200
    queued = scrape_client(w.client)
    assert queued.get("dualcheck_settlements_due") == 1
    assert queued.get("dualcheck_settlements_unfinished", status="pending") == 1
    assert queued.get("dualcheck_settlements_due_oldest_age_seconds") >= 0
    if postgres:  # the import queued a procrastinate job
        assert queued.get("dualcheck_jobs", status="todo") == 1
    else:
        assert not queued.series("dualcheck_jobs")

    w.run_jobs()
    after = scrape_client(w.client)
    assert after.get("dualcheck_settlements_due") == 0
    assert after.get("dualcheck_settlements_due_oldest_age_seconds") == 0
    assert after.get("dualcheck_checks_total", status="done") - before.get("dualcheck_checks_total", status="done") == 1
    assert after.get("dualcheck_flags_raised_total", type="ghost_visit", level="4") - \
        before.get("dualcheck_flags_raised_total", type="ghost_visit", level="4") == 1
    assert after.get("dualcheck_flags_open", type="ghost_visit", level="4") == 1
    # a reviewed flag leaves the open gauge
    fid = next(f["id"] for f in w.flags() if f["settlement_id"] == "OBS-1" and f["type"] == "ghost_visit")
    r = w.client.post(f"/v1/flags/{fid}/review", json={"decision": "dismiss", "note": "staff member"},
                      headers=w.h("admin"))
    assert r.status_code == 200, r.text
    assert scrape_client(w.client).get("dualcheck_flags_open", type="ghost_visit", level="4") == 0


def test_worker_process_serves_queue_metrics(world_sqlite):
    from datetime import timedelta

    from sqlalchemy import update

    from storage.db import session_scope
    from storage.models import Settlement, utcnow

    w = world_sqlite
    w.post([sc.settlement(f"OBS-W{i}", "P-OBAMA", "CLINIC-A", sc.at(28 + i), terminal="CLINIC-A-T1")
            for i in range(3)])
    with session_scope(w.rt.sessions) as db:  # one is due now, two wait for their next check
        db.execute(update(Settlement).where(Settlement.id != "OBS-W0").values(
            status="waiting", next_check_at=utcnow() + timedelta(hours=1)))
        db.execute(update(Settlement).where(Settlement.id == "OBS-W0").values(
            status="waiting", next_check_at=utcnow() - timedelta(seconds=90)))
    port = free_port()
    s = w.settings
    env = dict(os.environ, DUALCHECK_DATA_DIR=str(s.data_dir), DUALCHECK_DATABASE_URL=s.effective_database_url,
               DUALCHECK_METRICS_PORT=str(port), DUALCHECK_METRICS_ADDR="127.0.0.1",
               DUALCHECK_S3_ENDPOINT=f"127.0.0.1:{free_port()}",  # no store: the due check cannot finish
               DUALCHECK_CORRELATE_MAX_ATTEMPTS="100")
    p = subprocess.Popen([str(Path(sys.executable).with_name("dualcheck")), "correlate", "worker"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def scrape():
            try:
                return scrape_url(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                return None

        got = wait_for(lambda: (x := scrape()) and x.get("dualcheck_db_up") == 1 and x, 60, what="worker /metrics")
        assert got.get("dualcheck_settlements_unfinished", status="waiting") + \
            got.get("dualcheck_settlements_unfinished", status="pending") == 3
        assert got.get("process_resident_memory_bytes") > 0
    finally:
        p.terminate()
        p.wait(30)
