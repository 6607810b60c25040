"""`dualcheck orgs|terminals|keys …` (credentials) and `dualcheck serve`."""
from __future__ import annotations

import json

import typer
import uvicorn
from sqlalchemy import select

from api.keys import (
    KeyError_,
    add_organisation,
    add_service_key,
    add_terminal,
    revoke_key,
    revoke_terminal,
    rotate_terminal_key,
)
from facepay.attestation import (
    DeviceKeyError,
    add_device_key,
    key_view,
    list_device_keys,
    revoke_device_key,
    set_org_requirement,
    set_terminal_requirement,
)
from kernel.settings import get_settings
from storage.audit import audit
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import ApiKey, Organisation, Terminal
from storage.retention import RetentionInvalid, set_org_retention

orgs = typer.Typer(help="Designated institutions (定点医药机构).", no_args_is_help=True)
terminals = typer.Typer(help="Face-pay terminals and their API keys.", no_args_is_help=True)
keys = typer.Typer(help="Service API keys (data exchange, admin).", no_args_is_help=True)
device_keys = typer.Typer(help="Terminals' device keys: the Ed25519 public keys they sign captures with "
                          "(docs/verification.md).", no_args_is_help=True)
terminals.add_typer(device_keys, name="device-key")


def _sessions():

    url = get_settings().effective_database_url
    migrate(url)
    return make_sessionmaker(make_engine(url))


def _run(fn):
    """Run fn(session) in a transaction; a domain error becomes a clear message and exit 2."""

    try:
        with session_scope(_sessions()) as db:
            return fn(db)
    except KeyError_ as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2)
    except DeviceKeyError as e:
        typer.secho(e.reason, fg="red", err=True)
        raise typer.Exit(2)


def _iso(t) -> str | None:
    return t.isoformat(timespec="seconds") if t else None


@orgs.command("add")
def orgs_add(org_id: str, name: str = typer.Option(None), region: str = typer.Option("default"),
             face_pay: bool = typer.Option(True, "--face-pay/--no-face-pay"),
             as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")) -> None:
    """Register an organisation (idempotent)."""

    def go(db):
        add_organisation(db, org_id, name, region, face_pay)
        audit(db, actor="cli", action="org.add", outcome="ok", org_id=org_id)

    _run(go)
    if as_json:
        typer.echo(json.dumps({"org_id": org_id, "name": name or org_id, "region": region, "uses_face_pay": face_pay}))
        return
    typer.echo(f"organisation {org_id}: registered (region {region})")


@orgs.command("list")
def orgs_list(as_json: bool = typer.Option(False, "--json", help="Print the result as a JSON list on stdout.")) -> None:

    def go(db):
        return [{"org_id": o.id, "region": o.region, "name": o.name, "uses_face_pay": o.uses_face_pay,
                 "retention_days": o.retention_days}
                for o in db.scalars(select(Organisation).order_by(Organisation.id))]

    rows = _run(go)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for o in rows:
        typer.echo(f"{o['org_id']}\t{o['region']}\t{o['name']}")


@orgs.command("retention")
def orgs_retention(org_id: str,
                   days: int = typer.Option(None, "--days", help="Keep this organisation's footage this many days."),
                   default: bool = typer.Option(False, "--default", help="Use the default (DUALCHECK_RETENTION_DAYS)."),
                   as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")) -> None:
    """Show, set (--days N) or reset (--default) an organisation's footage retention; the next
    `retention run` uses it (held evidence is kept regardless)."""
    if days is not None and default:
        typer.secho("give --days N or --default, not both", fg="red", err=True)
        raise typer.Exit(2)
    fallback = get_settings().retention_days

    def go(db):
        if days is not None or default:
            try:
                org = set_org_retention(db, org_id, None if default else days, actor="cli")
            except (LookupError, RetentionInvalid) as e:
                raise KeyError_(str(e).strip('"')) from None
        else:
            org = db.get(Organisation, org_id)
            if org is None:
                raise KeyError_(f"no organisation {org_id!r}")
        return {"org_id": org.id, "retention_days": org.retention_days,
                "effective_days": org.retention_days or fallback}

    row = _run(go)
    if as_json:
        typer.echo(json.dumps(row))
        return
    own = "its own" if row["retention_days"] else "the default"
    typer.echo(f"organisation {row['org_id']}: footage kept {row['effective_days']} days ({own})")


@terminals.command("add")
def terminals_add(org: str = typer.Option(..., "--org", help="Organisation the terminal belongs to."),
                  terminal_id: str = typer.Option(None, "--id", help="Terminal id (default: generated)."),
                  counter: str = typer.Option(None, help="The counter the terminal stands at."),
                  as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")) -> None:
    """Register a terminal and print its API key. The key is shown once and stored only hashed."""

    def go(db):
        term, key = add_terminal(db, org, terminal_id, counter)
        audit(db, actor="cli", action="terminal.add", outcome="ok", org_id=org, subject=f"terminal:{term.id}")
        return term.id, key

    tid, key = _run(go)
    if as_json:
        typer.echo(json.dumps({"terminal_id": tid, "org_id": org, "counter": counter, "key_id": key.split("_")[1],
                               "api_key": key}))
        return
    typer.echo(f"terminal {tid} at {org}")
    typer.echo(f"api key (shown once, keep it safe): {key}")


@terminals.command("rotate")
def terminals_rotate(terminal_id: str, as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")) -> None:
    """Issue an additional key; revoke the old one with `keys revoke` once the terminal switched."""

    def go(db):
        key = rotate_terminal_key(db, terminal_id)
        audit(db, actor="cli", action="terminal.rotate", outcome="ok", subject=f"terminal:{terminal_id}",
              detail={"new_key": key.split("_")[1]})
        return key

    key = _run(go)
    if as_json:
        typer.echo(json.dumps({"terminal_id": terminal_id, "key_id": key.split("_")[1], "api_key": key}))
        return
    typer.echo(f"new api key for {terminal_id} (shown once): {key}")
    typer.echo(f"the old key works until revoked: `dualcheck terminals keys {terminal_id}`, then `dualcheck keys revoke ID`")


@terminals.command("revoke")
def terminals_revoke(terminal_id: str) -> None:
    """Revoke a terminal and all its keys at once."""

    def go(db):
        n = revoke_terminal(db, terminal_id)
        audit(db, actor="cli", action="terminal.revoke", outcome="ok", subject=f"terminal:{terminal_id}",
              detail={"keys_revoked": n})
        return n

    n = _run(go)
    typer.echo(f"terminal {terminal_id}: revoked ({n} key(s))")


@terminals.command("keys")
def terminals_keys(terminal_id: str, as_json: bool = typer.Option(False, "--json", help="Print the result as a JSON list on stdout.")) -> None:
    """The keys of a terminal: id, created, last used, revoked. After `rotate`, the old key's last use
    stops advancing once the terminal switched: then `keys revoke OLD_ID`."""

    def go(db):
        rows = list(db.scalars(select(ApiKey).where(ApiKey.terminal_id == terminal_id).order_by(ApiKey.created_at)))
        if not rows:
            typer.secho(f"no keys for terminal {terminal_id!r}", fg="red", err=True)
            raise typer.Exit(2)
        if as_json:
            typer.echo(json.dumps([{"key_id": k.id, "created_at": _iso(k.created_at), "last_used_at": _iso(k.last_used_at),
                                    "revoked_at": _iso(k.revoked_at)} for k in rows]))
            return
        for k in rows:
            used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never"
            state = f"revoked {k.revoked_at.isoformat(timespec='seconds')}" if k.revoked_at else "active"
            typer.echo(f"{k.id}\tcreated {k.created_at.isoformat(timespec='seconds')}\tlast used {used}\t{state}")

    _run(go)


@terminals.command("list")
def terminals_list(org: str = typer.Option(None, "--org"), as_json: bool = typer.Option(False, "--json", help="Print the result as a JSON list on stdout.")) -> None:

    def go(db):
        q = select(Terminal).order_by(Terminal.org_id, Terminal.id)
        if org:
            q = q.where(Terminal.org_id == org)
        return [{"terminal_id": t.id, "org_id": t.org_id, "counter": t.counter,
                 "state": "revoked" if t.revoked_at else "active"} for t in db.scalars(q)]

    rows = _run(go)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for t in rows:
        typer.echo(f"{t['terminal_id']}\t{t['org_id']}\t{t['counter'] or '-'}\t{t['state']}")


@device_keys.command("add")
def device_key_add(terminal_id: str,
                   public_key: typer.FileText = typer.Option(..., "--public-key", help="File of the Ed25519 public "
                                                             "key (PEM, or base64 of the 32 raw bytes); - for stdin."),
                   label: str = typer.Option("", help="Which device (serial number, model)."),
                   as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")) -> None:
    """Register a terminal's device key. Print its key id: the terminal sends it with each signature."""
    text = public_key.read(4096)

    def go(db):
        k = add_device_key(db, terminal_id, text, label)
        audit(db, actor="cli", action="device_key.add", outcome="ok", org_id=k.org_id, subject=f"terminal:{terminal_id}",
              detail={"key_id": k.id, "fingerprint": k.fingerprint, "label": k.label})
        return key_view(k)

    k = _run(go)
    if as_json:
        typer.echo(json.dumps(k))
        return
    typer.echo(f"device key {k['key_id']} for terminal {terminal_id} (SHA-256 {k['fingerprint']})")


@device_keys.command("list")
def device_key_list(terminal_id: str,
                    as_json: bool = typer.Option(False, "--json", help="Print the result as a JSON list on stdout.")) -> None:
    """A terminal's device keys: id, fingerprint, label, created, last used, revoked."""
    rows = _run(lambda db: [key_view(k) for k in list_device_keys(db, terminal_id)])
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"terminal {terminal_id} has no device keys")
    for k in rows:
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
        typer.echo(f"{k['key_id']}\t{k['fingerprint'][:16]}\t{k['label'] or '-'}\tcreated {k['created_at']}\t"
                   f"last used {k['last_used_at'] or 'never'}\t{state}")


@device_keys.command("revoke")
def device_key_revoke(terminal_id: str, key_id: str) -> None:
    """Revoke a device key: captures signed with it are refused from now on."""

    def go(db):
        k = revoke_device_key(db, terminal_id, key_id)
        audit(db, actor="cli", action="device_key.revoke", outcome="ok", org_id=k.org_id,
              subject=f"terminal:{terminal_id}", detail={"key_id": key_id})

    _run(go)
    typer.echo(f"device key {key_id} of terminal {terminal_id}: revoked")


@terminals.command("attestation")
def terminals_attestation(terminal_id: str,
                          rule: str = typer.Argument(..., help="require, optional, or inherit (as its organisation).")) -> None:
    """Whether this terminal's captures must carry a valid device attestation (else `liveness_unverified`)."""
    rules = {"require": True, "optional": False, "inherit": None}
    if rule not in rules:
        typer.secho("the rule must be require, optional or inherit", fg="red", err=True)
        raise typer.Exit(2)

    def go(db):
        set_terminal_requirement(db, terminal_id, rules[rule])
        audit(db, actor="cli", action="terminal.attestation", outcome="ok", subject=f"terminal:{terminal_id}",
              detail={"required": rules[rule]})

    _run(go)
    typer.echo(f"terminal {terminal_id}: attestation {rule}")


@orgs.command("attestation")
def orgs_attestation(org_id: str, rule: str = typer.Argument(..., help="require or optional.")) -> None:
    """Whether the captures of the organisation's terminals must carry a valid device attestation (a
    terminal's own rule, where set, wins)."""
    if rule not in ("require", "optional"):
        typer.secho("the rule must be require or optional", fg="red", err=True)
        raise typer.Exit(2)

    def go(db):
        set_org_requirement(db, org_id, rule == "require")
        audit(db, actor="cli", action="org.attestation", outcome="ok", org_id=org_id,
              detail={"required": rule == "require"})

    _run(go)
    typer.echo(f"organisation {org_id}: attestation {rule}")


@keys.command("add")
def keys_add(role: str = typer.Option(..., help="ingest (data exchange), admin, inspector (--region, "
                                              "repeatable), institution (--org) or auditor (the audit trail)."),
             label: str = typer.Option(..., help="Who uses the key."),
             org: str = typer.Option(None, "--org", help="institution: its organisation; ingest: limit to one."),
             region: list[str] = typer.Option(None, "--region", help="inspector (or ingest): the regions it "
                                                                     "covers; repeatable."),
             as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")) -> None:
    """Create a service key and print it once."""

    def go(db):
        key = add_service_key(db, role, label, org_id=org, regions=list(region) if region else None)
        audit(db, actor="cli", action="key.add", outcome="ok", subject=f"key:{key.split('_')[1]}",
              detail={"role": role, "label": label, "org_id": org, "regions": list(region or [])})
        return key

    key = _run(go)
    if as_json:
        typer.echo(json.dumps({"key_id": key.split("_")[1], "api_key": key, "role": role, "label": label,
                               "org_id": org, "regions": list(region or [])}))
        return
    typer.echo(f"api key for {label} ({role}), shown once: {key}")


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke one key by its id (the part after 'dck_')."""

    def go(db):
        revoke_key(db, key_id)
        audit(db, actor="cli", action="key.revoke", outcome="ok", subject=f"key:{key_id}")

    _run(go)
    typer.echo(f"key {key_id}: revoked")


def serve(host: str | None = None, port: int | None = None, workers: int | None = None) -> None:

    s = get_settings()
    # forwarded headers only from the configured proxies (uvicorn otherwise trusts 127.0.0.1, or its
    # FORWARDED_ALLOW_IPS): a believed X-Forwarded-For is the address the login limits count
    trusted = s.api_forwarded_allow_ips.strip()
    uvicorn.run("dualcheck.app:create_app", factory=True, host=host or s.api_host, port=port or s.api_port,
                workers=workers or s.api_workers, log_level=s.log_level.lower(), access_log=False,
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
                log_config=None)  # keep dualcheck's logging (JSON or text); the API logs its own access lines
