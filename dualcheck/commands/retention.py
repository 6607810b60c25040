"""`dualcheck retention …`: delete footage and captures past their retention (never held evidence)."""
from __future__ import annotations

import json

import typer
from sqlalchemy import select

from dualcheck.runtime import Runtime
from kernel import metrics
from kernel.settings import get_settings
from storage.db import migrate, session_scope
from storage.models import RetentionRun
from storage.retention import run_retention

app = typer.Typer(help="Retention: delete footage and face-pay captures past their retention.", no_args_is_help=True)


@app.command("run")
def run_cmd(dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
            batch: int = typer.Option(None, help="Objects per batch (default: DUALCHECK_RETENTION_BATCH)."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete segments older than their organisation's retention and expired captures, except held ones.
    Safe to rerun (a crashed run is finished by the next) and safe while recording runs."""


    s = get_settings()
    migrate(s.effective_database_url)
    rt = Runtime(s)
    server = metrics.serve(s.metrics_port, s.metrics_addr)  # for a long run; the DB keeps the last run's counts
    try:
        rt.store.ensure_bucket(s.bucket_footage)
        res = run_retention(rt.sessions, rt.store, s, dry_run=dry_run, actor="cli:retention", batch=batch)
    finally:
        if server is not None:
            server.shutdown()
        rt.close()
    c = res.counts
    if as_json:
        typer.echo(json.dumps({"run_id": res.run_id, "dry_run": dry_run, **c}))
        return
    if dry_run:
        typer.echo(f"dry run {res.run_id}: would delete {c['segments_to_delete']} segment(s) "
                   f"({c['segment_bytes_to_delete']} bytes) and {c['captures_to_delete']} capture(s); "
                   f"kept by holds: {c['segments_held']} segment(s), {c['captures_held']} capture(s)")
    else:
        typer.echo(f"run {res.run_id}: deleted {c['segments_deleted']} segment(s) ({c['segment_bytes_deleted']} bytes) "
                   f"and {c['captures_deleted']} capture(s); kept by holds: {c['segments_held']} segment(s), "
                   f"{c['captures_held']} capture(s); {c['object_delete_failures']} object delete failure(s)")
    if c["object_delete_failures"]:
        raise typer.Exit(2)


@app.command("history")
def history_cmd(limit: int = typer.Option(10)) -> None:
    """The last retention runs with their counts."""


    rt = Runtime(get_settings())
    with session_scope(rt.sessions) as db:
        for r in db.scalars(select(RetentionRun).order_by(RetentionRun.started_at.desc()).limit(limit)):
            typer.echo(json.dumps({"id": r.id, "started_at": r.started_at.isoformat(), "state": r.state,
                                   "dry_run": r.dry_run, "actor": r.actor, "counts": r.counts}))
    rt.close()
