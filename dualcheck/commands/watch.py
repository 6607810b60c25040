"""`dualcheck watch import FILE | run --month | list | export`: the watch rules (docs/inpatient.md)."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from correlate.population import FileInvalid, audit_population, import_population_file
from correlate.watch import WatchInvalid, latest_month, run_month, view, warnings_of
from correlate.watch_export import assignee_names, to_csv, to_xlsx
from dualcheck.commands.common import fail, migrated_runtime
from storage.audit import audit
from storage.db import session_scope

watch = typer.Typer(help="Watch rules (特困/低保 admissions, 因病返贫 out-of-pocket): population lists, monthly "
                         "runs, warning lists per responsible unit.", no_args_is_help=True)




@watch.command("import")
def import_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                           help="CSV with a header row (psn_no, household_id, unit, region, "
                                                "psn_idet_type, psn_type_lv, begntime, endtime) or JSON Lines "
                                                "(such records, or whole 1101 outputs)."),
               as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Import population categories and households (idempotent; a changed record is updated). Exit code 0
    when all were accepted, 3 when some were refused, 2 when the file cannot be read."""
    rt = migrated_runtime()
    try:
        result = import_population_file(rt.sessions, rt.settings, file, actor="cli")
    except FileInvalid as e:
        fail(f"{file.name}: {e}", rt)
    with session_scope(rt.sessions) as db:
        audit_population(db, result, actor="cli", source=f"file:{file.name}")
    rt.close()
    report = {**result.summary(), "errors": result.errors}
    if as_json:
        typer.echo(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        for e in result.errors:
            typer.secho(f"line {e['line']}: {e['reason']}", fg="red", err=True)
        typer.echo(f"{report['records']} records: {report['imported']} imported, {report['updated']} updated, "
                   f"{report['unchanged']} unchanged, {report['refused']} refused")
    raise typer.Exit(3 if result.errors else 0)


@watch.command("run")
def run_cmd(month: str = typer.Option(..., "--month", help="The calendar month to run, YYYY-MM (ended)."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Run every watch rule for a past month; the month's warnings are replaced."""
    rt = migrated_runtime()
    try:
        with session_scope(rt.sessions) as db:
            run, rows = run_month(db, rt.settings, month, actor="cli")
            summary = dict(run.summary)
    except WatchInvalid as e:
        fail(e.reason, rt)
    rt.close()
    if as_json:
        typer.echo(json.dumps(summary, indent=1, ensure_ascii=False))
    else:
        typer.echo(f"{summary['month']}: {summary['warnings']} warnings ({summary['new']} new); "
                   + ", ".join(f"{k}: {v}" for k, v in summary["by_rule"].items()))


@watch.command("list")
def list_cmd(month: str = typer.Option(None, "--month", help="YYYY-MM; the latest run's month by default."),
             unit: str = typer.Option(None, "--unit", help="Only this responsible unit.")) -> None:
    """The month's warnings as JSON."""
    rt = migrated_runtime()
    with session_scope(rt.sessions) as db:
        m = month or latest_month(db)
        if m is None:
            fail("the watch rules have not run yet: dualcheck watch run --month YYYY-MM", rt)
        rows = [view(w) for w in warnings_of(db, m, unit=unit)]
        audit(db, actor="cli", action="watch.warnings_view", outcome="ok", subject=f"watch:{m}",
              detail={"format": "json", "unit": unit, "count": len(rows)})
    rt.close()
    typer.echo(json.dumps({"month": m, "warnings": rows}, indent=1, ensure_ascii=False))


@watch.command("export")
def export_cmd(out: Path = typer.Argument(..., dir_okay=False, help="The file to write: .xlsx or .csv."),
               month: str = typer.Option(None, "--month", help="YYYY-MM; the latest run's month by default."),
               unit: str = typer.Option(None, "--unit", help="Only this responsible unit.")) -> None:
    """Write the month's warning list per responsible unit as Excel (one sheet per unit) or CSV."""
    if out.suffix.lower() not in (".xlsx", ".csv"):
        fail("the file must end in .xlsx or .csv")
    rt = migrated_runtime()
    with session_scope(rt.sessions) as db:
        m = month or latest_month(db)
        if m is None:
            fail("the watch rules have not run yet: dualcheck watch run --month YYYY-MM", rt)
        rows = warnings_of(db, m, unit=unit)
        names = assignee_names(db, rows)
        data = to_xlsx(m, rows, names) if out.suffix.lower() == ".xlsx" else to_csv(rows, names)
        audit(db, actor="cli", action="watch.warnings_view", outcome="ok", subject=f"watch:{m}",
              detail={"format": out.suffix.lower()[1:], "unit": unit, "count": len(rows)})
    rt.close()
    out.write_bytes(data)
    typer.echo(f"{len(rows)} warnings of {m} written to {out}")
