"""PostgreSQL bytes per row (table + TOAST + indexes) of the tables that grow with cameras, face-pay
calls and settlements: the input of docs/capacity.md.

    .venv/bin/python bench/pgsize.py [--rows 20000]

Makes a scratch database (``DUALCHECK_TEST_PG`` admin URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test) at the current migration, fills each table with
``--rows`` rows shaped like the ones the product writes (keys, hashes, 128-d SFace embeddings, the
JSON of a check), VACUUM ANALYZEs and prints pg_relation_size / pg_total_relation_size per row, then
drops the database.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import (
    AuditEvent,
    Camera,
    FaceEvidence,
    FaceTemplate,
    InsuredPerson,
    Organisation,
    Segment,
    Settlement,
    SettlementCheck,
    Terminal,
    Verification,
    new_id,
)
from tests.conftest import _create_pg_database, _drop_pg_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _emb() -> bytes:
    v = np.random.default_rng().standard_normal(128).astype(np.float32)
    return (v / np.linalg.norm(v)).tobytes()


def fill(sessions, n: int) -> None:
    h = lambda: secrets.token_hex(32)
    with session_scope(sessions) as db:
        db.add(Organisation(id="ORG-0001", name="a clinic"))
        db.flush()
        db.add(Camera(id="ORG-0001-C1", org_id="ORG-0001", name="counter", role="settlement_counter",
                      rtsp_url="rtsp://10.0.0.1:554/Streaming/Channels/101"))
        db.add(Terminal(id="ORG-0001-T1", org_id="ORG-0001", counter="counter-1"))
        db.flush()
    step = 5000
    for i0 in range(0, n, step):
        with session_scope(sessions) as db:
            rows, later = [], []  # later: rows whose foreign keys point into rows
            for i in range(i0, min(n, i0 + step)):
                t = T0 + timedelta(minutes=i)
                rows.append(Segment(camera_id="ORG-0001-C1", org_id="ORG-0001", start_at=t,
                                    end_at=t + timedelta(seconds=60.04), duration_s=60.04, bytes=7_500_000,
                                    sha256=h(), recorder_id="rec-a-1234",
                                    object_key=f"ORG-0001/ORG-0001-C1/{t:%Y/%m/%d/%H}/{t:%Y%m%dT%H%M%S}.000Z.mp4"))
                ins = f"P{i:09d}"
                rows.append(InsuredPerson(id=ins))
                later.append(FaceTemplate(insured_id=ins, photo_key=f"photos/{ins}/{h()}.jpg", photo_sha256=h(),
                                         model="yunet_sface:0123456789abcdef", dim=128, embedding=_emb(),
                                         quality={"det_score": 0.93, "face_px": 212, "sharpness": 41.2,
                                                  "yaw": 0.05, "roll_deg": 2.1}, source="api"))
                vid = new_id()
                rows.append(Verification(id=vid, created_at=t, org_id="ORG-0001", terminal_id="ORG-0001-T1",
                                         insured_id=ins, settlement_ref=f"S{i:012d}", decision="match",
                                         score=0.7731, threshold=0.363, model="yunet_sface:0123456789abcdef",
                                         quality={"det_score": 0.93, "face_px": 212, "sharpness": 41.2,
                                                  "yaw": 0.05, "roll_deg": 2.1, "ok": True, "problems": []},
                                         faces_found=1, capture_key=f"captures/ORG-0001/{t:%Y/%m/%d}/{vid}.jpg",
                                         capture_sha256=h(), capture_expires_at=t + timedelta(days=183),
                                         latency_ms=48.2))
                rows.append(AuditEvent(at=t, actor="terminal:ORG-0001-T1", action="verify", outcome="match",
                                       org_id="ORG-0001", subject=f"verification:{vid}", request_id=new_id(),
                                       detail={"terminal_id": "ORG-0001-T1", "insured_id": ins,
                                               "settlement_ref": f"S{i:012d}"}))
                sid = f"S{i:012d}"
                rows.append(Settlement(id=sid, insured_id=ins, org_id="ORG-0001", counter="counter-1",
                                       terminal_id="ORG-0001-T1", settled_at=t, amount="128.50", type="outpatient",
                                       verification_id=vid, content_sha256=h(), imported_by="key:exchange",
                                       status="done", attempts=1, checked_at=t, outcome="verified_present"))
                cid = new_id()
                rows.append(SettlementCheck(
                    id=cid, settlement_id=sid, org_id="ORG-0001", outcome="verified_present",
                    reason="the insured person is seen (similarity 0.702 ≥ 0.363)", window_start=t - timedelta(minutes=2),
                    window_end=t + timedelta(seconds=30),
                    cameras=[{"camera_id": "ORG-0001-C1", "role": "settlement_counter", "start": t.isoformat(),
                              "end": t.isoformat(), "coverage": 1.0}],
                    summary={"frames": 75, "frames_with_people": 40, "people_tracked": 1, "faces_embedded": 3,
                             "best_insured_score": 0.702, "best_capture_score": 0.744},
                    best_insured_score=0.702, capture_score=0.744, model={"pack": "yunet_sface", "version": "x"},
                    rule_version="2026.1", duration_ms=392.0))
                later.append(FaceEvidence(check_id=cid, settlement_id=sid, org_id="ORG-0001", camera_id="ORG-0001-C1",
                                         seen_at=t, track=1, box=[312.5, 88.0, 64.0, 80.5],
                                         crop_key=f"evidence/ORG-0001/{t:%Y/%m/%d}/{cid}/t1.jpg", crop_sha256=h(),
                                         insured_score=0.702, capture_score=0.744, is_insured=True,
                                         quality={"det_score": 0.88, "face_px": 64, "sharpness": 22.0},
                                         model="yunet_sface:0123456789abcdef", dim=128, embedding=_emb()))
            db.add_all(rows)
            db.flush()
            db.add_all(later)


TABLES = ["segments", "verifications", "audit_events", "face_templates", "settlements", "settlement_checks",
          "face_evidence"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    args = ap.parse_args()
    url = _create_pg_database()
    try:
        migrate(url)
        engine = make_engine(url)
        fill(make_sessionmaker(engine), args.rows)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM ANALYZE"))
            print(f"PostgreSQL {c.scalar(sa.text('SHOW server_version'))}; {args.rows} rows per table\n")
            print(f"{'table':<18} {'rows':>7} {'heap B/row':>10} {'index B/row':>11} {'total B/row':>11}")
            for t in TABLES:
                n = c.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                heap = c.scalar(sa.text(f"SELECT pg_table_size('{t}')"))
                idx = c.scalar(sa.text(f"SELECT pg_indexes_size('{t}')"))
                tot = c.scalar(sa.text(f"SELECT pg_total_relation_size('{t}')"))
                print(f"{t:<18} {n:>7} {heap / n:>10.0f} {idx / n:>11.0f} {tot / n:>11.0f}")
        engine.dispose()
    finally:
        _drop_pg_database(url)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
