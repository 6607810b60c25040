"""A world to check settlements in: two organisations in two regions, a counter camera each with
scripted footage blocks (real segments in a real SeaweedFS), enrolled insured people, keys of every
role, and the API over it (real database: SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import shared_pipeline  # noqa: F401  (fixture)
from tests.correlate import scenarios as sc

SETTINGS = dict(correlate_window_s={"default": sc.WINDOW}, correlate_footage_grace_s=0.0,
                correlate_footage_max_wait_s=0.0)


class World:
    def __init__(self, env, tmp_path):
        self.env, self.client, self.rt, self.settings = env, env.client, env.rt, env.settings
        self.tmp = tmp_path
        self.blocks: dict[str, sc.Block] = {}
        self.next_block = 0

    def h(self, who: str) -> dict:
        return self.env.h(who)

    def add_block(self, scene: str, testdata, *, camera_id="CAM-A", org_id="CLINIC-A") -> sc.Block:
        """Footage of ``scene`` on ``camera_id`` in the next free 100 s slot; returns where to settle."""
        from storage.db import session_scope

        start = sc.at(self.next_block * 100.0)
        self.next_block += 1
        foot = sc.scene_footage(scene, testdata)
        with session_scope(self.rt.sessions) as db:
            sc.write_block(db, self.rt.store, self.settings.bucket_footage, foot, org_id=org_id,
                           camera_id=camera_id, start=start, workdir=self.tmp)
        b = sc.Block(scene, start, start + timedelta(seconds=sc.SETTLE_AT), sc.SCENES[scene][1])
        return b

    def gap_block(self) -> sc.Block:
        start = sc.at(self.next_block * 100.0)
        self.next_block += 1
        return sc.Block("camera_off", start, start + timedelta(seconds=sc.SETTLE_AT), "footage_missing")

    def post(self, rows, who="ingest"):
        return self.client.post("/v1/settlements", json=rows, headers=self.h(who))

    def run_jobs(self):
        from correlate.jobs import run_pending

        return run_pending(self.rt.checker)

    def flags(self, who="admin", **params):
        r = self.client.get("/v1/flags", params=params, headers=self.h(who))
        assert r.status_code == 200, r.text
        return r.json()["flags"]


def make_world(settings, pipeline, testdata, tmp_path, enrolled=("P-OBAMA",)) -> World:
    from api.keys import add_service_key
    from ingest.cameras import add_camera
    from storage.db import session_scope
    from tests.api.conftest import start_env

    env = start_env(settings, pipeline)
    rt = env.rt
    rt.store.ensure_bucket(settings.bucket_footage)
    with session_scope(rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
        env.keys["inspector_north"] = add_service_key(db, "inspector", "north desk", regions=["north"])
        env.keys["inspector_south"] = add_service_key(db, "inspector", "south desk", regions=["south"])
        env.keys["clinic_a"] = add_service_key(db, "institution", "clinic A office", org_id="CLINIC-A")
        env.keys["pharm_b"] = add_service_key(db, "institution", "pharmacy B office", org_id="PHARM-B")
        env.keys["ingest_b"] = add_service_key(db, "ingest", "exchange south", org_id="PHARM-B")
        add_camera(db, camera_id="CAM-A", org_id="CLINIC-A", name="counter 1", role="settlement_counter",
                   url="rtsp://10.0.0.5/stream1", covers=["CLINIC-A-T1", "counter-1"])
        add_camera(db, camera_id="CAM-B", org_id="PHARM-B", name="counter 1", role="pharmacy_counter",
                   url="rtsp://10.0.1.5/stream1", covers=["PHARM-B-T1"])
        for pid in enrolled:
            sc.enroll(db, pipeline, testdata, pid)
    return World(env, tmp_path)


@pytest.fixture
def world(db_url, make_settings, shared_pipeline, testdata, tmp_path):  # noqa: F811
    w = make_world(make_settings(db_url, **SETTINGS), shared_pipeline, testdata, tmp_path)
    yield w
    w.client.__exit__(None, None, None)
    w.rt.close()


@pytest.fixture
def world_sqlite(make_settings, shared_pipeline, testdata, tmp_path):  # noqa: F811
    w = make_world(make_settings(f"sqlite:///{tmp_path / 'w.db'}", **SETTINGS), shared_pipeline, testdata,
                   tmp_path)
    yield w
    w.client.__exit__(None, None, None)
    w.rt.close()
