"""`dualcheck settlements import FILE` and `dualcheck correlate worker | run-pending | flags`."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from correlate.jobs import run_pending
from correlate.rowfiles import FileInvalid, count_lines
from correlate.settlements import audit_import, import_file
from correlate.stats import flag_stats
from dualcheck.commands.common import migrated_runtime
from kernel import metrics
from storage.audit import audit
from storage.db import session_scope
from storage.db_metrics import DbCollector

settlements = typer.Typer(help="Settlement records (结算记录) from the insurance data exchange.", no_args_is_help=True)
correlate = typer.Typer(help="Cross-check settlements against footage and face-pay records.", no_args_is_help=True)



@settlements.command("import")
def import_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                           help="CSV with a header row, or JSON Lines (one object per line)."),
               as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
               no_enqueue: bool = typer.Option(False, "--no-enqueue", help="Do not queue the checks.")) -> None:
    """Import settlements (idempotent by settlement_id). Good rows are kept; every bad row is listed
    with its line number. Exit code 0 when all rows were accepted, 3 when some were refused, 2 when
    the file as a whole cannot be read (not UTF-8: nothing imported)."""


    rt = migrated_runtime()
    total = max(1, count_lines(file))
    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), transient=True,
                  disable=as_json) as bar:
        task = bar.add_task("import", total=total)
        try:
            result = import_file(rt.sessions, file, actor="cli", progress=lambda n: bar.update(task, completed=n))
        except FileInvalid as e:
            failed = str(e)
        else:
            failed = None
    if failed is not None:
        with session_scope(rt.sessions) as db:
            audit(db, actor="cli", action="settlements.import", outcome="refused:file",
                  detail={"source": f"file:{file.name}", "reason": failed})
        rt.close()
        typer.secho(f"{file.name}: {failed}", fg="red", err=True)
        raise typer.Exit(2)
    with session_scope(rt.sessions) as db:
        audit_import(db, result, actor="cli", source=f"file:{file.name}")
    queued = 0 if no_enqueue else rt.jobs.enqueue(result.created)
    report = {**result.summary(), "queued": queued, "errors": [e.to_dict() for e in result.errors],
              "warnings": [w.to_dict() for w in result.warnings]}
    if as_json:
        typer.echo(json.dumps(report, indent=1))
    else:
        for e in result.errors:
            typer.secho(f"line {e.line}: {e.reason}" + (f" (settlement {e.settlement_id})" if e.settlement_id else ""),
                        fg="red", err=True)
        for w in result.warnings:
            typer.secho(f"line {w.line}: warning {w.warning}: {w.reason} (settlement {w.settlement_id})",
                        fg="yellow", err=True)
        typer.echo(f"{report['rows']} rows: {report['imported']} imported, {report['unchanged']} unchanged "
                   f"(already imported), {report['refused']} refused")
    rt.close()
    raise typer.Exit(3 if result.errors else 0)


@correlate.command("worker")
def worker_cmd(concurrency: int = typer.Option(1, help="Checks run at once (PostgreSQL; one process)."),
               once: bool = typer.Option(False, "--once", help="Stop when nothing is due (SQLite poller)."),
               ) -> None:
    """Run background checks until stopped: procrastinate on PostgreSQL, an in-process poller on SQLite.
    Pending and waiting settlements are re-enqueued at start."""


    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    rt = migrated_runtime()
    # /metrics: this process's checks and flags, plus the queue depth/age and open flags from the DB
    server = metrics.serve(rt.settings.metrics_port, rt.settings.metrics_addr, DbCollector(rt.sessions))
    try:
        rt.jobs.run_worker(concurrency=concurrency, wait=not once)
    finally:
        if server is not None:
            server.shutdown()
        rt.close()


@correlate.command("run-pending")
def run_pending_cmd(limit: int = typer.Option(None, help="Check at most this many."),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Check every settlement that is due now, in this process, then exit."""

    rt = migrated_runtime()
    counts = run_pending(rt.checker, limit)
    rt.close()
    typer.echo(json.dumps(counts) if as_json else ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
               or "nothing due")


@correlate.command("stats")
def stats_cmd(org: str = typer.Option(None, "--org"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Flags per rule and organisation: flagged, confirmed, dismissed, confirmation rate."""

    rt = migrated_runtime()
    with session_scope(rt.sessions) as db:
        rows = flag_stats(db, org_ids=None if org is None else {org})
    rt.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    for r in rows["rows"]:
        rate = "-" if r["confirmation_rate"] is None else f"{r['confirmation_rate']:.0%}"
        typer.echo(f"{r['rule']}\t{r['org_id']}\tflagged {r['flagged']}\tconfirmed {r['confirmed']}\t"
                   f"dismissed {r['dismissed']}\trate {rate}")
