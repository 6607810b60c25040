"""Settlements in: per-row reasons, idempotence, scoping; the CLI import of CSV and JSON Lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import func, select

from storage.db import session_scope
from storage.models import Settlement
from tests.correlate import scenarios as sc

GOOD = sc.settlement("S-1", "P-1", "CLINIC-A", sc.at(10), terminal="CLINIC-A-T1")


def test_api_reports_every_bad_row_and_is_idempotent(world_sqlite):
    w = world_sqlite
    bad = [
        {**GOOD, "settlement_id": "S-2", "settled_at": "2026-03-02 01:00:00"},  # no zone
        {**GOOD, "settlement_id": "S-3", "amount": "-3"},
        {**GOOD, "settlement_id": "S-4", "type": "dental"},
        {**GOOD, "settlement_id": "S-5", "org_id": "NOPE"},
        {**GOOD, "settlement_id": "S-6", "terminal_id": "PHARM-B-T1"},  # another org's terminal
        {k: v for k, v in GOOD.items() if k != "insured_id"} | {"settlement_id": "S-7"},
        {**GOOD, "settlement_id": "S-8", "colour": "red"},
        {**GOOD, "settlement_id": "S-9", "settled_at": "2099-01-01T00:00:00Z"},
        {**GOOD, "settlement_id": "S-10", "verification_id": "nope"},
        "not an object",
    ]
    r = w.post([GOOD] + bad)
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["imported"] == 1 and body["refused"] == len(bad) and body["created"] == ["S-1"]
    reasons = {e["index"]: e["reason"] for e in body["errors"]}
    assert "time zone" in reasons[1] and "amount" in reasons[2] and "type must be" in reasons[3]
    assert "unknown organisation" in reasons[4] and "another organisation" in reasons[5]
    assert "missing insured_id" in reasons[6] and "unknown field" in reasons[7] and "future" in reasons[8]
    assert "verification_id" in reasons[9] and "object" in reasons[10]
    # the same batch again: nothing new, nothing duplicated
    again = w.post([GOOD])
    assert again.status_code == 200 and again.json()["unchanged"] == ["S-1"]
    # same id, other content: refused, stored row unchanged
    r = w.post([{**GOOD, "amount": "99.00"}])
    assert r.status_code == 422 and "conflict" in r.json()["error"]["errors"][0]["reason"]
    with session_scope(w.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Settlement)) == 1
        assert db.get(Settlement, "S-1").amount == "35.50"
    # roles: terminals and institutions do not post settlements; empty and non-list bodies are refused
    assert w.post([GOOD], who="terminal").status_code == 403
    assert w.post([GOOD], who="clinic_a").status_code == 403
    assert w.post([]).status_code == 422
    r = w.client.post("/v1/settlements", json={"settlement_id": "x"}, headers=w.h("ingest"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_cli_imports_csv_and_jsonl_with_line_numbers(world_sqlite, tmp_path):
    w = world_sqlite
    csv_path = tmp_path / "batch.csv"
    csv_path.write_text(
        "settlement_id,insured_id,org_id,terminal_id,counter,settled_at,amount,type\n"
        "C-1,P-1,CLINIC-A,CLINIC-A-T1,,2026-03-02T09:00:00+08:00,12.00,outpatient\n"
        "C-2,P-2,CLINIC-A,,counter-1,2026-03-02T09:05:00+08:00,abc,outpatient\n"
        "\n"
        "C-3,P-3,CLINIC-A,,counter-1,2026-03-02T09:06:00+08:00,7.5,pharmacy\n"
        "C-4,P-4,CLINIC-A\n")
    jl = tmp_path / "batch.jsonl"
    jl.write_text(json.dumps(sc.settlement("J-1", "P-1", "CLINIC-A", sc.at(5), counter="counter-1")) + "\n"
                  + "{not json\n" + json.dumps({**GOOD, "settlement_id": "J-3", "type": "x"}) + "\n")
    env = {**os.environ, "DUALCHECK_DATABASE_URL": w.settings.effective_database_url,
           "DUALCHECK_DATA_DIR": str(w.settings.data_dir), "DUALCHECK_S3_ENDPOINT": w.settings.s3_endpoint,
           "DUALCHECK_S3_ACCESS_KEY": w.settings.s3_access_key,
           "DUALCHECK_S3_SECRET_KEY": w.settings.s3_secret_key.get_secret_value(),
           "DUALCHECK_MODELS_DIR": str(w.settings.effective_models_dir),
           "DUALCHECK_BUCKET_FOOTAGE": w.settings.bucket_footage,
           "DUALCHECK_BUCKET_BIOMETRICS": w.settings.bucket_biometrics}
    def run(*args):
        code = "from dualcheck.cli import main; main()"
        return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                              timeout=120)

    r = run("settlements", "import", str(csv_path))
    assert r.returncode == 3, r.stderr
    assert "line 3: amount is not a number" in r.stderr and "line 6: 3 fields where the header has 8" in r.stderr
    assert "4 rows: 2 imported, 0 unchanged (already imported), 2 refused" in r.stdout, r.stdout
    r = run("settlements", "import", str(jl), "--json")
    rep = json.loads(r.stdout)
    assert rep["imported"] == 1 and [e["line"] for e in rep["errors"]] == [2, 3]
    assert run("settlements", "import", str(csv_path)).stdout.count("2 unchanged") == 1
    with session_scope(w.rt.sessions) as db:
        got = db.get(Settlement, "C-1")
        assert got.settled_at == sc.at(0).replace(hour=1) and got.status == "pending"
    # the checks, in the foreground: no footage was ever recorded for CAM-A -> footage_missing flags
    r = run("correlate", "run-pending", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"done": 3}
    r = run("correlate", "stats", "--json")
    rows = {x["rule"]: x for x in json.loads(r.stdout)["by_rule"]}
    assert rows["footage_missing"]["flagged"] == 3 and rows["repeated_footage_missing"]["flagged"] == 1
