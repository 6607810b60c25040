"""Helpers and fixtures for the recorder tests (imported by tests/ingest/test_recorder*.py).

Everything is real: the GStreamer RTSP simulator, SeaweedFS, SQLite/PostgreSQL. Segments are 10 s
(the shortest allowed) and footage is 640x360 with a keyframe every 2 s, so a test runs in ~30 s.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import av
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from ingest.credentials import new_key
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import CameraStatus, Organisation, RecordingGap, Segment

FAST = dict(
    segment_seconds=10, record_poll_s=1.0, record_status_interval_s=0.5, reconnect_initial_s=0.5,
    reconnect_max_s=2.0, rtsp_timeout_s=4.0, upload_retry_max_s=1.0, record_stop_grace_s=20.0,
)


def process_env(settings, **extra) -> dict:
    """The environment of a `dualcheck record` subprocess pointed at the same services as ``settings``."""
    env = dict(os.environ)
    for name in ("data_dir", "database_url", "s3_endpoint", "s3_access_key", "bucket_footage", "spool_dir",
                 "segment_seconds", "record_poll_s", "record_status_interval_s", "reconnect_initial_s",
                 "reconnect_max_s", "rtsp_timeout_s", "upload_retry_max_s"):
        env[f"DUALCHECK_{name.upper()}"] = str(getattr(settings, name))
    env["DUALCHECK_S3_SECRET_KEY"] = settings.s3_secret_key.get_secret_value()
    if settings.camera_credentials_key is not None:
        env["DUALCHECK_CAMERA_CREDENTIALS_KEY"] = settings.camera_credentials_key.get_secret_value()
    env.update({f"DUALCHECK_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def wait_for(cond, timeout: float, step: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@dataclass
class Env:
    settings: object
    sessions: object

    def add_camera(self, camera_id: str, url: str, org: str = "org1", **kw) -> None:
        from ingest.cameras import add_camera
        from ingest.credentials import CredentialBox

        with session_scope(self.sessions) as db:
            if db.get(Organisation, org) is None:
                db.add(Organisation(id=org, name=org))
                db.flush()
            # sealed with the key the recorders of this environment use (settings, or data_dir's key file)
            add_camera(db, camera_id=camera_id, org_id=org, name=camera_id, role="pharmacy_counter", url=url,
                       box=CredentialBox.from_settings(self.settings), **kw)

    def remove_camera(self, camera_id: str) -> None:
        from ingest.cameras import remove_camera

        with session_scope(self.sessions) as db:
            remove_camera(db, camera_id)

    def segments(self, camera_id: str | None = None) -> list[Segment]:
        with session_scope(self.sessions) as db:
            q = select(Segment).order_by(Segment.camera_id, Segment.start_at)
            if camera_id:
                q = q.where(Segment.camera_id == camera_id)
            return list(db.scalars(q))

    def gaps(self, camera_id: str) -> list[RecordingGap]:
        with session_scope(self.sessions) as db:
            return list(db.scalars(select(RecordingGap).where(RecordingGap.camera_id == camera_id)
                                   .order_by(RecordingGap.start_at)))

    def status(self, camera_id: str) -> CameraStatus | None:
        with session_scope(self.sessions) as db:
            return db.get(CameraStatus, camera_id)


@pytest.fixture
def rec_env(make_settings, tmp_path):
    """``rec_env(db_url, **setting_overrides) -> Env`` with a migrated database."""
    made = []

    def _make(db_url: str, **overrides) -> Env:
        values = dict(FAST, spool_dir=tmp_path / "spool")
        if not db_url.startswith("sqlite"):  # a region's index: its processes share the sealing key
            values["camera_credentials_key"] = SecretStr(new_key())
        values.update(overrides)
        s = make_settings(db_url, **values)
        migrate(s.effective_database_url)
        engine = make_engine(s.effective_database_url)
        made.append(engine)
        return Env(s, make_sessionmaker(engine))

    yield _make
    for e in made:
        e.dispose()


def open_segment(store, bucket: str, seg: Segment) -> dict:
    """Download a segment, check its SHA-256 and read it with PyAV: frames, keyframe, pts."""
    data = store.get_bytes(bucket, seg.object_key)
    assert hashlib.sha256(data).hexdigest() == seg.sha256
    assert len(data) == seg.bytes
    with av.open(io.BytesIO(data)) as c:
        st = c.streams.video[0]
        pts, keys, decoded = [], [], 0
        for pkt in c.demux(st):
            if pkt.size == 0:
                continue
            pts.append(pkt.pts)
            keys.append(pkt.is_keyframe)
            for _ in pkt.decode():
                decoded += 1
        return {"pts": pts, "keys": keys, "decoded": decoded, "time_base": st.time_base,
                "width": st.codec_context.width, "end_s": float((max(pts) + 3600) * st.time_base) if pts else 0,
                "data": data}


def footage_frame_hashes(footage) -> dict[str, int]:
    """sha1 of every decoded frame of the simulator's footage -> frame number (the remux keeps the
    encoded bits, so a recorded frame decodes to exactly the same pixels)."""
    idx = footage.frame_index()
    data = footage.h264_path.read_bytes()
    ctx = av.CodecContext.create(footage.decoder, "r")
    out: dict[str, int] = {}
    n = 0
    for o, s, _ in idx:
        for fr in ctx.decode(av.Packet(data[o:o + s])):
            out.setdefault(hashlib.sha1(fr.to_ndarray(format="bgr24").tobytes()).hexdigest(), n)
            n += 1
    for fr in ctx.decode(None):
        out.setdefault(hashlib.sha1(fr.to_ndarray(format="bgr24").tobytes()).hexdigest(), n)
        n += 1
    return out


def placement_errors(got: dict, seg: Segment, cam, footage, hashes: dict[str, int], every: int = 50) -> list[tuple]:
    """(frame number, seconds off) of every ``every``-th frame of a segment (``open_segment``'s answer):
    where the recorder put it (``start_at + pts * time_base``) against the simulator's truth of when
    the camera showed it."""
    out = []
    loop = footage.duration_s
    with av.open(io.BytesIO(got["data"])) as c:
        for k, frame in enumerate(c.decode(video=0)):
            if k % every:
                continue
            n = hashes[hashlib.sha1(frame.to_ndarray(format="bgr24").tobytes()).hexdigest()]
            wall = ts(seg.start_at) + float(frame.pts * frame.time_base)
            out.append((n, (n / footage.fps - cam.footage_time(wall) + loop / 2) % loop - loop / 2))
    return out


def ts(dt: datetime) -> float:
    return dt.astimezone(timezone.utc).timestamp()


def assert_back_to_back(segs: list[Segment]) -> None:
    for a, b in zip(segs, segs[1:]):
        assert b.start_at == a.end_at, f"segment {b.object_key} starts {b.start_at}, previous ended {a.end_at}"


def coverage_until(segs: list[Segment]) -> float:
    return max(ts(s.end_at) for s in segs) if segs else 0.0


def spool_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".lock"]


def segment_frames(store, bucket: str, seg: Segment, hashes: dict[str, int]) -> list[int]:
    """Footage frame numbers of a segment's frames in display order (``hashes``: footage_frame_hashes)."""
    data = store.get_bytes(bucket, seg.object_key)
    assert hashlib.sha256(data).hexdigest() == seg.sha256
    with av.open(io.BytesIO(data)) as c:
        return [hashes[hashlib.sha1(fr.to_ndarray(format="bgr24").tobytes()).hexdigest()]
                for fr in c.decode(c.streams.video[0])]


def unwrap_frames(frames: list[int], n: int) -> list[int]:
    """Footage frame numbers (modulo the loop of ``n`` frames) as one increasing count."""
    seq = frames[:1]
    for a, b in zip(frames, frames[1:]):
        seq.append(seq[-1] + (b - a) % n)
    return seq


def viewer_starts(cam) -> list[int]:
    """Global frame numbers (since the camera's epoch) at which the simulator started a viewer (its log)."""
    return [int(m) for m in re.findall(r"media starts at frame (\d+)", cam.log_tail(200_000))]


def global_frame(frame: int, at: float, cam, fps: float, n: int) -> int:
    """The global frame number of footage frame ``frame`` shown near wall time ``at``."""
    approx = round((at - cam.epoch) * fps)
    base = approx - (approx % n) + frame
    return min((base - n, base, base + n), key=lambda g: abs(g - approx))


def connection_runs(segs: list[Segment]) -> list[list[Segment]]:
    """Segments grouped into runs of back-to-back ones."""
    runs: list[list[Segment]] = [[]]
    for seg in segs:
        if runs[-1] and seg.start_at != runs[-1][-1].end_at:
            runs.append([])
        runs[-1].append(seg)
    return runs
