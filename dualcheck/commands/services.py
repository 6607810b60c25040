"""`dualcheck services …` (local SeaweedFS) and `dualcheck db …` (migrations)."""
from __future__ import annotations

import json

import typer
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from kernel.settings import get_settings
from storage.db import make_engine, migrate
from storage.seaweed import LocalSeaweed, SeaweedError

services = typer.Typer(help="Local embedded services (SeaweedFS S3 server).", no_args_is_help=True)
db = typer.Typer(help="The index database (SQLite or PostgreSQL).", no_args_is_help=True)


@services.command("up")
def services_up() -> None:
    """Start the local SeaweedFS S3 server and wait until it answers."""

    sw = LocalSeaweed.from_settings(get_settings())
    try:
        pid = sw.up()
    except SeaweedError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"seaweedfs: up (pid {pid}), S3 on http://{sw.endpoint}, data in {sw.data_dir}")


@services.command("down")
def services_down() -> None:
    """Stop the local SeaweedFS server."""

    stopped = LocalSeaweed.from_settings(get_settings()).down()
    typer.echo("seaweedfs: stopped" if stopped else "seaweedfs: was not running")


@services.command("status")
def services_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Show whether the local services run and answer. Exit code 1 when they do not."""

    st = LocalSeaweed.from_settings(get_settings()).status()
    if as_json:
        typer.echo(json.dumps(st))
    else:
        state = "up" if st["answering"] else ("starting" if st["running"] else "down")
        typer.echo(f"seaweedfs: {state} (pid {st['pid'] or '-'}), S3 on http://{st['endpoint']}")
    raise typer.Exit(0 if st["answering"] else 1)


@db.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply Alembic migrations up to REVISION (default: head)."""

    url = get_settings().effective_database_url
    migrate(url, revision)
    typer.echo(f"database at {revision}: {_safe_url(url)}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""


    with make_engine(get_settings().effective_database_url).connect() as conn:
        typer.echo(MigrationContext.configure(conn).get_current_revision() or "empty")


def _safe_url(url: str) -> str:

    return make_url(url).render_as_string(hide_password=True)
