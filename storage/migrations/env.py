from alembic import context
from sqlalchemy import engine_from_config, pool, text

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    # procrastinate (the job queue on PostgreSQL) keeps its own tables in the same database
    return not (type_ == "table" and reflected and compare_to is None and name.startswith("procrastinate_"))


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        # batch mode: SQLite can only ALTER tables by copying them.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # API replicas, recorders and workers all migrate on start: one at a time, the others
                # wait here and then find the schema current (the lock ends with the transaction)
                connection.execute(text("SELECT pg_advisory_xact_lock(7235101)"))
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
