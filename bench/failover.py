"""Recorder failover time: several `dualcheck record` processes share simulated cameras; one is killed.

    .venv/bin/python bench/failover.py [--cameras 5] [--recorders 3] [--ttl 20] [--segment-seconds 10]

Everything real: GStreamer RTSP cameras (pre-encoded footage, keyframe every 2 s), a SeaweedFS with two
volume servers, a fresh PostgreSQL database (``DUALCHECK_TEST_PG`` admin URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test), recorder subprocesses with distinct ids and spools.
Prints, per camera moved by the kill: failover time (kill -> start of the first segment of the new
holder) and the hole in the index (last footage of the killed recorder -> first new footage), beside the
configured lease TTL. :class:`Cluster` is also the harness of tests/ingest/test_failover.py.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from camsim import SimulatedCamera, render, scenario_short  # noqa: E402
from storage.db import make_engine, make_sessionmaker, migrate, session_scope  # noqa: E402
from storage.models import CameraLease, Organisation, RecordingGap, Segment  # noqa: E402
from storage.seaweed import LocalSeaweed  # noqa: E402
from tests.ingest.conftest_recorder import wait_for  # noqa: E402

FOOTAGE = dict(width=640, height=360, fps=25, bitrate=800_000, keyint_s=2.0)


def ts(dt: datetime) -> float:
    return dt.astimezone(timezone.utc).timestamp()


class Cluster:
    """Cameras, a two-volume-server SeaweedFS, a PostgreSQL database and recorder processes."""

    def __init__(self, root: Path, db_url: str, n_cameras: int, ttl_s: float, segment_seconds: int = 10,
                 footage=None, testdata: Path | None = None):
        from tests.conftest import _port_base

        self.root, self.db_url, self.ttl_s = Path(root), db_url, ttl_s
        base, vol = _port_base(), _port_base()
        self.seaweed = LocalSeaweed(
            data_dir=self.root / "seaweedfs", s3_port=base, master_port=base + 1, volume_port=base + 2,
            filer_port=base + 3, access_key="fo" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24),
            extra_volume_ports=(vol,))
        if footage is None:
            from camsim.footage import default_cache_dir

            footage = render(scenario_short(), cache_dir=default_cache_dir(),
                             testdata=testdata or REPO.parent / "shared" / "testdata", **FOOTAGE)
        self.footage = footage
        self.n_cameras, self.segment_seconds = n_cameras, segment_seconds
        self.cameras: list[SimulatedCamera] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.engine = None

    def start(self) -> "Cluster":
        self.seaweed.up()
        migrate(self.db_url)
        self.engine = make_engine(self.db_url)
        self.sessions = make_sessionmaker(self.engine)
        with session_scope(self.sessions) as db:
            db.add(Organisation(id="org1", name="org1"))
        from ingest.cameras import add_camera

        for i in range(self.n_cameras):
            cam = SimulatedCamera(self.footage).start()
            self.cameras.append(cam)
            with session_scope(self.sessions) as db:
                add_camera(db, camera_id=f"cam-{i}", org_id="org1", name=f"cam-{i}", role="pharmacy_counter",
                           url=cam.url)
        return self

    def env(self, rid: str) -> dict:
        env = dict(os.environ)
        env.update({
            "DUALCHECK_DATA_DIR": str(self.root / "data"), "DUALCHECK_DATABASE_URL": self.db_url,
            "DUALCHECK_S3_ENDPOINT": self.seaweed.endpoint, "DUALCHECK_S3_ACCESS_KEY": self.seaweed.access_key,
            "DUALCHECK_S3_SECRET_KEY": self.seaweed.secret_key, "DUALCHECK_BUCKET_FOOTAGE": "footage-failover",
            "DUALCHECK_SPOOL_DIR": str(self.root / f"spool-{rid}"),  # one spool per recorder
            "DUALCHECK_SEGMENT_SECONDS": str(self.segment_seconds),
            "DUALCHECK_RECORD_LEASE_TTL_S": str(self.ttl_s), "DUALCHECK_RECORD_STATUS_INTERVAL_S": "1",
            "DUALCHECK_RECONNECT_INITIAL_S": "0.5", "DUALCHECK_RECONNECT_MAX_S": "2",
            "DUALCHECK_RTSP_TIMEOUT_S": "4", "DUALCHECK_UPLOAD_RETRY_MAX_S": "1",
            "DUALCHECK_RECORD_STOP_GRACE_S": "10",
        })
        return env

    def start_recorder(self, rid: str) -> subprocess.Popen:
        log = open(self.root / f"{rid}.log", "ab")
        p = subprocess.Popen([str(Path(sys.executable).with_name("dualcheck")), "record", "--id", rid],
                             env=self.env(rid), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[rid] = p
        return p

    def kill(self, rid: str) -> float:
        p = self.procs.pop(rid)
        at = time.time()
        p.send_signal(signal.SIGKILL)
        p.wait()
        return at

    # --- what the index says ----------------------------------------------------------------
    def holders(self) -> dict[str, str]:
        """camera -> recorder holding a valid lease (database clock)."""
        from ingest.leases import db_now

        with session_scope(self.sessions) as db:
            return dict(db.execute(select(CameraLease.camera_id, CameraLease.holder).where(
                CameraLease.holder.is_not(None), CameraLease.expires_at > db_now())).all())

    def segments(self) -> dict[str, list[Segment]]:
        out: dict[str, list[Segment]] = {f"cam-{i}": [] for i in range(self.n_cameras)}
        with session_scope(self.sessions) as db:
            for s in db.scalars(select(Segment).order_by(Segment.camera_id, Segment.start_at)):
                out[s.camera_id].append(s)
        return out

    def gaps(self, camera_id: str) -> list[RecordingGap]:
        with session_scope(self.sessions) as db:
            return list(db.scalars(select(RecordingGap).where(RecordingGap.camera_id == camera_id)
                                   .order_by(RecordingGap.start_at)))

    def close(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        for cam in self.cameras:
            cam.close()
        if self.engine is not None:
            self.engine.dispose()
        self.seaweed.down()


def failover(cl: Cluster, victim: str, moved: list[str], kill_at: float, timeout: float = 90) -> dict:
    """Wait for every moved camera's first new segment; per camera: failover_s (kill -> new footage
    start), hole_s (last indexed footage before the kill -> new footage start), new holder, gap reasons."""
    def firsts():
        segs = cl.segments()
        got = {}
        for c in moved:
            new = [s for s in segs[c] if s.recorder_id != victim and ts(s.start_at) > kill_at - 1]
            if not new:
                return None
            before = [s for s in segs[c] if ts(s.end_at) <= ts(new[0].start_at) and s is not new[0]]
            got[c] = (before[-1] if before else None, new[0])
        return got

    got = wait_for(firsts, timeout, what="new segments of the moved cameras")
    out = {}
    for c, (last, first) in got.items():
        out[c] = {"failover_s": ts(first.start_at) - kill_at, "first_indexed_s": ts(first.created_at) - kill_at,
                  "hole_s": ts(first.start_at) - ts(last.end_at) if last else None, "new_holder": first.recorder_id,
                  "hole": (last.end_at if last else None, first.start_at),
                  "gap_reasons": sorted({g.reason for g in cl.gaps(c)
                                         if last is None or g.end_at is None or g.end_at > last.end_at})}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=5)
    ap.add_argument("--recorders", type=int, default=3)
    ap.add_argument("--ttl", type=float, default=20.0)
    ap.add_argument("--segment-seconds", type=int, default=10)
    a = ap.parse_args()
    from tests.conftest import _create_pg_database, _drop_pg_database

    db_url = _create_pg_database()
    root = Path(tempfile.mkdtemp(prefix="dualcheck-failover-"))
    cl = Cluster(root, db_url, a.cameras, a.ttl, a.segment_seconds)
    try:
        cl.start()
        print(f"SeaweedFS volume servers: {cl.seaweed.volume_servers()}")
        for i in range(a.recorders):
            cl.start_recorder(f"rec-{i}")
        wait_for(lambda: len(cl.holders()) == a.cameras and all(cl.segments().values()), 90,
                 what="every camera recorded")
        held = cl.holders()
        victim = max(sorted(set(held.values())), key=lambda r: sum(1 for h in held.values() if h == r))
        moved = sorted(c for c, h in held.items() if h == victim)
        kill_at = cl.kill(victim)
        print(f"killed {victim} (held {moved}); lease TTL {a.ttl:.0f} s, renewed every {a.ttl / 3:.1f} s")
        res = failover(cl, victim, moved, kill_at)
        print(f"{'camera':8} {'new holder':10} {'failover s':>10} {'hole s':>7} {'indexed s':>9}  gap reasons")
        for c, r in res.items():
            hole = f"{r['hole_s']:.1f}" if r["hole_s"] is not None else "-"
            print(f"{c:8} {r['new_holder']:10} {r['failover_s']:10.1f} {hole:>7} {r['first_indexed_s']:9.1f}  "
                  f"{','.join(r['gap_reasons'])}")
    finally:
        cl.close()
        _drop_pg_database(db_url)


if __name__ == "__main__":
    main()
