"""The set-up shared by the replay benchmarks (bench/replay.py, bench/transcode.py): a SeaweedFS and a
SQLite index of their own, simulator footage stored as recorded segments (PyAV remux, as the recorder
does), the API under uvicorn on localhost, and timed HTTP GETs and ffmpeg baselines."""
from __future__ import annotations

import contextlib
import http.client
import secrets
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)  # the start of the stored footage


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed_get(port, path, headers):
    """(time to first byte, total, bytes) of one GET; fails unless 200/206."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    first = r.read(1)
    ttfb = time.perf_counter() - t0
    n = len(first)
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        n += len(b)
    total = time.perf_counter() - t0
    c.close()
    assert r.status in (200, 206), (r.status, first)
    return ttfb, total, n


def ffmpeg_to_pipe(args: list[str]) -> tuple[float, float]:
    """(time to first byte on stdout, total) of ``ffmpeg -v error <args> pipe:1``."""
    t = time.perf_counter()
    p = subprocess.Popen(["ffmpeg", "-v", "error", *args, "pipe:1"], stdout=subprocess.PIPE)
    p.stdout.read(1)
    ttfb = time.perf_counter() - t
    p.stdout.read()
    p.wait()
    return ttfb, time.perf_counter() - t


def q(t: datetime) -> str:
    return t.isoformat().replace("+", "%2B")


@dataclass
class ReplayBench:
    tmp: Path
    settings: object
    rt: object
    port: int
    headers: dict
    made: list  # make_segments' results (size per segment)

    def segments(self, a: datetime, b: datetime, camera_id: str = "CAM") -> list:
        from sqlalchemy import select

        from storage.db import session_scope
        from storage.models import Segment

        with session_scope(self.rt.sessions) as db:
            return list(db.scalars(select(Segment).where(Segment.camera_id == camera_id, Segment.start_at < b,
                                                         Segment.end_at > a).order_by(Segment.start_at)))

    def concat_list(self, a: datetime, b: datetime) -> Path:
        """An ffmpeg concat list of the presigned URLs of the segments over [a, b)."""
        lst = self.tmp / "list.txt"
        lst.write_text("".join(f"file '{self.rt.store.presigned_get(self.settings.bucket_footage, x.object_key)}'\n"
                               for x in self.segments(a, b)))
        return lst


@contextlib.contextmanager
def replay_bench(footage, total_s: float = 180, segment_s: float = 60, **settings):
    """Footage of camera ``CAM`` (org ``ORG``) from :data:`T0` for ``total_s`` in ``segment_s`` segments,
    and the API serving it; an admin key in ``headers``."""
    import uvicorn

    from api.keys import add_organisation, add_service_key
    from dualcheck.app import create_app
    from ingest.cameras import add_camera
    from kernel.settings import Settings
    from storage.db import migrate, session_scope
    from storage.seaweed import LocalSeaweed
    from tests.conftest import _port_base, free_port
    from tests.replay.segmenter import make_segments

    tmp = Path(tempfile.mkdtemp(prefix="dualcheck-bench-"))
    base = _port_base()
    sw = LocalSeaweed(data_dir=tmp / "sw", s3_port=base, master_port=base + 1, volume_port=base + 2,
                      filer_port=base + 3, access_key="bench" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24))
    sw.up()
    try:
        s = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'bench.db'}", s3_endpoint=sw.endpoint,
                     s3_access_key=sw.access_key, s3_secret_key=sw.secret_key, bucket_footage="bench-footage",
                     bucket_biometrics="bench-bio", rate_limit_user="", **settings)  # measures replay, not the limit
        migrate(s.effective_database_url)
        app = create_app(s, preload_models=False)
        rt = app.state.runtime
        rt.store.ensure_bucket(s.bucket_footage)
        with session_scope(rt.sessions) as db:
            add_organisation(db, "ORG", "Org")
            db.flush()
            key = add_service_key(db, "admin", "bench")
            add_camera(db, camera_id="CAM", org_id="ORG", name="c", role="settlement_counter", url="rtsp://h/s")
            db.flush()
            made = make_segments(db, rt.store, s.bucket_footage, footage, org_id="ORG", camera_id="CAM", start=T0,
                                 total_s=total_s, segment_s=segment_s, workdir=tmp)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield ReplayBench(tmp, s, rt, port, {"Authorization": f"Bearer {key}"}, made)
        finally:
            server.should_exit = True
            th.join(10)
            rt.close()
    finally:
        sw.down()


__all__ = ["T0", "ReplayBench", "replay_bench", "timed_get", "ffmpeg_to_pipe", "pct", "q", "timedelta"]
