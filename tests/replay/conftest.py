"""Replay fixtures: real segments (PyAV remux of simulator footage) in a real SeaweedFS, indexed in a
fresh database, and an API over them.

The standard camera ``CAM-1`` of ``CLINIC-A`` has 10 s segments from ``T0`` for 180 s with one
recording gap at [T0+60 s, T0+80 s) (footage keyframes every 2 s, 320x180, 25 fps).
"""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from camsim.footage import render, scenario_short
from tests.replay.segmenter import make_segments

T0 = datetime(2025, 3, 1, 2, 0, 0, tzinfo=timezone.utc)
GAP = (60.0, 20.0)
TOTAL_S = 180.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def q(t: datetime) -> str:
    """A time for a query string (the '+' of an offset must be escaped)."""
    return t.isoformat().replace("+", "%2B")


@pytest.fixture(scope="session")
def small_footage(testdata):
    from camsim.footage import default_cache_dir

    return render(scenario_short(), width=320, height=180, fps=25, bitrate=300_000, keyint_s=2.0,
                  cache_dir=default_cache_dir(), testdata=testdata)


class ReplayEnv:
    def __init__(self, env, made):
        self.env, self.made = env, made
        self.client, self.rt, self.settings = env.client, env.rt, env.settings

    def h(self, who: str) -> dict:
        return self.env.h(who)


@pytest.fixture
def replay(tmp_path, make_settings, small_footage):
    from api.keys import add_service_key
    from ingest.cameras import add_camera
    from storage.db import session_scope
    from tests.api.conftest import start_env

    env = start_env(make_settings(f"sqlite:///{tmp_path / 'replay.db'}"), None)
    rt = env.rt
    rt.store.ensure_bucket(env.settings.bucket_footage)
    with session_scope(rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        add_camera(db, camera_id="CAM-1", org_id="CLINIC-A", name="counter 1", role="settlement_counter",
                   url="rtsp://user:secret@10.0.0.5:554/stream1", box=rt.credentials)
        add_camera(db, camera_id="CAM-EMPTY", org_id="CLINIC-A", name="never recorded", role="entrance",
                   url="rtsp://10.0.0.6/stream1")
        db.flush()
        made = make_segments(db, rt.store, env.settings.bucket_footage, small_footage, org_id="CLINIC-A",
                             camera_id="CAM-1", start=T0, total_s=TOTAL_S, segment_s=10, gaps=[GAP],
                             workdir=tmp_path)
    r = ReplayEnv(env, made)
    yield r
    env.client.__exit__(None, None, None)
    rt.close()


def ffprobe_packets(path) -> dict:
    out = subprocess.run(
        ["/usr/bin/ffprobe", "-v", "error", "-show_entries", "format=duration:packet=pts_time,dts_time,flags",
         "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)
