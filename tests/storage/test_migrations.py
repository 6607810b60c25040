"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from storage.db import alembic_config, make_engine, make_sessionmaker, migrate, session_scope
from storage.models import AuditEvent, Base, Organisation


def test_migrations_match_models(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_is_idempotent_and_downgrade_works(db_url):
    migrate(db_url)
    migrate(db_url)  # every start runs it; the second time must be a no-op
    engine = make_engine(db_url)
    assert "verifications" in inspect(engine).get_table_names()
    engine.dispose()
    from alembic import command

    from storage.db import alembic_config

    command.downgrade(alembic_config(db_url), "base")
    engine = make_engine(db_url)
    assert "verifications" not in inspect(engine).get_table_names()
    engine.dispose()
    migrate(db_url)


def test_times_come_back_as_utc(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)
    with session_scope(sessions) as db:
        db.add(Organisation(id="ORG1", name="Clinic"))
        db.add(AuditEvent(actor="t", action="x", outcome="ok", at=at))
    with session_scope(sessions) as db:
        ev = db.query(AuditEvent).one()
        assert ev.at == at and ev.at.tzinfo is not None
    engine.dispose()


@pytest.mark.postgres
def test_processes_starting_together_migrate_one_at_a_time(tmp_path):
    """API replicas, recorders and workers of a region all run `migrate` when they start. Started at
    the same moment on an empty PostgreSQL database, every one of them must come up (no 'relation
    already exists'), and the schema ends at head exactly once."""
    from tests.conftest import _create_pg_database, _drop_pg_database

    url = _create_pg_database()
    try:
        code = "import sys; from storage.db import migrate; migrate(sys.argv[1])"
        procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(4)]
        outs = [(p.wait(timeout=120), p.stdout.read()) for p in procs]
        assert [rc for rc, _ in outs] == [0, 0, 0, 0], [o[-800:] for rc, o in outs if rc]
        engine = make_engine(url)
        with engine.connect() as c:
            heads = MigrationContext.configure(c).get_current_heads()
            assert heads == tuple(ScriptDirectory.from_config(alembic_config(url)).get_heads())
            assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        engine.dispose()
    finally:
        _drop_pg_database(url)
