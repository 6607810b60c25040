"""`dualcheck run`: the embedded default, everything on one machine.

Starts the local SeaweedFS, brings the SQLite index to the current schema, checks the models,
seeds a demo region (idempotent: a second start keeps the data) and serves the API until Ctrl-C.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import signal
from pathlib import Path

from sqlalchemy import select

from api.keys import add_organisation, add_service_key, add_terminal
from api.web.auth import add_user
from camsim.camera import SimulatedCamera
from correlate.jobs import InProcessWorker
from dualcheck.commands.access import serve
from dualcheck.demo_world import CAMERAS, Traffic, render_all
from dualcheck.runtime import Runtime
from ingest.cameras import add_camera
from ingest.recorder import Recorder
from kernel.settings import Settings
from storage.db import migrate, session_scope
from storage.models import Camera, InsuredPerson, Organisation, User, utcnow
from storage.seaweed import LocalSeaweed, busy_message, port_busy
from vision.packs import ensure_default_pack

REPO = Path(__file__).resolve().parents[1]

DEMO_ORGS = [("DEMO-CLINIC", "示范社区卫生服务站", "demo-north"),
             ("DEMO-PHARMACY", "示范大药房", "demo-south")]
# insured id -> portrait in the shared test data
DEMO_INSURED = {"DEMO-INS-0001": "faces/obama.jpg", "DEMO-INS-0002": "faces/biden.jpg"}
DEMO_USERS = [
    ("inspector", "inspector", {"regions": ["demo-north", "demo-south"], "display_name": "稽核员 王"}),
    ("inspector-north", "inspector", {"regions": ["demo-north"], "display_name": "北区稽核员 李"}),
    ("clinic", "institution", {"org_id": "DEMO-CLINIC", "display_name": "示范卫生服务站"}),
    ("operator", "operator", {"regions": ["*"], "display_name": "运维 张"}),
    ("admin", "admin", {"display_name": "管理员"}),
]
# Short segments so that flags appear within a minute or two of their settlement.
DEMO_SEGMENT_SECONDS = 10
log = logging.getLogger("dualcheck.demo")


def testdata_dir(settings: Settings) -> Path | None:
    candidates = [settings.demo_testdata, REPO.parent / "shared" / "testdata"]
    for c in candidates:
        if c and (Path(c) / "faces").is_dir():
            return Path(c)
    return None


def _secret() -> str:
    return secrets.token_urlsafe(9)


def seed(rt: Runtime) -> dict:
    """Create the demo organisations, keys, users and enrolled people once; return the credentials."""

    creds_path = rt.settings.data_dir / "secrets" / "demo-credentials.json"
    creds = json.loads(creds_path.read_text()) if creds_path.exists() else {}
    with session_scope(rt.sessions) as db:
        for org_id, name, region in DEMO_ORGS:
            add_organisation(db, org_id, name, region).name = name  # also renames an older demo's (mixed languages)
        db.flush()
        keys = creds.setdefault("terminal_keys", {})
        for org_id, _, _ in DEMO_ORGS:
            tid = f"{org_id}-T1"
            if tid not in keys:
                keys[tid] = add_terminal(db, org_id, tid, "counter-1")[1]
        if "ingest_key" not in creds:
            creds["ingest_key"] = add_service_key(db, "ingest", "demo data exchange")
        users = creds.setdefault("users", {})
        for username, role, kw in DEMO_USERS:
            if username not in users and db.scalar(select(User).where(User.username == username)) is None:
                users[username] = _secret()
                add_user(db, username, users[username], role, **kw)
        creds.setdefault("camera_password", _secret())
    creds_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2)

    data = testdata_dir(rt.settings)
    if data is not None:
        with session_scope(rt.sessions) as db:
            have = set(db.scalars(select(InsuredPerson.id)))
        enroller = rt.enroller
        for insured_id, rel in DEMO_INSURED.items():
            if insured_id not in have and (data / rel).exists():
                enroller.enroll(insured_id, [((data / rel).name, (data / rel).read_bytes())], actor="demo",
                                source="demo")
    creds["testdata"] = str(data) if data else None
    return creds


def start_cameras(rt: Runtime, creds: dict, data: Path) -> dict:
    """Start the simulated cameras and point the registry at them (their ports change per start)."""

    footage = render_all(data)
    sims = {}
    for cam in CAMERAS:
        sim = SimulatedCamera(footage[cam.camera_id], user="demo", password=creds["camera_password"],
                              log_path=rt.settings.data_dir / "simulator" / f"{cam.camera_id}.log")
        (rt.settings.data_dir / "simulator").mkdir(parents=True, exist_ok=True)
        sims[cam.camera_id] = sim.start()
        with session_scope(rt.sessions) as db:
            row = db.get(Camera, cam.camera_id)
            if row is not None and row.removed_at is None:
                row.removed_at = utcnow()  # re-registered just below with the new address
                db.flush()
            add_camera(db, camera_id=cam.camera_id, org_id=cam.org_id, name=cam.name, role=cam.role,
                       url=sim.url_without_credentials, username="demo", password=creds["camera_password"],
                       covers=list(cam.covers), segment_seconds=DEMO_SEGMENT_SECONDS, box=rt.credentials)
    return sims


def busy_ports(settings: Settings, seaweed: LocalSeaweed) -> list[tuple[int, str]]:
    """The ports this demo needs that another process holds, each with the setting that moves it: the
    API's and, unless our SeaweedFS already runs, every port of SeaweedFS (gRPC ones included). The
    simulated cameras take free ports of their own."""
    need = [(settings.api_port, "DUALCHECK_API_PORT", settings.api_host)]
    if seaweed.pid() is None:
        need += [(port, name, "127.0.0.1") for port, name in seaweed.ports()]
    return [(port, name) for port, name, host in need if port_busy(host, port)]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(settings: Settings) -> None:
    """Start everything, serve until Ctrl-C (or SIGTERM), stop everything (in reverse order)."""
    # uvicorn re-raises the signal that stopped it with the handler found at start: SIGTERM's default
    # would end the process before the finally below, leaving SeaweedFS and the cameras running
    signal.signal(signal.SIGTERM, _interrupt)
    if "verify_replay_window_s" not in settings.model_fields_set:
        # the demo's terminals send the same test portraits every loop of the footage: replays by
        # construction (facepay/replay.py), so the check is off unless asked for
        settings = settings.model_copy(update={"verify_replay_window_s": 0.0})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    seaweed = LocalSeaweed.from_settings(settings)
    started_here = seaweed.pid() is None
    busy = busy_ports(settings, seaweed)
    if busy:  # before anything starts: a half-started demo would fail later with a less useful message
        raise SystemExit(f"dualcheck run cannot start: {busy_message(busy)}")
    print(f"object store: starting SeaweedFS on {seaweed.endpoint} …", flush=True)
    seaweed.up()
    stoppers: list = []
    try:
        migrate(settings.effective_database_url)
        if settings.model_pack == "yunet_sface":
            ensure_default_pack(settings.effective_models_dir)
        rt = Runtime(settings)
        stoppers.append(rt.close)
        creds = seed(rt)
        data = testdata_dir(settings)
        sims: dict = {}
        if data is None:
            print("no test data found (set DUALCHECK_DEMO_TESTDATA): running without simulated cameras", flush=True)
        else:
            print("cameras: rendering and starting 3 simulated cameras …", flush=True)
            sims = start_cameras(rt, creds, data)
            stoppers.extend(sim.close for sim in sims.values())
        recorder = Recorder(settings).start()
        stoppers.append(recorder.stop)
        worker = InProcessWorker(rt.checker)
        worker.start()
        stoppers.append(worker.stop)
        if sims:
            traffic = Traffic(rt, sims, creds["terminal_keys"], data)
            traffic.start()
            stoppers.append(traffic.stop)
        with session_scope(rt.sessions) as db:
            orgs = [o.id for o in db.scalars(select(Organisation))]
        url = f"http://{settings.api_host}:{settings.api_port}"
        users = "\n".join(f"    {u:<16} {pw}" for u, pw in creds["users"].items())
        term_id, term_key = next(iter(creds["terminal_keys"].items()))
        capture = (Path(creds["testdata"]) / "faces/obama2.jpg") if creds["testdata"] else "capture.jpg"
        print(f"""
dualcheck is running on its embedded default
  inspector UI  {url}/          API docs {url}/docs
  index         {settings.effective_database_url}
  footage       s3://{settings.bucket_footage} on http://{seaweed.endpoint} (SeaweedFS)
  organisations {', '.join(orgs)}; cameras {', '.join(sims) or 'none'}
  demo accounts (user / password):
{users}
  terminal {term_id} key {term_key}
  data exchange key {creds['ingest_key']}
  (all of these are in {settings.data_dir / 'secrets' / 'demo-credentials.json'})
Settlements arrive as the cameras' scenes play; flags appear in the UI within a few minutes.
Try a face-pay check:  curl -H 'Authorization: Bearer {term_key}' -F insured_id=DEMO-INS-0001 \\
        -F image=@{capture} {url}/v1/verify
Ctrl-C stops everything; starting again keeps the data.
""", flush=True)

        serve(settings.api_host, settings.api_port, 1)
    finally:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception:  # keep stopping the rest
                log.exception("while stopping the demo")
        if started_here:
            seaweed.down()
            print("object store: stopped", flush=True)
