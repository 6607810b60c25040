"""`dualcheck staff add|list|remove|suggestions|confirm|dismiss`: an organisation's staff gallery and
the regulars suggested as staff (facepay/staff.py). The command line acts as the operator ``cli``."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from dualcheck.runtime import Runtime
from facepay.staff import StaffRefusal, StaffRoster
from kernel.settings import get_settings
from storage.db import migrate

app = typer.Typer(help="Staff of an organisation (医保医师, 药师, cashiers): photos, listing, erasure, "
                  "suggested regulars.", no_args_is_help=True)

ACTOR = "cli"


def _roster(enrol: bool = False) -> tuple[Runtime, StaffRoster]:
    s = get_settings()
    migrate(s.effective_database_url)
    rt = Runtime(s)
    return rt, StaffRoster(settings=s, sessions=rt.sessions, store=rt.store, pipeline=rt.pipeline if enrol else None)


def _run(fn, enrol: bool = False):
    """fn(roster); a refusal becomes its reason on stderr and exit 2."""
    rt, roster = _roster(enrol)
    try:
        return fn(roster)
    except StaffRefusal as e:
        typer.secho(f"{e.code}: {e.reason}", fg="red", err=True)
        raise typer.Exit(2) from None
    finally:
        rt.close()


def _echo_json(value) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@app.command("add")
def add(org: str = typer.Argument(..., help="The organisation."),
        staff_id: str = typer.Argument(..., help="The organisation's own id of the staff member (工号)."),
        photos: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                            help="JPEG/PNG photos, each with exactly one usable face."),
        name: str = typer.Option(None, "--name", help="The staff member's name."),
        role: str = typer.Option(None, "--role", help="doctor | pharmacist | cashier | nurse | other"),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Enrol photos of a staff member (the same quality gate as insured people). Exit 3 if a photo was refused."""
    items = [(p.name, p.read_bytes()) for p in photos]
    res = _run(lambda r: r.enroll(org, staff_id, items, name=name, role=role, actor=ACTOR, source="cli"), enrol=True)
    if as_json:
        _echo_json(res.to_dict())
    else:
        for r in res.results:
            why = f": {r.code} - {r.reason}" if r.status == "refused" else ""
            typer.echo(f"{r.status:9} {r.name}{why}")
        d = res.to_dict()
        typer.echo(f"staff {org}/{staff_id}: {d['enrolled']} enrolled, {d['duplicates']} already enrolled, "
                   f"{d['refused']} refused")
    raise typer.Exit(0 if not any(r.status == "refused" for r in res.results) else 3)


@app.command("list")
def list_(org: str = typer.Argument(..., help="The organisation."),
          as_json: bool = typer.Option(False, "--json", help="Print the staff as JSON.")) -> None:
    """Staff members of an organisation and how many photos each has."""
    members = _run(lambda r: r.members(org, actor=ACTOR))
    if as_json:
        _echo_json({"org_id": org, "staff": members})
        return
    for m in members:
        typer.echo(f"{m['staff_id']}\t{m['role']}\t{m['name'] or ''}\t{len(m['photos'])} photo(s)")


@app.command("remove")
def remove(org: str = typer.Argument(..., help="The organisation."),
           staff_id: str = typer.Argument(..., help="The staff member's id.")) -> None:
    """Erase a staff member: photos, templates and the member (an audit record remains)."""
    out = _run(lambda r: r.erase(org, staff_id, actor=ACTOR))
    typer.echo(f"staff {org}/{staff_id}: erased ({out['photos_deleted']} photo(s), "
               f"{out['templates_deleted']} template(s))")


@app.command("suggestions")
def suggestions(org: str = typer.Argument(..., help="The organisation."),
                status: str = typer.Option("pending", help="pending | confirmed | dismissed | all"),
                as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Faces seen at one counter in most checks over several days: likely staff nobody enrolled."""
    out = _run(lambda r: r.suggestions(org, status, actor=ACTOR))
    if as_json:
        _echo_json({"org_id": org, "suggestions": out})
        return
    for s in out:
        typer.echo(f"{s['id']}\t{s['status']}\t{s['camera_id']}\t{s['checks']}/{s['checks_total']} checks\t"
                   f"{s['days']} day(s)\tlast seen {s['last_seen']}")


@app.command("confirm")
def confirm(org: str = typer.Argument(...), suggestion_id: str = typer.Argument(...),
            staff_id: str = typer.Option(..., "--staff-id", help="The organisation's own id (工号)."),
            name: str = typer.Option(None, "--name"), role: str = typer.Option(None, "--role")) -> None:
    """A suggested regular is this staff member."""
    _run(lambda r: r.confirm(org, suggestion_id, staff_id=staff_id, name=name, role=role, actor=ACTOR))
    typer.echo(f"suggestion {suggestion_id}: confirmed as staff {org}/{staff_id}")


@app.command("dismiss")
def dismiss(org: str = typer.Argument(...), suggestion_id: str = typer.Argument(...)) -> None:
    """A suggested regular is not staff."""
    _run(lambda r: r.dismiss(org, suggestion_id, actor=ACTOR))
    typer.echo(f"suggestion {suggestion_id}: dismissed")
