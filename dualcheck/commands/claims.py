"""`dualcheck claims import FILE` (records in the national platform's field names) and
`dualcheck claims check` (the data checks over one organisation's period) and `dualcheck claims rules`."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from correlate.claim_checks import run_checks
from correlate.claims_files import FileInvalid, import_claims_file
from correlate.claims_import import INTERFACES, audit_claims
from dualcheck.commands.common import migrated_runtime
from dualcheck.commands.rules import list_rules
from kernel.timefmt import TimeInvalid, iso_z, parse_instant
from storage.audit import audit
from storage.db import session_scope

claims = typer.Typer(help="Visits, prescriptions, fee details, stock and settlements in the national platform's "
                          "field names (定点医药机构接口规范), and the data checks over them.", no_args_is_help=True)



@claims.command("import")
def import_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                           help="JSON Lines (a flat record or a whole platform message per line) "
                                                "or CSV with a header row of the platform's field names."),
               infno: str = typer.Option(None, "--infno", help="Interface of records that carry no infno "
                                         f"({', '.join(INTERFACES)})."),
               org: str = typer.Option(None, "--org", help="fixmedins_code of records that carry none."),
               batch: int = typer.Option(2000, "--batch", min=1, max=20000, help="Records per transaction."),
               as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
               no_enqueue: bool = typer.Option(False, "--no-enqueue", help="Do not queue settlements' checks.")) -> None:
    """Import records (idempotent by each record's natural key). Good lines are kept; every refused
    line is listed with its number and reason. Exit code 0 when all were accepted, 3 when some were
    refused, 2 when the file cannot be read as a whole (not UTF-8: nothing imported)."""
    if infno is not None and infno not in INTERFACES:
        typer.secho(f"--infno must be one of {', '.join(INTERFACES)}", fg="red", err=True)
        raise typer.Exit(2)
    rt = migrated_runtime()
    try:
        result = import_claims_file(rt.sessions, rt.settings, file, actor="cli", infno=infno, org=org, batch=batch)
    except FileInvalid as e:
        with session_scope(rt.sessions) as db:
            audit(db, actor="cli", action="claims.import", outcome="refused:file",
                  detail={"source": f"file:{file.name}", "reason": str(e)})
        rt.close()
        typer.secho(f"{file.name}: {e}", fg="red", err=True)
        raise typer.Exit(2)
    with session_scope(rt.sessions) as db:
        audit_claims(db, result, actor="cli", source=f"file:{file.name}")
    queued = 0 if no_enqueue or not result.settlements_created else rt.jobs.enqueue(result.settlements_created)
    errors = sorted(result.errors, key=lambda e: e.line if isinstance(e.line, int) else 0)
    report = {**result.summary(), "queued": queued, "errors": [e.to_dict() for e in errors],
              "warnings": result.warnings}
    if as_json:
        typer.echo(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        for e in errors:
            typer.secho(f"line {e.line}: {e.reason}" + (f" ({e.key})" if e.key else ""), fg="red", err=True)
        typer.echo(f"{report['records']} records: {report['imported']} imported, {report['unchanged']} unchanged "
                   f"(already imported), {report['refused']} refused")
    rt.close()
    raise typer.Exit(3 if result.errors else 0)


@claims.command("check")
def check_cmd(org: str = typer.Option(..., "--org", help="The organisation (fixmedins_code)."),
              start: str = typer.Option(..., "--start", help="Start of the period, ISO 8601 with a zone."),
              end: str = typer.Option(..., "--end", help="End of the period (exclusive), ISO 8601 with a zone."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Run every data check over the organisation's records of the period; flags are raised once."""
    try:
        a, b = parse_instant(start, "--start"), parse_instant(end, "--end")
    except TimeInvalid as e:
        typer.secho(e.reason, fg="red", err=True)
        raise typer.Exit(2)
    rt = migrated_runtime()
    if b <= a or (b - a).days > rt.settings.claims_check_max_days:
        rt.close()
        typer.secho(f"the period must end after it starts and last at most {rt.settings.claims_check_max_days} days",
                    fg="red", err=True)
        raise typer.Exit(2)
    with session_scope(rt.sessions) as db:
        counts, flags = run_checks(db, rt.settings, org_id=org, start=a, end=b, legal=rt.legal_holds, actor="cli",
                                   checker=lambda: rt.checker)
        audit(db, actor="cli", action="claims.check", outcome="ok", org_id=org,
              detail={"start": iso_z(a), "end": iso_z(b), "flags": len(flags)})
        out = {"counts": counts, "flags": [{"id": f.id, "type": f.type, "level": f.level} for f in flags]}
    rt.close()
    if as_json:
        typer.echo(json.dumps(out, indent=1))
    else:
        typer.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to check")


@claims.command("rules")
def rules_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """The rules as they stand in the rule library (the same as `dualcheck rules list`)."""
    list_rules(as_json)
