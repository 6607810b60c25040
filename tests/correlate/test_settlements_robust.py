"""`dualcheck settlements import` on hostile files (issue 17): edge dates, oversized CSV fields, huge
JSON numbers are each one row's error, the good rows imported; a file that is not UTF-8 is refused
whole (exit 2, no traceback), nothing imported; the audit line names the refused rows."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import select

from correlate.settlements import audit_import, import_file
from storage.db import session_scope
from storage.models import AuditEvent, Settlement
from tests.correlate import scenarios as sc

HEADER = "settlement_id,insured_id,org_id,terminal_id,counter,settled_at,amount,type\n"


def _row(sid: str, settled_at: str = "2026-03-02T09:00:00+08:00", amount: str = "12.00") -> str:
    return f"{sid},P-1,CLINIC-A,CLINIC-A-T1,,{settled_at},{amount},outpatient\n"


def test_edge_dates_and_huge_fields_are_per_row_errors(world_sqlite, tmp_path):
    w = world_sqlite
    csv_path = tmp_path / "edges.csv"
    csv_path.write_text(HEADER + _row("E-1") + _row("E-2", "0001-01-01T00:00:00+14:00")
                        + _row("E-3", "9999-12-31T23:59:59-14:00") + _row("E-4", "1969-12-31T23:59:59Z")
                        + _row("E-5", amount="9" * 200_000) + _row("E-6"))
    # batch=2: the bad date shares its batch with a good row, which must still be imported
    result = import_file(w.rt.sessions, csv_path, actor="test", batch=2)
    assert sorted(result.created) == ["E-1", "E-6"]
    errors = {e.line: e.reason for e in result.errors}
    assert set(errors) == {3, 4, 5, 6}
    assert "outside the supported range" in errors[3] and "outside the supported range" in errors[5]
    assert "field larger than field limit" in errors[6]

    jl = tmp_path / "edges.jsonl"
    good = sc.settlement("J-1", "P-1", "CLINIC-A", sc.at(5), counter="counter-1")
    jl.write_text(json.dumps(good) + "\n"
                  + '{"settlement_id": "J-2", "amount": ' + "7" * 5000 + "}\n"
                  + "[" * 100_000 + "\n"
                  + json.dumps({**good, "settlement_id": "J-4", "settled_at": "0001-01-01T00:00:00+14:00"}) + "\n"
                  + json.dumps({**good, "settlement_id": "J-5"}) + "\n")
    result = import_file(w.rt.sessions, jl, actor="test", batch=2)
    assert sorted(result.created) == ["J-1", "J-5"]
    assert [e.line for e in result.errors] == [2, 3, 4]
    with session_scope(w.rt.sessions) as db:
        audit_import(db, result, actor="test", source="file:edges.jsonl")
    with session_scope(w.rt.sessions) as db:
        line = db.scalars(select(AuditEvent).where(AuditEvent.action == "settlements.import")
                          .order_by(AuditEvent.id.desc())).first()
        assert [e["line"] for e in line.detail["errors"]] == [2, 3, 4]


def test_a_file_not_in_utf8_is_refused_whole_with_exit_2(world_sqlite, tmp_path):
    w = world_sqlite
    latin = tmp_path / "latin1.csv"
    latin.write_bytes((HEADER + _row("L-1") + "L-2,P-2,CLINIC-A,,Caf\u00e9 1,2026-03-02T09:00:00Z,1.00,pharmacy\n")
                      .encode("latin-1"))
    env = {**os.environ, "DUALCHECK_DATABASE_URL": w.settings.effective_database_url,
           "DUALCHECK_DATA_DIR": str(w.settings.data_dir), "DUALCHECK_S3_ENDPOINT": w.settings.s3_endpoint,
           "DUALCHECK_S3_ACCESS_KEY": w.settings.s3_access_key,
           "DUALCHECK_S3_SECRET_KEY": w.settings.s3_secret_key.get_secret_value(),
           "DUALCHECK_MODELS_DIR": str(w.settings.effective_models_dir)}
    r = subprocess.run([sys.executable, "-c", "from dualcheck.cli import main; main()", "settlements", "import",
                        str(latin)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "not UTF-8 (line 3)" in r.stderr and "Traceback" not in r.stderr
    with session_scope(w.rt.sessions) as db:
        assert db.get(Settlement, "L-1") is None  # nothing of the file, not even the good first row
        line = db.scalars(select(AuditEvent).where(AuditEvent.action == "settlements.import")).one()
        assert line.outcome == "refused:file" and "UTF-8" in line.detail["reason"]
