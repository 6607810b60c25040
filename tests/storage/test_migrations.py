"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import make_engine, make_sessionmaker, migrate, session_scope
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
