"""`dualcheck cameras …` (the registry)."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from correlate import reference as reference_mod
from correlate.check import detect_wide
from correlate.tracking import box_of
from dualcheck.runtime import Runtime
from ingest.cameras import (
    ZONE_KINDS,
    CameraError,
    active_cameras,
    add_camera,
    public_view,
    remove_camera,
    seal_credentials,
    set_streams,
    set_zones,
    update_camera,
)
from ingest.credentials import CredentialBox, CredentialKeyError, new_key
from ingest.presets import PresetError, vendor_url
from ingest.probe import probe_stream
from ingest.recorder import Recorder
from ingest.sharding import parse_shard
from ingest.spool import SpoolLockedError
from kernel.settings import get_settings
from kernel.timefmt import TimeInvalid, parse_instant
from storage.audit import audit
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import Camera

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
    url: str = typer.Option(None, "--url", help="rtsp://[user:password@]host[:port]/path (or --vendor and --host)"),
    role: str = typer.Option(..., "--role", help="settlement_counter, pharmacy_counter, consulting_room, ward, "
                                                 "entrance"),
    name: str = typer.Option(None, "--name"),
    covers: list[str] = typer.Option([], "--covers", help="Terminal id or counter it sees (repeatable)."),
    segment_seconds: int = typer.Option(None, "--segment-seconds", help="10-300; default the setting."),
    vendor: str = typer.Option(None, "--vendor", help="hikvision, dahua or uniview: build the vendor's "
                                                      "documented RTSP URL from --host, --channel and --stream."),
    host: str = typer.Option(None, "--host", help="The camera's or NVR's address (with --vendor)."),
    channel: int = typer.Option(1, "--channel", help="Channel, from 1 (with --vendor)."),
    stream: str = typer.Option("main", "--stream", help="main or sub: the stream recorded (with --vendor); "
                                                        "with main the sub-stream's URL is registered too."),
    port: int = typer.Option(554, "--port", help="RTSP port (with --vendor)."),
    user: str = typer.Option(None, "--user", help="The camera's user name (with --vendor)."),
    password: str = typer.Option(None, "--password", envvar="DUALCHECK_CAMERA_PASSWORD",
                                 help="The camera's password, sealed at once (or DUALCHECK_CAMERA_PASSWORD)."),
    sub_url: str = typer.Option(None, "--sub-url", help="The camera's sub-stream (lower resolution), same "
                                                        "credentials: rtsp://host[:port]/path (with --url)."),
    record_streams: str = typer.Option("main", "--record", help="main: record the main stream; both: the "
                                                                "sub-stream too."),
    analyse_stream: str = typer.Option("main", "--analyse", help="main or sub: the recording the checks read "
                                                                 "(sub needs --record both)."),
) -> None:
    """Register a camera. Credentials in the URL are stored apart (the password sealed) and never shown again."""

    box = _box()
    if sub_url is not None and vendor is not None:
        typer.secho("--sub-url goes with --url; with --vendor the sub-stream's URL is built", fg="red", err=True)
        raise typer.Exit(2)
    if (url is None) == (vendor is None):
        typer.secho("give either --url or --vendor with --host", fg="red", err=True)
        raise typer.Exit(2)
    if vendor is not None:
        if not host:
            typer.secho("--vendor needs --host", fg="red", err=True)
            raise typer.Exit(2)
        try:
            url = vendor_url(vendor, host, channel, stream, port)
            sub_url = vendor_url(vendor, host, channel, "sub", port) if stream == "main" else None
        except PresetError as e:
            typer.secho(str(e), fg="red", err=True)
            raise typer.Exit(2)

    def go(db):
        cam = add_camera(db, camera_id=camera_id, org_id=org, name=name or camera_id, role=role, url=url,
                         covers=covers, segment_seconds=segment_seconds, box=box, username=user,
                         password=password, sub_url=sub_url, record_streams=record_streams,
                         analyse_stream=analyse_stream)
        audit(db, actor="cli", action="camera.add", outcome="ok", org_id=org, subject=f"camera:{camera_id}")
        return cam.rtsp_url

    shown = _run(go)
    typer.echo(f"camera {camera_id} at {org}: {shown}" + (f" (sub-stream {sub_url})" if sub_url else ""))


@cameras.command("remove")
def cameras_remove(camera_id: str) -> None:
    """Stop recording a camera (its footage stays until retention)."""

    def go(db):
        cam = remove_camera(db, camera_id)
        audit(db, actor="cli", action="camera.remove", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{camera_id}")

    _run(go)
    typer.echo(f"camera {camera_id}: removed")


@cameras.command("test")
def cameras_test(camera_id: str,
                 still: Path = typer.Option(None, "--still", help="Write the first picture to this JPEG file."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Open the camera's stream now, as the recorder does: did a picture come, its codec and size.
    Exit 1 when the stream cannot be read."""
    box = _box()

    def go(db):
        cam = db.get(Camera, camera_id)
        if cam is None or cam.removed_at is not None:
            raise CameraError(f"no camera {camera_id!r}")
        return cam.rtsp_url, cam.rtsp_username, box.open(cam.rtsp_password), cam.org_id

    url, user, password, org_id = _run(go)
    res = probe_stream(url, user, password, get_settings().camera_test_timeout_s)
    _run(lambda db: audit(db, actor="cli", action="camera.test", outcome="ok" if res.ok else "failed",
                          org_id=org_id, subject=f"camera:{camera_id}", detail=res.view()))
    if still is not None and res.jpeg:
        still.write_bytes(res.jpeg)
    if as_json:
        typer.echo(json.dumps({"camera_id": camera_id, **res.view()}))
    elif res.ok:
        typer.echo(f"camera {camera_id}: {res.codec} {res.width}x{res.height}, first picture after {res.seconds:.1f} s")
    else:
        typer.echo(f"camera {camera_id}: no picture ({res.error})")
    if not res.ok:
        raise typer.Exit(1)


@cameras.command("list")
def cameras_list(org: str = typer.Option(None, "--org"), as_json: bool = typer.Option(False, "--json")) -> None:

    rows = _run(lambda db: [public_view(c) for c in active_cameras(db, [org] if org else None)])
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['id']}\t{r['org_id']}\t{r['role']}\t{r['rtsp_url']}\t{','.join(r['covers']) or '-'}")


def parse_polygon(text: str, kind: str) -> list[list[float]]:
    """``"x,y x,y x,y"`` (fractions of the frame) -> [[x, y], ...]; CameraError naming the bad pair."""
    pts = []
    for pair in text.replace(";", " ").split():
        xy = pair.split(",")
        try:
            if len(xy) != 2:
                raise ValueError
            pts.append([float(xy[0]), float(xy[1])])
        except ValueError:
            raise CameraError(f"--{kind} {text[:60]!r}: {pair[:30]!r} is not x,y (two numbers, e.g. 0.4,0.3)") from None
    return pts


def _print_zones(camera_id: str, zones: list[dict], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"camera_id": camera_id, "zones": zones}))
        return
    if not zones:
        typer.echo(f"camera {camera_id}: no zones (the whole frame is looked at)")
    for i, z in enumerate(zones, 1):
        pts = " ".join(f"{x:g},{y:g}" for x, y in z["points"])
        typer.echo(f"{i}\t{z['kind']}\t{pts}" + (f"\t{z['label']}" if z.get("label") else ""))


@cameras.command("zones")
def cameras_zones(
    camera_id: str,
    customer: list[str] = typer.Option([], "--customer", help='Customer side polygon "x,y x,y x,y ..." '
                                                               "(fractions 0-1 of width and height; repeatable)."),
    staff: list[str] = typer.Option([], "--staff", help="Staff side polygon (repeatable)."),
    ignore: list[str] = typer.Option([], "--ignore", help="Area to ignore: a TV, a poster, a street window "
                                                           "(repeatable)."),
    clear: bool = typer.Option(False, "--clear", help="Remove all zones (the check looks at the whole frame)."),
    as_json: bool = typer.Option(False, "--json", help="Print the zones as JSON."),
) -> None:
    """Show the camera's zones, or replace them all with the polygons given (or none with --clear)."""

    given = {"customer": customer, "staff": staff, "ignore": ignore}
    if clear and any(given.values()):
        typer.secho("--clear removes every zone; give either --clear or polygons", fg="red", err=True)
        raise typer.Exit(2)
    change = clear or any(given.values())

    def go(db):
        if not change:
            cam = db.get(Camera, camera_id)
            if cam is None or cam.removed_at is not None:
                raise CameraError(f"no camera {camera_id!r}")
            return cam.zones or []
        zones = [{"kind": k, "points": parse_polygon(p, k), "label": ""} for k in ZONE_KINDS for p in given[k]]
        cam = set_zones(db, camera_id, zones)
        audit(db, actor="cli", action="camera.zones", outcome="ok", org_id=cam.org_id, subject=f"camera:{camera_id}",
              detail={"zones": cam.zones})
        return cam.zones

    _print_zones(camera_id, _run(go), as_json)


@cameras.command("streams")
def cameras_streams(camera_id: str,
                    sub_url: str = typer.Option(None, "--sub-url", help="The sub-stream's URL ('' removes it)."),
                    record_streams: str = typer.Option(None, "--record", help="main or both."),
                    analyse_stream: str = typer.Option(None, "--analyse", help="main or sub."),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Change a camera's sub-stream and which streams are recorded (main | both) and read by the checks
    (main | sub); the recorder picks the change up on its next round."""

    def go(db):
        cam = db.get(Camera, camera_id)
        keys = ("rtsp_sub_url", "record_streams", "analyse_stream")
        before = {k: getattr(cam, k) for k in keys} if cam is not None else {}
        kw = {} if sub_url is None else {"sub_url": sub_url or None}
        cam = set_streams(db, camera_id, record_streams=record_streams, analyse_stream=analyse_stream, **kw)
        audit(db, actor="cli", action="camera.update", outcome="ok", org_id=cam.org_id, subject=f"camera:{camera_id}",
              detail={"before": before, "after": {k: getattr(cam, k) for k in keys}})
        return public_view(cam)

    view = _run(go)
    if as_json:
        typer.echo(json.dumps(view))
    else:
        typer.echo(f"camera {camera_id}: records {view['record_streams']}, checks read {view['analyse_stream']}"
                   + (f" (sub-stream {view['rtsp_sub_url']})" if view["rtsp_sub_url"] else ""))


@cameras.command("covers")
def cameras_covers(camera_id: str,
                   counters: list[str] = typer.Argument(..., help="The counters / terminal ids it sees: "
                                                                  "replaces the list."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Replace what a camera covers (settlements name these as counter or terminal_id), without removing
    the camera."""

    def go(db):
        cam = db.get(Camera, camera_id)
        before = list(cam.covers or []) if cam is not None else []
        cam = update_camera(db, camera_id, covers=counters)
        audit(db, actor="cli", action="camera.update", outcome="ok", org_id=cam.org_id, subject=f"camera:{camera_id}",
              detail={"before": {"covers": before}, "after": {"covers": cam.covers}})
        return public_view(cam)

    view = _run(go)
    if as_json:
        typer.echo(json.dumps(view))
    else:
        typer.echo(f"camera {camera_id} covers: {', '.join(view['covers'])}")


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


@cameras.command("reference")
def cameras_reference(
    camera_id: str,
    at: str = typer.Option(None, "--at", help="The moment the counter stood empty (ISO 8601 with a zone); "
                                              "default: the newest recorded frame."),
    clear: bool = typer.Option(False, "--clear", help="Remove the picture (checks use the window's frames only)."),
    show: bool = typer.Option(False, "--show", help="Only say whether there is one."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Take the counter's reference picture (its customer side empty) from the recorded footage. The check
    compares the settlement second with it, so that a customer who stood still with the back turned is
    not missed; refused when the frame shows a face on the customer side."""
    if clear and (at or show):
        typer.secho("--clear removes the picture; give it alone", fg="red", err=True)
        raise typer.Exit(2)
    s = get_settings()
    try:
        when = parse_instant(at, "--at") if at else None
    except TimeInvalid as e:
        typer.secho(e.reason, fg="red", err=True)
        raise typer.Exit(2)
    migrate(s.effective_database_url)
    rt = Runtime(s)
    try:
        rt.store.ensure_bucket(s.bucket_footage)
        with session_scope(rt.sessions) as db:
            cam = db.get(Camera, camera_id)
            if cam is None or cam.removed_at is not None:
                raise CameraError(f"no camera {camera_id!r}")
            if clear:
                reference_mod.clear(rt.store, s.bucket_footage, cam)
                audit(db, actor="cli", action="camera.reference.clear", outcome="ok", org_id=cam.org_id,
                      subject=f"camera:{camera_id}", detail={})
            elif not show:
                pipeline, side = rt.pipeline, s.correlate_detect_max_side
                ref = reference_mod.take(db, rt.store, s.bucket_footage, cam, when, "cli",
                                         faces=lambda img: [box_of(f) for f in detect_wide(pipeline, img, side)])
                audit(db, actor="cli", action="camera.reference", outcome="ok", org_id=cam.org_id,
                      subject=f"camera:{camera_id}", detail={"camera_id": camera_id, "at": ref["at"],
                                                              "sha256": ref["sha256"]})
            ref = cam.reference
    except (CameraError, reference_mod.PictureError) as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2)
    finally:
        rt.close()
    if as_json:
        typer.echo(json.dumps({"camera_id": camera_id, "reference": ref}))
    elif ref:
        typer.echo(f"camera {camera_id}: reference picture of {ref['at']} (set by {ref['set_by']} at {ref['set_at']})")
    else:
        typer.echo(f"camera {camera_id}: no reference picture (checks use the window's own frames)")
