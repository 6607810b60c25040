"""`dualcheck run`: the embedded default, everything on one machine.

Starts the local SeaweedFS, brings the SQLite index to the current schema, checks the models,
seeds a demo region (idempotent: a second start keeps the data) and serves the API until Ctrl-C.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select

from dualcheck.runtime import Runtime
from dualcheck.settings import Settings
from storage.db import migrate, session_scope
from storage.models import InsuredPerson, Organisation

REPO = Path(__file__).resolve().parents[1]

DEMO_ORGS = [("DEMO-CLINIC", "示范社区卫生服务站 Demo community clinic", "demo-north"),
             ("DEMO-PHARMACY", "示范大药房 Demo pharmacy", "demo-south")]
# insured id -> portrait in the shared test data
DEMO_INSURED = {"DEMO-INS-0001": "faces/obama.jpg", "DEMO-INS-0002": "faces/biden.jpg"}


def testdata_dir(settings: Settings) -> Path | None:
    candidates = [settings.demo_testdata, REPO.parent / "shared" / "testdata"]
    for c in candidates:
        if c and (Path(c) / "faces").is_dir():
            return Path(c)
    return None


def seed(rt: Runtime) -> dict:
    """Create the demo organisations, keys and enrolled people once; return the credentials."""
    from api.keys import add_organisation, add_service_key, add_terminal
    from vision.enrollment import Enroller

    creds_path = rt.settings.data_dir / "secrets" / "demo-credentials.json"
    creds = json.loads(creds_path.read_text()) if creds_path.exists() else {}
    with session_scope(rt.sessions) as db:
        for org_id, name, region in DEMO_ORGS:
            add_organisation(db, org_id, name, region)
        db.flush()
        if "terminal_key" not in creds:
            creds["terminal_id"] = "DEMO-CLINIC-T1"
            creds["terminal_key"] = add_terminal(db, "DEMO-CLINIC", "DEMO-CLINIC-T1", "counter-1")[1]
        if "ingest_key" not in creds:
            creds["ingest_key"] = add_service_key(db, "ingest", "demo data exchange")
    creds_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2)

    data = testdata_dir(rt.settings)
    if data is not None:
        with session_scope(rt.sessions) as db:
            have = set(db.scalars(select(InsuredPerson.id)))
        enroller = Enroller(rt)
        for insured_id, rel in DEMO_INSURED.items():
            if insured_id not in have and (data / rel).exists():
                enroller.enroll(insured_id, [((data / rel).name, (data / rel).read_bytes())], actor="demo",
                                source="demo")
    creds["testdata"] = str(data) if data else None
    return creds


def run(settings: Settings) -> None:
    from storage.seaweed import LocalSeaweed
    from vision.packs import ensure_default_pack

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    seaweed = LocalSeaweed.from_settings(settings)
    started_here = seaweed.pid() is None
    print(f"object store: starting SeaweedFS on {seaweed.endpoint} …", flush=True)
    seaweed.up()
    try:
        migrate(settings.effective_database_url)
        if settings.model_pack == "yunet_sface":
            ensure_default_pack(settings.effective_models_dir)
        rt = Runtime(settings)
        creds = seed(rt)
        with session_scope(rt.sessions) as db:
            orgs = [o.id for o in db.scalars(select(Organisation))]
        rt.close()
        url = f"http://{settings.api_host}:{settings.api_port}"
        print(f"""
dualcheck is running on its embedded default
  API          {url}   (OpenAPI: {url}/docs)
  index        {settings.effective_database_url}
  footage      s3://{settings.bucket_footage} on http://{seaweed.endpoint} (SeaweedFS)
  organisations {', '.join(orgs)}
  demo terminal {creds['terminal_id']} key {creds['terminal_key']}
  data exchange key {creds['ingest_key']}
  (keys are also in {settings.data_dir / 'secrets' / 'demo-credentials.json'})
Try:  curl -H 'Authorization: Bearer {creds['terminal_key']}' -F insured_id=DEMO-INS-0001 \\
        -F image=@{(Path(creds['testdata']) / 'faces/obama2.jpg') if creds['testdata'] else 'capture.jpg'} {url}/v1/verify
Ctrl-C stops everything; starting again keeps the data.
""", flush=True)
        from api.cli import serve

        serve(settings.api_host, settings.api_port, 1)
    finally:
        if started_here:
            seaweed.down()
            print("object store: stopped", flush=True)
