"""An API process on a real database, a real SeaweedFS and the real models."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.keys import add_organisation, add_service_key, add_terminal
from dualcheck.app import create_app
from storage.db import migrate, session_scope


@pytest.fixture(scope="session")
def shared_pipeline(models_dir):
    """Models load once per test session; every app in the tests shares them."""
    from kernel.settings import Settings
    from vision.pipeline import FacePipeline

    return FacePipeline.from_settings(Settings(models_dir=models_dir))


class Env:
    def __init__(self, settings, client, rt):
        self.settings, self.client, self.rt = settings, client, rt
        self.keys: dict[str, str] = {}

    def h(self, who: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def start_env(settings, pipeline) -> Env:
    migrate(settings.effective_database_url)
    app = create_app(settings, preload_models=False)
    rt = app.state.runtime
    rt.__dict__["pipeline"] = pipeline
    client = TestClient(app)
    client.__enter__()
    env = Env(settings, client, rt)
    with session_scope(rt.sessions) as db:
        add_organisation(db, "CLINIC-A", "Clinic A", region="north")
        add_organisation(db, "PHARM-B", "Pharmacy B", region="south")
        db.flush()
        env.keys["terminal"] = add_terminal(db, "CLINIC-A", "CLINIC-A-T1", "counter-1")[1]
        env.keys["terminal_b"] = add_terminal(db, "PHARM-B", "PHARM-B-T1", "counter-1")[1]
        env.keys["ingest"] = add_service_key(db, "ingest", "data exchange")
    return env


@pytest.fixture
def api(db_url, make_settings, shared_pipeline):
    env = start_env(make_settings(db_url), shared_pipeline)
    yield env
    env.client.__exit__(None, None, None)
    env.rt.close()


@pytest.fixture
def api_sqlite(tmp_path, make_settings, shared_pipeline):
    """For tests whose behaviour does not depend on the database kind."""
    env = start_env(make_settings(f"sqlite:///{tmp_path / 'api.db'}"), shared_pipeline)
    yield env
    env.client.__exit__(None, None, None)
    env.rt.close()
