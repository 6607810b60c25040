"""`dualcheck users add|list|disable` as the operator runs it (a real subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

DUALCHECK = str(Path(sys.executable).parent / "dualcheck")


def test_users_cli_adds_lists_and_disables_without_showing_the_password(tmp_path, seaweed, models_dir):
    from api.keys import add_organisation
    from dualcheck.app import create_app
    from storage.db import make_engine, make_sessionmaker, migrate, session_scope
    from tests.web.conftest import test_settings

    settings = test_settings(tmp_path, seaweed, models_dir)
    url = settings.effective_database_url
    migrate(url)
    with session_scope(make_sessionmaker(make_engine(url))) as db:
        add_organisation(db, "CLINIC-A", "甲诊所", region="north")
    env = {**os.environ, "DUALCHECK_DATA_DIR": str(settings.data_dir), "DUALCHECK_DATABASE_URL": url,
           "COLUMNS": "200"}

    def run(*args, stdin=None):
        return subprocess.run([DUALCHECK, "users", *args], env=env, input=stdin, capture_output=True, text=True,
                              timeout=120)

    secret = "s3cret-pass-word"
    p = run("add", "wang", "--role", "inspector", "--region", "north", "--name", "王稽核", "--password-stdin",
            stdin=secret + "\n")
    assert p.returncode == 0 and "wang: inspector, regions north" in p.stdout, p.stderr
    p = run("add", "clinic", "--role", "institution", "--org", "CLINIC-A", "--password-stdin", stdin=secret + "\n")
    assert p.returncode == 0, p.stderr
    # refusals say why
    p = run("add", "x", "--role", "institution", "--password-stdin", stdin=secret + "\n")
    assert p.returncode == 2 and "needs --org" in p.stderr
    p = run("add", "y", "--role", "inspector", "--region", "north", "--password-stdin", stdin="short\n")
    assert p.returncode == 2 and "at least 8" in p.stderr
    p = run("add", "wang", "--role", "admin", "--password-stdin", stdin=secret + "\n")
    assert p.returncode == 2 and "exists already" in p.stderr
    listing = run("list").stdout
    assert "wang\tinspector\tnorth\tactive\t王稽核" in listing and "clinic\tinstitution\tCLINIC-A" in listing
    assert secret not in listing and "argon2" not in listing
    # the user logs in; once disabled it cannot
    app = create_app(settings, preload_models=False)
    with TestClient(app) as c:
        r = c.post("/login", data={"username": "wang", "password": secret}, follow_redirects=False)
        assert r.status_code == 303
        assert run("disable", "wang").returncode == 0
        assert c.get("/flags", follow_redirects=False).status_code == 303
        assert c.post("/login", data={"username": "wang", "password": secret}).status_code == 401
    assert "wang\tinspector\tnorth\tdisabled" in run("list").stdout
