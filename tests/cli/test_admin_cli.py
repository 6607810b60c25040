"""The operator's command line: terminals, keys and bulk enrollment, run as real subprocesses."""
from __future__ import annotations

import hashlib
import re
import shutil

import pytest
from sqlalchemy import select

from api.keys import authenticate
from storage.db import session_scope
from storage.models import ApiKey, AuditEvent, FaceTemplate
from tests.cli.conftest import make_cli


@pytest.fixture
def cli(make_settings, db_url, tmp_path):
    settings = make_settings(db_url)
    return make_cli(settings, db_url)


def test_terminal_key_is_shown_once_stored_hashed_and_revocable(cli):
    cli("orgs", "add", "CLINIC-9", "--name", "Clinic 9", "--region", "east")
    out = cli("terminals", "add", "--org", "CLINIC-9", "--id", "C9-T1", "--counter", "counter-2").stdout
    key = re.search(r"(dck_[0-9a-f]{16}_\S+)", out).group(1)
    with session_scope(cli.sessions) as db:
        row = db.scalars(select(ApiKey)).one()
        assert key.split("_", 2)[2] not in row.secret_hash and len(row.secret_hash) == 64
        who = authenticate(db, key)
        assert (who.role, who.org_id, who.terminal_id) == ("terminal", "CLINIC-9", "C9-T1")
    # listing never shows the key again
    assert key not in cli("terminals", "list").stdout
    # unknown organisation: a clear message, exit code 2, nothing created
    bad = cli("terminals", "add", "--org", "NOPE", ok=False)
    assert bad.returncode == 2 and "unknown organisation" in bad.stderr
    cli("terminals", "revoke", "C9-T1")
    with session_scope(cli.sessions) as db:
        assert authenticate(db, key) is None
        actions = [e.action for e in db.scalars(select(AuditEvent))]
    assert {"org.add", "terminal.add", "terminal.revoke"} <= set(actions)


def test_rotation_keeps_the_old_key_until_it_is_revoked(cli):
    cli("orgs", "add", "CLINIC-8")
    old = re.search(r"(dck_\S+)", cli("terminals", "add", "--org", "CLINIC-8", "--id", "C8-T1").stdout).group(1)
    new = re.search(r"(dck_\S+)", cli("terminals", "rotate", "C8-T1").stdout).group(1)
    with session_scope(cli.sessions) as db:
        assert authenticate(db, old) and authenticate(db, new)
    cli("keys", "revoke", old.split("_")[1])
    with session_scope(cli.sessions) as db:
        assert authenticate(db, old) is None and authenticate(db, new) is not None


def test_bulk_enroll_reports_each_file_and_is_safe_to_rerun(cli, testdata, tmp_path):
    src = tmp_path / "photos"
    (src / "INS-002").mkdir(parents=True)
    shutil.copy(testdata / "faces/obama.jpg", src / "INS-001.jpg")
    shutil.copy(testdata / "faces/obama2.jpg", src / "INS-002" / "a.jpg")
    shutil.copy(testdata / "faces/obama3.jpg", src / "INS-002" / "b.jpg")
    shutil.copy(testdata / "scenes/bald_guys.jpg", src / "INS-003.jpg")
    (src / "INS-004.jpg").write_bytes(b"not a photo")
    (src / "bad id!.jpg").write_bytes((testdata / "faces/biden.jpg").read_bytes())
    (src / "notes.txt").write_text("ignore me")

    first = cli("enroll", str(src), ok=False)
    assert first.returncode == 3  # some files refused or skipped: a script can tell
    out = first.stdout
    assert re.search(r"enrolled\s+INS-001\s+INS-001.jpg", out)
    assert re.search(r"refused\s+INS-003\s+INS-003.jpg: multiple_faces", out)
    assert re.search(r"refused\s+INS-004\s+INS-004.jpg: not_an_image", out)
    assert "bad id!.jpg: file name is not an insured id" in out
    assert "summary: 5 photo(s) of 4 person(s): 3 enrolled, 0 already enrolled, 2 refused, 2 file(s) skipped" in out
    with session_scope(cli.sessions) as db:
        rows = db.scalars(select(FaceTemplate)).all()
        assert sorted((t.insured_id, t.source) for t in rows) == [
            ("INS-001", "cli"), ("INS-002", "cli"), ("INS-002", "cli")]
        shas = {t.photo_sha256 for t in rows}
    assert hashlib.sha256((src / "INS-001.jpg").read_bytes()).hexdigest() in shas

    again = cli("enroll", str(src), ok=False).stdout
    assert "3 enrolled" not in again and "0 enrolled, 3 already enrolled, 2 refused" in again
    with session_scope(cli.sessions) as db:
        assert len(db.scalars(select(FaceTemplate)).all()) == 3
