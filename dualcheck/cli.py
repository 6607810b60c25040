"""The `dualcheck` command. Each stage contributes its own sub-commands; this file only mounts them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.progress import Progress
from sqlalchemy.engine import make_url

from dualcheck.commands.access import keys, orgs, serve, terminals
from dualcheck.commands.beds import beds, ward
from dualcheck.commands.calibrate import calibrate
from dualcheck.commands.cameras import cameras, record
from dualcheck.commands.claims import claims
from dualcheck.commands.correlate import correlate, settlements
from dualcheck.commands.models import app as models
from dualcheck.commands.retention import app as retention
from dualcheck.commands.rules import rules
from dualcheck.commands.services import db, services
from dualcheck.commands.staff import app as staff
from dualcheck.commands.users import app as users
from dualcheck.commands.watch import watch
from dualcheck.demo import run
from dualcheck.runtime import Runtime
from facepay.bulk_enroll import enroll_dir, plan
from kernel import logs
from kernel.settings import get_settings, settings_table
from storage.db import migrate

app = typer.Typer(help="dualcheck: video + data dual verification for medical-insurance fund supervision.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(services, name="services")
app.add_typer(db, name="db")
app.add_typer(models, name="models", help="Face model packs: fetch and verify.")
app.add_typer(orgs, name="orgs")
app.add_typer(terminals, name="terminals")
app.add_typer(keys, name="keys")
app.add_typer(cameras, name="cameras")
app.add_typer(retention, name="retention")
app.add_typer(settlements, name="settlements")
app.add_typer(claims, name="claims")
app.add_typer(rules, name="rules")
app.add_typer(correlate, name="correlate")
app.add_typer(users, name="users")
app.add_typer(staff, name="staff")
app.add_typer(watch, name="watch")
app.add_typer(beds, name="beds")
app.add_typer(ward, name="ward")
app.command("record")(record)
app.command("calibrate")(calibrate)


@app.command("serve")
def serve_cmd(host: str = typer.Option(None), port: int = typer.Option(None),
              workers: int = typer.Option(None)) -> None:
    """Run the HTTP API (migrations must be applied: `dualcheck db upgrade`)."""
    serve(host, port, workers)


@app.command("enroll")
def enroll_cmd(directory: Path = typer.Argument(..., exists=True, file_okay=False, readable=True)) -> None:
    """Bulk-enroll photos: DIR/<insured_id>.jpg or DIR/<insured_id>/*.jpg. Safe to rerun."""


    s = get_settings()
    migrate(s.effective_database_url)
    groups, skipped = plan(directory)
    total = sum(len(v) for v in groups.values())
    for path, why in skipped:
        typer.echo(f"skipped  {path}: {why}")
    rt = Runtime(s)
    counts = {"enrolled": 0, "duplicate": 0, "refused": 0}
    with Progress(transient=False) as progress:
        task = progress.add_task("enrolling", total=total)

        def on_file(fr) -> None:
            r = fr.result
            counts[r.status] += 1
            line = {"enrolled": "[green]enrolled[/]", "duplicate": "[yellow]already[/] ",
                    "refused": "[red]refused[/] "}[r.status]
            why = f": {r.code} - {r.reason}" if r.status == "refused" else ""
            progress.console.print(f"{line} {fr.insured_id}  {fr.path.name}{why}", highlight=False)
            progress.advance(task)

        enroll_dir(rt.enroller, directory, actor="cli:enroll", on_file=on_file)
    rt.close()
    typer.echo(f"summary: {total} photo(s) of {len(groups)} person(s): {counts['enrolled']} enrolled, "
               f"{counts['duplicate']} already enrolled, {counts['refused']} refused, "
               f"{len(skipped)} file(s) skipped")
    raise typer.Exit(0 if counts["refused"] == 0 and not skipped else 3)


@app.command("run")
def run_cmd() -> None:
    """Run everything on the embedded default (SQLite, local SeaweedFS, demo data) until Ctrl-C."""

    run(get_settings())


@app.command("config")
def config_cmd(docs: bool = typer.Option(False, "--docs", help="Print the Markdown table of all settings.")) -> None:
    """Print the effective settings (secrets masked)."""
    if docs:

        typer.echo(settings_table(), nl=False)
        return
    s = get_settings()
    data = json.loads(s.model_dump_json())
    if data.get("s3_secret_key"):
        data["s3_secret_key"] = "***"
    data["effective_database_url"] = s.effective_database_url

    # URLs may carry passwords (database, Redis of the rate limits): never printed
    for k in ("database_url", "effective_database_url", "rate_limit_storage_uri"):
        if data.get(k) and "://" in data[k]:
            try:
                data[k] = make_url(data[k]).render_as_string(hide_password=True)
            except Exception:
                data[k] = "***"
    typer.echo(json.dumps(data, indent=2, default=str))


# The role each log line and metric endpoint names; other commands log as "cli".
_ROLES = {"record": "record", "serve": "api", "run": "demo", "worker": "worker", "retention": "retention"}


def main() -> None:


    s = get_settings()
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    role = next((_ROLES[w] for w in words[:2] if w in _ROLES), "cli")
    logs.setup(s.log_level, s.log_format, role)
    app()
