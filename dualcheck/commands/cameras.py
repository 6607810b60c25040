"""`dualcheck cameras …` (the registry)."""
from __future__ import annotations

import json

import typer

from ingest.cameras import CameraError, active_cameras, add_camera, public_view, remove_camera, seal_credentials
from ingest.credentials import CredentialBox, CredentialKeyError, new_key
from ingest.recorder import Recorder
from ingest.sharding import parse_shard
from ingest.spool import SpoolLockedError
from kernel.settings import get_settings
from storage.audit import audit
from storage.db import make_engine, make_sessionmaker, migrate, session_scope

cameras = typer.Typer(help="The camera registry.", no_args_is_help=True)


def _run(fn):

    url = get_settings().effective_database_url
    migrate(url)
    try:
        with session_scope(make_sessionmaker(make_engine(url))) as db:
            return fn(db)
    except (CameraError, CredentialKeyError) as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2)


def _box():

    try:
        return CredentialBox.from_settings(get_settings())
    except CredentialKeyError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2)


@cameras.command("add")
def cameras_add(
    camera_id: str,
    org: str = typer.Option(..., "--org"),
    url: str = typer.Option(..., "--url", help="rtsp://[user:password@]host[:port]/path"),
    role: str = typer.Option(..., "--role", help="settlement_counter, pharmacy_counter, consulting_room, ward, "
                                                 "entrance"),
    name: str = typer.Option(None, "--name"),
    covers: list[str] = typer.Option([], "--covers", help="Terminal id or counter it sees (repeatable)."),
    segment_seconds: int = typer.Option(None, "--segment-seconds", help="10-300; default the setting."),
) -> None:
    """Register a camera. Credentials in the URL are stored apart (the password sealed) and never shown again."""

    box = _box()

    def go(db):
        cam = add_camera(db, camera_id=camera_id, org_id=org, name=name or camera_id, role=role, url=url,
                         covers=covers, segment_seconds=segment_seconds, box=box)
        audit(db, actor="cli", action="camera.add", outcome="ok", org_id=org, subject=f"camera:{camera_id}")
        return cam.rtsp_url

    shown = _run(go)
    typer.echo(f"camera {camera_id} at {org}: {shown}")


@cameras.command("remove")
def cameras_remove(camera_id: str) -> None:
    """Stop recording a camera (its footage stays until retention)."""

    def go(db):
        cam = remove_camera(db, camera_id)
        audit(db, actor="cli", action="camera.remove", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{camera_id}")

    _run(go)
    typer.echo(f"camera {camera_id}: removed")


@cameras.command("list")
def cameras_list(org: str = typer.Option(None, "--org"), as_json: bool = typer.Option(False, "--json")) -> None:

    rows = _run(lambda db: [public_view(c) for c in active_cameras(db, [org] if org else None)])
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['id']}\t{r['org_id']}\t{r['role']}\t{r['rtsp_url']}\t{','.join(r['covers']) or '-'}")


@cameras.command("new-key")
def cameras_new_key() -> None:
    """Print a new key for DUALCHECK_CAMERA_CREDENTIALS_KEY (put it in the region's secrets, not in a file
    beside the database)."""

    typer.echo(new_key())


@cameras.command("seal")
def cameras_seal() -> None:
    """Re-seal every camera password with the first key of DUALCHECK_CAMERA_CREDENTIALS_KEY (after adding a
    new key in front), sealing any stored in clear. All or nothing: stops if one cannot be opened."""

    box = _box()

    def go(db):
        n = seal_credentials(db, box)
        audit(db, actor="cli", action="camera.credentials.seal", outcome="ok", detail={"cameras": n})
        return n

    typer.echo(f"{_run(go)} camera password(s) sealed with the current key")


def record(
    shard: str = typer.Option(None, "--shard", help="i/n: only consider the cameras of shard i (0-based) of n "
                                                    "(stable hash of the camera id); recorders of the same "
                                                    "shard share them by leases."),
    recorder_id: str = typer.Option(None, "--id", help="Name of this recorder (default DUALCHECK_RECORDER_ID, "
                                                       "else hostname-pid)."),
) -> None:
    """Record this recorder's fair share of the cameras (leases shared with the other live recorders)
    into the footage bucket until SIGTERM/SIGINT."""

    try:
        sh = parse_shard(shard)
    except ValueError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2)
    s = get_settings()
    migrate(s.effective_database_url)
    try:
        Recorder(s, sh, recorder_id=recorder_id).run_forever()
    except SpoolLockedError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(3)
