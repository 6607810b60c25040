"""`dualcheck beds set|list|remove` and `dualcheck ward check` as real subprocesses: a bed mapped to a ward
camera and listed, bad input refused on stderr with exit 2, a run over admissions with and without beds."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import AuditEvent, BedCheck, ClaimAdmission
from tests.cli.conftest import make_cli

REGION = "0.05,0.4 0.27,0.4 0.3,0.86 0.02,0.86"


@pytest.fixture
def cli(make_settings, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    return make_cli(make_settings(db_url), db_url)


def test_beds_are_mapped_listed_and_removed(cli):
    cli("orgs", "add", "H0001", "--name", "县人民医院", "--region", "east")
    cli("cameras", "add", "WARD-3", "--org", "H0001", "--url", "rtsp://10.0.0.9/s1", "--role", "ward")
    cli("cameras", "add", "CNT-1", "--org", "H0001", "--url", "rtsp://10.0.0.8/s1", "--role", "settlement_counter")
    v = json.loads(cli("beds", "set", "H0001", "12", "--camera", "WARD-3", "--region", REGION, "--dept", "A03",
                       "--json").stdout)
    assert (v["bed"], v["dept_codg"], v["camera_id"]) == ("12", "A03", "WARD-3") and len(v["region"]) == 4
    cli("beds", "set", "H0001", "14", "--camera", "WARD-3", "--region", "0.3,0.4 0.5,0.4 0.5,0.8")
    rows = json.loads(cli("beds", "list", "--org", "H0001", "--json").stdout)
    assert [(r["dept_codg"], r["bed"]) for r in rows] == [("", "14"), ("A03", "12")]
    assert "A03\t12\tWARD-3\tno empty pictures" in cli("beds", "list").stdout
    # refused with the reason: a counter camera, a region outside the frame, a region of two points
    for args, why in ((["--camera", "CNT-1", "--region", REGION], "ward cameras"),
                      (["--camera", "WARD-3", "--region", "0.1,0.1 1.5,0.1 0.2,0.5"], "within the frame"),
                      (["--camera", "WARD-3", "--region", "0.1,0.1 0.2,0.2"], "3 to 32 points"),
                      (["--camera", "WARD-3", "--region", "a,b c,d e,f"], "x,y x,y")):
        bad = cli("beds", "set", "H0001", "15", *args, ok=False)
        assert bad.returncode == 2 and why in bad.stderr and bad.stdout == "", bad.stderr
    bad = cli("beds", "remove", "H0001", "99", ok=False)
    assert bad.returncode == 2 and "no bed '99'" in bad.stderr
    cli("beds", "remove", "H0001", "12", "--dept", "A03")
    assert [r["bed"] for r in json.loads(cli("beds", "list", "--json").stdout)] == ["14"]
    with session_scope(cli.sessions) as db:
        acts = [a.action for a in db.scalars(select(AuditEvent).where(AuditEvent.action.like("bed.%")))]
    assert acts == ["bed.set", "bed.set", "bed.remove"]


def test_ward_check_reports_admissions_without_a_bed_and_unknown_checks_without_footage(cli, tmp_path):
    cli("orgs", "add", "H0001", "--region", "east")
    cli("cameras", "add", "WARD-3", "--org", "H0001", "--url", "rtsp://10.0.0.9/s1", "--role", "ward")
    cli("beds", "set", "H0001", "12", "--camera", "WARD-3", "--region", REGION)
    recs = tmp_path / "adm.jsonl"
    rows = (
        {"infno": "2401", "fixmedins_code": "H0001", "mdtrt_id": "M1", "psn_no": "P1", "begntime": "2026-11-01 09:30:00",
         "adm_bed": "12", "adm_dept_codg": "A03"},
        {"infno": "2402", "fixmedins_code": "H0001", "mdtrt_id": "M1", "psn_no": "P1", "endtime": "2026-11-03 10:00:00"},
        {"infno": "2401", "fixmedins_code": "H0001", "mdtrt_id": "M2", "psn_no": "P2", "begntime": "2026-11-01 09:30:00",
         "adm_bed": "40"})
    recs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("claims", "import", str(recs))
    out = json.loads(cli("ward", "check", "--org", "H0001", "--mdtrt-id", "M1", "--json").stdout)
    # 11-01 12:30, 22:00; 11-02 08:00, 12:30, 22:00; 11-03 08:00 — nothing recorded: unknown, never absent
    assert out["checks"] == 6 and out["by_outcome"] == {"present": 0, "absent": 0, "unknown": 6} and out["flags"] == []
    with session_scope(cli.sessions) as db:
        assert {c.why for c in db.scalars(select(BedCheck))} == {"no_footage"}
        assert db.scalar(select(ClaimAdmission.adm_bed).where(ClaimAdmission.mdtrt_id == "M2")) == "40"
    text = cli("ward", "check", "--org", "H0001", "--mdtrt-id", "M2").stdout
    assert "no bed mapped for M2" in text
    bad = cli("ward", "check", "--org", "NOPE", ok=False)
    assert bad.returncode == 2 and "no organisation" in bad.stderr
