"""Backup and restore as docs/operations.md describes it: `pg_dump -Fc` of the index, `pg_restore` into a
fresh PostgreSQL database, the API started on it with the same bucket. Every segment plays, the enrolled
person still verifies, every flag is listed with the same evidence bytes."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from dualcheck.app import create_app
from storage.db import session_scope
from storage.models import Segment
from tests.api.conftest import shared_pipeline  # noqa: F401  (fixture)
from tests.conftest import _create_pg_database, _drop_pg_database

pytestmark = pytest.mark.postgres


def _pg_bin(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/lib/postgresql/15/bin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail(f"{name} not found (apt-get install postgresql-client)")


def _libpq(url: str) -> str:
    """postgresql+psycopg://… (SQLAlchemy) -> postgresql://… (pg_dump, pg_restore)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state(client: TestClient, h: dict, segments: list[tuple[int, str]], verification_id: str) -> dict:
    """What a user of the API sees: flags with their evidence bytes, segments' bytes, a verification."""
    flags = {}
    for f in client.get("/v1/flags", headers=h).json()["flags"]:
        detail = client.get(f"/v1/flags/{f['id']}", headers=h)
        assert detail.status_code == 200, detail.text
        d = detail.json()
        ev = d["evidence"]
        urls = [face["crop_url"] for face in ev.get("faces") or [] if face.get("crop_url")]
        urls += [c["replay_url"] for c in ev.get("cameras") or [] if c.get("replay_url")]
        if (ev.get("face_pay") or {}).get("capture_url"):
            urls.append(ev["face_pay"]["capture_url"])
        blobs = {}
        for u in urls:
            r = client.get(u, headers=h)
            assert r.status_code == 200 and r.content, (u, r.status_code, r.text[:200])
            blobs[u] = _sha(r.content)
        flags[d["id"]] = (d["rule"], d["settlement_id"], d["level"], d["status"], blobs)
    media = {}
    for seg_id, cam in segments:
        r = client.get(f"/v1/cameras/{cam}/hls/{seg_id}/media.m4s", headers=h)
        assert r.status_code == 200 and r.content, (seg_id, r.status_code)
        media[seg_id] = _sha(client.get(f"/v1/cameras/{cam}/hls/{seg_id}/init.mp4", headers=h).content + r.content)
    v = client.get(f"/v1/verifications/{verification_id}", headers=h)
    assert v.status_code == 200, v.text
    return {"flags": flags, "segments": media, "verification": v.json()}


def test_pg_dump_restore_into_a_fresh_database_finds_everything_again(
        make_settings, shared_pipeline, testdata, tmp_path):  # noqa: F811
    from tests.correlate import scenarios as sc
    from tests.correlate.conftest import SETTINGS, make_world

    pg_dump, pg_restore = _pg_bin("pg_dump"), _pg_bin("pg_restore")
    original_url = _create_pg_database()
    restored_url = None
    try:
        settings = make_settings(original_url, **SETTINGS)
        w = make_world(settings, shared_pipeline, testdata, tmp_path, enrolled=())
        # enrollment through the API: templates in the index, photos in the bucket
        files = [("photos", (p, (testdata / "faces" / p).read_bytes(), "image/jpeg")) for p in ("obama2.jpg", "obama3.jpg")]
        assert w.client.put("/v1/insured/P-OBAMA/photos", files=files, headers=w.h("admin")).status_code == 200
        capture = (testdata / "faces" / "obama.jpg").read_bytes()
        r = w.client.post("/v1/verify", data={"insured_id": "P-OBAMA", "settlement_ref": "A-GHOST"},
                          files={"image": ("c.jpg", capture, "image/jpeg")}, headers=w.h("terminal"))
        assert r.status_code == 200 and r.json()["decision"] == "match", r.text
        verification_id = r.json()["verification_id"]
        # footage of two cameras and real checks raising real flags
        imp = w.add_block("impostor", testdata, camera_id="CAM-A", org_id="CLINIC-A")
        ghost = w.add_block("ghost", testdata, camera_id="CAM-A", org_id="CLINIC-A")
        ghost_b = w.add_block("ghost", testdata, camera_id="CAM-B", org_id="PHARM-B")
        rows = [sc.settlement("A-IMP", "P-OBAMA", "CLINIC-A", imp.settled_at, counter="counter-1"),
                sc.settlement("A-GHOST", "P-OBAMA", "CLINIC-A", ghost.settled_at, terminal="CLINIC-A-T1",
                              verification_id=verification_id),
                sc.settlement("B-GHOST", "P-OBAMA", "PHARM-B", ghost_b.settled_at, terminal="PHARM-B-T1")]
        assert w.post(rows).status_code == 200
        w.run_jobs()
        with session_scope(w.rt.sessions) as db:
            segments = [(s.id, s.camera_id) for s in db.scalars(select(Segment).order_by(Segment.id))]
        assert {c for _, c in segments} == {"CAM-A", "CAM-B"} and len(segments) >= 6
        admin = w.h("admin")
        before = _state(w.client, admin, segments, verification_id)
        rules = {(rule, sid) for rule, sid, *_ in before["flags"].values()}
        assert {("impersonation", "A-IMP"), ("ghost_visit", "A-GHOST"), ("ghost_visit", "B-GHOST")} <= rules
        assert any(any("/faces/" in u for u in blobs) for *_, blobs in before["flags"].values())
        assert any(any(u.endswith("/capture") for u in blobs) for *_, blobs in before["flags"].values())
        w.client.__exit__(None, None, None)
        w.rt.close()

        # the backup: a custom-format dump; then the original database is gone
        dump = tmp_path / "dualcheck.dump"
        subprocess.run([pg_dump, "-Fc", "--no-owner", "-f", str(dump), _libpq(original_url)], check=True, timeout=120)
        _drop_pg_database(original_url)
        original_url = None
        restored_url = _create_pg_database()
        subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "-d", _libpq(restored_url), str(dump)],
                       check=True, timeout=120)

        # the service on the restored database and the same bucket
        app = create_app(settings.model_copy(update={"database_url": restored_url}), preload_models=False)
        app.state.runtime.__dict__["pipeline"] = shared_pipeline
        with TestClient(app) as client:
            after = _state(client, admin, segments, verification_id)
            assert after == before
            # the templates are back: the insured person still verifies, with the key issued before the backup
            r = client.post("/v1/verify", data={"insured_id": "P-OBAMA"}, headers=w.h("terminal"),
                            files={"image": ("c.jpg", capture, "image/jpeg")})
            assert r.status_code == 200 and r.json()["decision"] == "match", r.text
            # and the index takes new rows after the restore (sequences restored, no id collisions)
            r = client.post("/v1/verify", data={"insured_id": "P-OBAMA"}, headers=w.h("terminal"),
                            files={"image": ("c.jpg", capture, "image/jpeg")})
            assert r.status_code == 200
        app.state.runtime.close()
    finally:
        for url in (original_url, restored_url):
            if url:
                _drop_pg_database(url)
