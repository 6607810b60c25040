"""Settlements imported in batches and their checks queued in batches (PostgreSQL, procrastinate):
every row still gets its own outcome and reason, a settlement never gets a second waiting job, and a
batch that another process partly queued in between still ends with one job per settlement."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from correlate.claims_import import ClaimImporter
from correlate.settlements import Importer
from dualcheck.runtime import Runtime
from ingest.cameras import add_camera
from storage.db import migrate, session_scope
from storage.models import Organisation

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_runtime(make_settings):
    from tests.conftest import _create_pg_database, _drop_pg_database

    url = _create_pg_database()
    migrate(url)
    rt = Runtime(make_settings(url))
    with session_scope(rt.sessions) as db:
        for org in ("H1", "H2"):
            db.add(Organisation(id=org, name=org, region="north"))
        db.flush()
        add_camera(db, camera_id="H1-S", org_id="H1", name="收费处", role="settlement_counter",
                   url="rtsp://10.0.0.8/s", covers=["counter-1"])
    try:
        yield rt
    finally:
        rt.close()
        _drop_pg_database(url)


def _jobs(rt) -> dict[str, int]:
    with rt.engine.connect() as c:
        rows = c.execute(sa.text("select args->>'settlement_id', count(*) from procrastinate_jobs "
                                 "where status = 'todo' group by 1")).all()
    return dict(rows)


def _setl(i: int, **kw) -> dict:
    return {"infno": "2207", "fixmedins_code": "H1", "setl_id": f"S{i}", "mdtrt_id": f"MD{i}", "psn_no": f"P{i}",
            "med_type": "11", "setl_time": "2026-11-02 09:25:00", "medfee_sumamt": "35.60", **kw}


def test_a_batch_keeps_each_rows_outcome_and_queues_each_settlement_once(pg_runtime):
    rt = pg_runtime
    with session_scope(rt.sessions) as db:
        imp = ClaimImporter(db, rt.settings, actor="test")
        imp.add(1, _setl(1))
        imp.add(2, _setl(2, medfee_sumamt="abc"))  # refused: its own line and reason
        imp.add(3, _setl(3))
        imp.add(4, _setl(3))  # the same settlement again in the same batch: unchanged
        imp.add(5, _setl(1, medfee_sumamt="99.00"))  # the same id with other content: conflict
        imp.add(6, _setl(6, fixmedins_code="H2", counter="counter-1"))
        imp.flush()
        res = imp.result
    assert res.settlements_created == ["S1", "S3", "S6"] and res.unchanged == 1
    assert [(e.line, e.key) for e in res.errors] == [(2, None), (5, "S1")]
    assert "medfee_sumamt" in res.errors[0].reason and res.errors[1].reason.startswith("conflict")
    # S6's organisation has no camera covering its counter: warned, still imported
    assert [w["settlement_id"] for w in res.warnings] == ["S6"]

    assert rt.jobs.enqueue(res.settlements_created) == 3
    assert _jobs(rt) == {"S1": 1, "S3": 1, "S6": 1}
    # again (a re-sent batch, a restart's requeue): nothing new, still one job each
    assert rt.jobs.enqueue(["S1", "S3", "S6"]) == 0
    assert rt.jobs.requeue() == 0
    assert _jobs(rt) == {"S1": 1, "S3": 1, "S6": 1}


def test_many_settlements_are_queued_once_each_even_when_some_were_queued_meanwhile(pg_runtime):
    rt = pg_runtime
    rows = [{"settlement_id": f"B{i}", "insured_id": f"P{i}", "org_id": "H1", "counter": "counter-1",
             "settled_at": "2026-11-01T02:00:00Z", "amount": "12.50", "type": "outpatient"} for i in range(2500)]
    rows[7]["amount"] = "1,50"
    with session_scope(rt.sessions) as db:
        imp = Importer(db, actor="test")
        outcomes = imp.add_many(list(enumerate(rows)))
    assert outcomes[7][0] == "refused" and "amount" in outcomes[7][1]
    assert [e.line for e in imp.result.errors] == [7] and len(imp.result.created) == 2499
    created = imp.result.created
    # another process queued some of them first (one by one, as the worker does on a re-check)
    rt.jobs.ensure_schema()
    app = rt.jobs.deferrer()
    assert rt.jobs._defer_sync(app, created[1000:1010] + created[2400:2405]) == 15
    assert rt.jobs.enqueue(created) == 2499 - 15
    jobs = _jobs(rt)
    assert len(jobs) == 2499 and set(jobs.values()) == {1} and "B7" not in jobs


def test_a_batch_that_meets_a_lock_taken_in_between_falls_back_one_by_one(pg_runtime, monkeypatch):
    """The lock look-up and the insert are two round trips: a job queued between them must not make
    the batch fail or leave its other settlements without a job."""
    rt = pg_runtime
    rows = [{"settlement_id": f"R{i}", "insured_id": f"P{i}", "org_id": "H1", "counter": "counter-1",
             "settled_at": "2026-11-01T02:00:00Z", "amount": "12.50", "type": "outpatient"} for i in range(50)]
    with session_scope(rt.sessions) as db:
        Importer(db, actor="test").add_many(list(enumerate(rows)))
    jobs, app = rt.jobs, rt.jobs.deferrer()
    jobs.ensure_schema()
    real_connect = jobs.engine.connect

    class Racing:
        """The engine's connection, with another process queueing R5 right after the look-up."""

        def __init__(self):
            self.c = real_connect()

        def __enter__(self):
            self.c.__enter__()
            return self

        def execute(self, *a, **kw):
            out = self.c.execute(*a, **kw)
            jobs._defer_sync(app, ["R5"])
            return out

        def __exit__(self, *exc):
            return self.c.__exit__(*exc)

    monkeypatch.setattr(jobs.engine, "connect", Racing)
    assert jobs.enqueue([f"R{i}" for i in range(50)]) == 49
    monkeypatch.undo()
    got = _jobs(rt)
    assert len(got) == 50 and set(got.values()) == {1}
