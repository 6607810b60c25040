"""The integrator's command line, as real subprocesses: JSON output of the commands that print keys and
ids, camera covers and zones edited in place, unknown counters reported on import."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from api.keys import authenticate
from storage.db import session_scope
from storage.models import AuditEvent, Camera
from tests.cli.conftest import make_cli


@pytest.fixture
def cli(make_settings, tmp_path):
    """The CLI on a fresh SQLite (none of this depends on the database kind)."""
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    settings = make_settings(db_url)
    return make_cli(settings, db_url)


def test_json_output_of_keys_terminals_and_orgs(cli):
    org = json.loads(cli("orgs", "add", "CLINIC-9", "--name", "Clinic 9", "--region", "east", "--json").stdout)
    assert org == {"org_id": "CLINIC-9", "name": "Clinic 9", "region": "east", "uses_face_pay": True}
    term = json.loads(cli("terminals", "add", "--org", "CLINIC-9", "--id", "C9-T1", "--counter", "counter-2",
                          "--json").stdout)
    assert (term["terminal_id"], term["org_id"], term["counter"]) == ("C9-T1", "CLINIC-9", "counter-2")
    assert term["api_key"].split("_")[1] == term["key_id"]
    rot = json.loads(cli("terminals", "rotate", "C9-T1", "--json").stdout)
    assert rot["terminal_id"] == "C9-T1" and rot["api_key"] != term["api_key"]
    key = json.loads(cli("keys", "add", "--role", "inspector", "--label", "north desk", "--region", "east",
                         "--json").stdout)
    assert (key["role"], key["regions"], key["key_id"]) == ("inspector", ["east"], key["api_key"].split("_")[1])
    with session_scope(cli.sessions) as db:
        for k in (term["api_key"], rot["api_key"], key["api_key"]):
            assert authenticate(db, k) is not None  # what the JSON says is the key that works
    # listings: ids, never secrets
    listed = cli("terminals", "keys", "C9-T1", "--json").stdout
    assert {k["key_id"] for k in json.loads(listed)} == {term["key_id"], rot["key_id"]}
    assert term["api_key"] not in listed and rot["api_key"] not in listed
    assert json.loads(cli("terminals", "list", "--json").stdout) == [
        {"terminal_id": "C9-T1", "org_id": "CLINIC-9", "counter": "counter-2", "state": "active"}]
    assert [o["org_id"] for o in json.loads(cli("orgs", "list", "--json").stdout)] == ["CLINIC-9"]
    # errors stay on stderr with exit code 2: stdout is empty, never half a JSON document
    bad = cli("terminals", "add", "--org", "NOPE", "--json", ok=False)
    assert bad.returncode == 2 and bad.stdout == "" and "unknown organisation" in bad.stderr


def test_covers_and_zones_edited_without_removing_the_camera(cli):
    cli("orgs", "add", "CLINIC-9", "--region", "east")
    cli("cameras", "add", "CAM-9", "--org", "CLINIC-9", "--url", "rtsp://10.0.0.9/s1", "--role",
        "settlement_counter", "--covers", "counter-1")
    view = json.loads(cli("cameras", "covers", "CAM-9", "counter-2", "C9-T1", "--json").stdout)
    assert view["covers"] == ["counter-2", "C9-T1"] and view["enabled"]
    assert "counter-2, C9-T1" in cli("cameras", "covers", "CAM-9", "counter-2", "C9-T1").stdout
    # zones: none yet; then a customer side and a poster to ignore
    assert "no zones" in cli("cameras", "zones", "CAM-9").stdout
    out = json.loads(cli("cameras", "zones", "CAM-9", "--customer", "0.4,0.3 1,0.3 1,0.9 0.4,0.9",
                         "--ignore", "0.05,0.05 0.2,0.05 0.2,0.25", "--json").stdout)
    assert out == {"camera_id": "CAM-9", "zones": [
        {"kind": "customer", "points": [[0.4, 0.3], [1.0, 0.3], [1.0, 0.9], [0.4, 0.9]], "label": ""},
        {"kind": "ignore", "points": [[0.05, 0.05], [0.2, 0.05], [0.2, 0.25]], "label": ""}]}
    shown = cli("cameras", "zones", "CAM-9").stdout
    assert "customer\t0.4,0.3 1,0.3 1,0.9 0.4,0.9" in shown and "ignore" in shown
    # refusals name the problem; nothing changes
    for args, said in [(("--staff", "0.1,0.1 0.2,0.2"), "3-32"),
                       (("--staff", "0.1,0.1 0.2,0.2 0.3,0.3"), "no area"),
                       (("--customer", "0.1,0.1 1.5,0.2 0.3,0.9"), "within [0, 1]"),
                       (("--customer", "0.1;0.1 0.5,0.2 0.3,0.9"), "is not x,y"),
                       (("--clear", "--staff", "0,0 1,0 1,1"), "--clear")]:
        bad = cli("cameras", "zones", "CAM-9", *args, ok=False)
        assert bad.returncode == 2 and said in bad.stderr, (args, bad.stderr)
    assert cli("cameras", "covers", "CAM-9", "bad/counter", ok=False).returncode == 2
    assert len(json.loads(cli("cameras", "zones", "CAM-9", "--json").stdout)["zones"]) == 2
    assert json.loads(cli("cameras", "zones", "CAM-9", "--clear", "--json").stdout)["zones"] == []
    with session_scope(cli.sessions) as db:
        cam = db.get(Camera, "CAM-9")
        assert cam.removed_at is None and cam.covers == ["counter-2", "C9-T1"] and cam.zones == []
        actions = [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.subject == "camera:CAM-9"))]
    assert actions.count("camera.zones") == 2 and actions.count("camera.update") == 2


def test_import_warns_of_a_counter_no_camera_covers(cli, tmp_path):
    cli("orgs", "add", "CLINIC-9", "--region", "east")
    cli("cameras", "add", "CAM-9", "--org", "CLINIC-9", "--url", "rtsp://10.0.0.9/s1", "--role",
        "settlement_counter", "--covers", "counter-1", "--covers", "counter-2")
    f = tmp_path / "s.csv"
    f.write_text("settlement_id,insured_id,org_id,counter,settled_at,amount,type\n"
                 "S-1,P-1,CLINIC-9,counter-1,2026-03-02T09:00:00+08:00,10.00,pharmacy\n"
                 "S-2,P-1,CLINIC-9,Counter 1,2026-03-02T09:05:00+08:00,12.00,pharmacy\n")
    rep = json.loads(cli("settlements", "import", str(f), "--json", "--no-enqueue").stdout)
    assert rep["imported"] == 2 and rep["refused"] == 0
    assert [(w["line"], w["settlement_id"], w["warning"]) for w in rep["warnings"]] == [(3, "S-2", "unknown_counter")]
    assert "'Counter 1'" in rep["warnings"][0]["reason"] and "'counter-1', 'counter-2'" in rep["warnings"][0]["reason"]
    # the same file again: unchanged, still warned (the mapping is still wrong); text on stderr
    p = cli("settlements", "import", str(f), "--no-enqueue")
    assert "line 3: warning unknown_counter" in p.stderr and "2 unchanged" in p.stdout
    # covers fixed without removing the camera: no warning any more
    cli("cameras", "covers", "CAM-9", "counter-1", "counter-2", "Counter 1")
    rep = json.loads(cli("settlements", "import", str(f), "--json", "--no-enqueue").stdout)
    assert rep["warnings"] == [] and rep["unchanged"] == 2
