"""Camera passwords are sealed at rest: the database (and so every dump of it) never holds one in
clear, the recorders still reach the cameras, a process without the region's key says so instead
of failing silently, and keys rotate."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text, update

from ingest.credentials import CredentialBox, CredentialKeyError, new_key
from ingest.recorder import Recorder
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import Camera, Organisation
from tests.ingest.conftest_recorder import rec_env, wait_for  # noqa: F401  (fixture)

PASSWORD = "Cam-pa55-Kl1n1k"


def _stored(env, camera_id: str) -> str | None:
    with env.sessions() as db:
        return db.execute(text("SELECT rtsp_password FROM cameras WHERE id = :i"), {"i": camera_id}).scalar()


def test_passwords_are_sealed_in_the_database_and_cameras_still_recorded(rec_env, tmp_path, camera_factory):
    cam = camera_factory(user="viewer", password=PASSWORD)
    db_file = tmp_path / "idx.db"
    env = rec_env(f"sqlite:///{db_file}")
    env.add_camera("cam-a", cam.url)  # through the registry: sealed on the way in
    env.add_camera("cam-old", cam.url_without_credentials)
    with session_scope(env.sessions) as db:  # a row written in clear by a version before sealing
        db.execute(update(Camera).where(Camera.id == "cam-old").values(rtsp_username="viewer", rtsp_password=PASSWORD))
    assert _stored(env, "cam-a").startswith("enc:v1:") and PASSWORD not in _stored(env, "cam-a")
    rec = Recorder(env.settings).start()
    try:
        wait_for(lambda: env.segments("cam-a") and env.segments("cam-old"), 60, what="both cameras recorded")
    finally:
        rec.stop()
    # the recorder sealed the old row too: nowhere in the database file is the password
    assert _stored(env, "cam-old").startswith("enc:v1:")
    with env.sessions() as db:  # rebuild the file: free pages may still hold a row's earlier bytes
        db.connection().exec_driver_sql("VACUUM")
    env.sessions.kw["bind"].dispose()
    assert PASSWORD.encode() not in db_file.read_bytes()
    # the embedded default's key is a file of the data directory, readable by its owner only
    key_file = Path(env.settings.data_dir) / "camera-credentials.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert CredentialBox(key_file.read_text().strip()).open(_stored(env, "cam-a")) == PASSWORD


def test_a_recorder_without_the_regions_key_reports_the_camera_and_records_the_others(rec_env, tmp_path,
                                                                                       camera_factory):
    locked = camera_factory(user="viewer", password=PASSWORD)
    open_cam = camera_factory()
    env = rec_env(f"sqlite:///{tmp_path / 'idx.db'}", camera_credentials_key=SecretStr(new_key()))
    env.add_camera("cam-locked", locked.url)
    env.add_camera("cam-open", open_cam.url_without_credentials)
    wrong = env.settings.model_copy(update={"camera_credentials_key": SecretStr(new_key())})
    rec = Recorder(wrong).start()
    try:
        wait_for(lambda: env.segments("cam-open"), 60, what="the camera without a password recorded")
        st = wait_for(lambda: (s := env.status("cam-locked")) and s.error and s, 20, what="status of the locked one")
    finally:
        rec.stop()
    assert st.state == "offline" and "DUALCHECK_CAMERA_CREDENTIALS_KEY" in st.error
    assert env.segments("cam-locked") == []
    gaps = env.gaps("cam-locked")
    assert gaps and gaps[0].reason == "camera_offline" and "another key" in gaps[0].detail
    assert _stored(env, "cam-locked").startswith("enc:v1:")  # untouched: the wrong key sealed nothing


def _cli(args, db_url: str, tmp_path, key: str | None):
    env = {"PATH": "/usr/bin:/bin", "DUALCHECK_DATABASE_URL": db_url, "DUALCHECK_DATA_DIR": str(tmp_path / "cli")}
    if key is not None:
        env["DUALCHECK_CAMERA_CREDENTIALS_KEY"] = key
    return subprocess.run([str(Path(sys.executable).with_name("dualcheck")), "cameras", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_keys_rotate_with_the_seal_command(db_url, tmp_path):
    old, new = new_key(), new_key()
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as db:
        db.add(Organisation(id="org1", name="org1"))
    r = _cli(["add", "cam-1", "--org", "org1", "--role", "entrance", "--url", f"rtsp://viewer:{PASSWORD}@10.1.1.1/s"],
             db_url, tmp_path, old)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    too_long = "x" * 129
    r = _cli(["add", "cam-2", "--org", "org1", "--role", "entrance", "--url", f"rtsp://viewer:{too_long}@10.1.1.2/s"],
             db_url, tmp_path, old)
    assert r.returncode == 2 and "at most 128 characters" in r.stderr
    with session_scope(sessions) as db:
        db.execute(text("UPDATE cameras SET rtsp_password = :p WHERE id = 'cam-1'"),
                   {"p": CredentialBox(old).seal(PASSWORD)})
        sealed_old = db.get(Camera, "cam-1").rtsp_password
    # a key that opens nothing: refused, nothing changed
    r = _cli(["seal"], db_url, tmp_path, new)
    assert r.returncode == 2 and "another key" in r.stderr
    with session_scope(sessions) as db:
        assert db.get(Camera, "cam-1").rtsp_password == sealed_old
    # new key first, old key still accepted: every password re-sealed with the new one
    r = _cli(["seal"], db_url, tmp_path, f"{new},{old}")
    assert r.returncode == 0 and "1 camera password(s) sealed" in r.stdout, r.stderr
    with session_scope(sessions) as db:
        stored = db.get(Camera, "cam-1").rtsp_password
    assert CredentialBox(new).open(stored) == PASSWORD
    with pytest.raises(CredentialKeyError):
        CredentialBox(old).open(stored)
    # a malformed key is named as such
    r = _cli(["seal"], db_url, tmp_path, "CHANGE_ME")
    assert r.returncode == 2 and "Fernet keys" in r.stderr
    # no key at all: one machine (SQLite) makes its key file; a region (PostgreSQL) must be given the key,
    # or each process would seal with its own
    r = _cli(["add", "cam-3", "--org", "org1", "--role", "entrance", "--url", f"rtsp://viewer:{PASSWORD}@10.1.1.3/s"],
             db_url, tmp_path, None)
    if db_url.startswith("sqlite"):
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "cli" / "camera-credentials.key").exists()
    else:
        assert r.returncode == 2 and "DUALCHECK_CAMERA_CREDENTIALS_KEY is not set" in r.stderr
        assert not (tmp_path / "cli" / "camera-credentials.key").exists()
        with session_scope(sessions) as db:
            assert db.get(Camera, "cam-3") is None
    engine.dispose()
