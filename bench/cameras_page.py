"""How long the cameras page takes with many cameras recording all day (issue 14: cameras at 300).

    .venv/bin/python bench/cameras_page.py [--cameras 300] [--segment-seconds 60] [--runs 5]

A fresh SQLite index with N cameras, each with segments of S seconds from local midnight to now
(one per camera at a time: the index a day of recording leaves), all online. Times GET /cameras (the
first page of 50 rows; the counts and filters need every camera's day) through the real app, beside
a baseline in the same process: the same page over a tenth of the cameras. Prints the medians, the
cost per camera and the ratio (10 means the page cost grows in proportion to the cameras).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from api.keys import add_organisation  # noqa: E402
from api.web.auth import add_user  # noqa: E402
from dualcheck.app import create_app  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from storage.db import migrate, session_scope  # noqa: E402
from storage.models import Camera, CameraStatus, Segment  # noqa: E402


def build(tmp: Path, n: int, seg_s: int) -> TestClient:
    s = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'bench.db'}", s3_endpoint="127.0.0.1:1",
                 s3_access_key="x", s3_secret_key="y" * 20, camera_offline_after_s=3600)
    migrate(s.effective_database_url)
    app = create_app(s, preload_models=False)
    now = datetime.now(timezone.utc)
    tz = ZoneInfo(s.web_timezone)
    day0 = datetime.combine(now.astimezone(tz).date(), datetime.min.time(), tzinfo=tz).astimezone(timezone.utc)
    with session_scope(app.state.runtime.sessions) as db:
        add_organisation(db, "ORG", "机构", region="r")
        add_user(db, "admin", "correct-horse-42", "admin", display_name="管理员")
        db.flush()
        for i in range(n):
            cid = f"C{i:04d}"
            db.add(Camera(id=cid, org_id="ORG", name=cid, role="settlement_counter", rtsp_url="rtsp://h/s",
                          covers=[], zones=[], created_at=day0 - timedelta(days=30)))
            db.add(CameraStatus(camera_id=cid, state="online", last_packet_at=now, last_segment_end=now,
                                updated_at=now))
        db.flush()
        rows, t = [], day0
        while t + timedelta(seconds=seg_s) < now:
            rows.append(t)
            t += timedelta(seconds=seg_s)
        for i in range(n):
            cid = f"C{i:04d}"
            db.execute(insert(Segment), [{"camera_id": cid, "org_id": "ORG", "start_at": a,
                                          "end_at": a + timedelta(seconds=seg_s), "duration_s": seg_s, "bytes": 1,
                                          "sha256": "0" * 64, "object_key": f"{cid}/{k}", "recorder_id": "r"}
                                         for k, a in enumerate(rows)])
    c = TestClient(app)  # not entered: no lifespan, so no object store is needed (the page reads the index only)
    r = c.post("/login", data={"username": "admin", "password": "correct-horse-42", "next": "/"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    print(f"{n} cameras x {len(rows)} segments of {seg_s} s today", flush=True)
    return c


def timed(c: TestClient, runs: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(runs):
        t0, p0 = time.perf_counter(), time.process_time()
        r = c.get("/cameras")
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - p0)
        assert r.status_code == 200 and "data-camera=" in r.text
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=300)
    ap.add_argument("--segment-seconds", type=int, default=60)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    base_n = max(1, a.cameras // 10)
    out = {}
    for n in (base_n, a.cameras):
        with tempfile.TemporaryDirectory() as d:
            c = build(Path(d), n, a.segment_seconds)
            out[n] = timed(c, a.runs)
            c.app.state.runtime.close()
    (bw, bc), (w, cpu) = out[base_n], out[a.cameras]
    print(f"baseline {base_n} cameras: GET /cameras median {bw * 1000:.0f} ms wall, {bc * 1000:.0f} ms CPU "
          f"({bc / base_n * 1000:.1f} ms CPU per camera)")
    print(f"{a.cameras} cameras: GET /cameras median {w * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
          f"({cpu / a.cameras * 1000:.1f} ms CPU per camera)")
    print(f"ratio {a.cameras}/{base_n} cameras: wall x{w / bw:.1f}, CPU x{cpu / bc:.1f} (x{a.cameras / base_n:.0f} = linear)")


if __name__ == "__main__":
    main()
