"""`dualcheck users add|list|disable|enable`: people who log in to the web UI.

The password is prompted (twice, hidden) or read from standard input with ``--password-stdin``;
it is never an argument (shell history, process list) and never printed or logged.
"""
from __future__ import annotations

import sys

import typer
from sqlalchemy import select

from api.web.auth import UserError, add_user, set_disabled
from dualcheck.commands.access import _sessions
from storage.audit import audit
from storage.db import session_scope
from storage.models import User

app = typer.Typer(help="Web UI users (inspectors, institution users, operators, admins, auditors).", no_args_is_help=True)


def _run(fn):

    try:
        with session_scope(_sessions()) as db:
            return fn(db)
    except UserError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2)


@app.command("add")
def add(username: str = typer.Argument(..., help="Login name."),
        role: str = typer.Option(..., "--role", help="inspector | institution | operator | admin | auditor (reads the audit trail only)"),
        region: list[str] = typer.Option([], "--region", help="Region an inspector/operator covers (repeat; '*' = all)."),
        org: str = typer.Option(None, "--org", help="The organisation of an institution user."),
        name: str = typer.Option(None, "--name", help="Display name (e.g. 张三)."),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin.")) -> None:
    """Create a user."""

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)

    def go(db):
        u = add_user(db, username, password, role, regions=region, org_id=org, display_name=name)
        audit(db, actor="cli", action="user.add", outcome="ok", org_id=u.org_id, subject=f"user:{u.username}",
              detail={"role": u.role, "regions": u.regions})
        return u

    u = _run(go)
    scope = f"org {u.org_id}" if u.org_id else ("regions " + ",".join(u.regions) if u.regions else "all regions")
    typer.echo(f"user {u.username}: {u.role}, {scope}")


@app.command("list")
def list_() -> None:
    """Users, their role and scope (never password hashes)."""

    def go(db):
        for u in db.scalars(select(User).order_by(User.username)):
            scope = u.org_id or ",".join(u.regions or []) or "-"
            state = "disabled" if u.disabled else "active"
            last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never"
            typer.echo(f"{u.username}\t{u.role}\t{scope}\t{state}\t{u.display_name}\tlast login {last}")

    _run(go)


def _set(username: str, disabled: bool) -> None:

    def go(db):
        set_disabled(db, username, disabled)
        audit(db, actor="cli", action="user.disable" if disabled else "user.enable", outcome="ok",
              subject=f"user:{username}")

    _run(go)
    typer.echo(f"user {username}: {'disabled (logged out everywhere)' if disabled else 'enabled'}")


@app.command("disable")
def disable(username: str) -> None:
    """Disable a user: it cannot log in and its sessions end at once."""
    _set(username, True)


@app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled user again."""
    _set(username, False)
