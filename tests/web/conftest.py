"""Web UI fixtures: users of every role over the correlation tests' world (two organisations in two
regions, real footage segments in a real SeaweedFS, real checks raising real flags), the app served by
a real uvicorn, and Debian's Chromium through Playwright."""
from __future__ import annotations

import contextlib
import uuid

import pytest

from tests.api.conftest import shared_pipeline  # noqa: F401  (fixture)

PASSWORD = "correct-horse-42"
# username -> (role, regions, org, display name)
USERS = {
    "insp-north": ("inspector", ["north"], None, "王稽核"),
    "insp-south": ("inspector", ["south"], None, "李稽核"),
    "clinic-a": ("institution", [], "CLINIC-A", "甲诊所"),
    "clinic-b": ("institution", [], "PHARM-B", "乙药店"),
    "ops": ("operator", ["north"], None, "运维"),
    "admin": ("admin", [], None, "管理员"),
    "auditor": ("auditor", [], None, "审计员"),
}


def add_users(rt) -> None:
    from api.web.auth import add_user
    from storage.db import session_scope

    with session_scope(rt.sessions) as db:
        for name, (role, regions, org, display) in USERS.items():
            add_user(db, name, PASSWORD, role, regions=regions, org_id=org, display_name=display)


def test_settings(tmp, seaweed, models_dir, **overrides):
    from kernel.settings import Settings

    suffix = uuid.uuid4().hex[:8]
    values = dict(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'web.db'}", s3_endpoint=seaweed.endpoint,
                  s3_access_key=seaweed.access_key, s3_secret_key=seaweed.secret_key, models_dir=models_dir,
                  bucket_biometrics=f"bio-{suffix}", bucket_footage=f"footage-{suffix}")
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False


@pytest.fixture
def web(tmp_path, seaweed, models_dir):
    """An API (with the web UI) on a fresh SQLite, no models loaded, the users above."""
    from tests.api.conftest import start_env

    env = start_env(test_settings(tmp_path, seaweed, models_dir, web_login_max_failures=3), None)
    add_users(env.rt)
    yield env
    env.client.__exit__(None, None, None)
    env.rt.close()


class Site:
    """The world, its flags by settlement id, and the URL it is served at."""

    def __init__(self, world, url, flags):
        self.world, self.url, self.flags = world, url, flags
        self.rt = world.rt


@pytest.fixture(scope="module")
def site(tmp_path_factory, seaweed, models_dir, shared_pipeline, testdata):  # noqa: F811
    """Real footage and real checks: at CLINIC-A (north) an impostor at the counter (impersonation,
    with face crops) and a ghost visit; at PHARM-B (south) a ghost visit."""
    from tests.correlate import scenarios as sc
    from tests.correlate.conftest import SETTINGS, make_world
    from tests.replay.live import serve

    tmp = tmp_path_factory.mktemp("site")
    w = make_world(test_settings(tmp, seaweed, models_dir, **SETTINGS), shared_pipeline, testdata, tmp, enrolled=())
    # the insured person's photos go in through the enrollment API (so the enrolled photo can be shown)
    files = [("photos", (p, (testdata / "faces" / p).read_bytes(), "image/jpeg")) for p in ("obama2.jpg", "obama3.jpg")]
    r = w.client.put("/v1/insured/P-OBAMA/photos", files=files, headers=w.h("admin"))
    assert r.status_code == 200, r.text
    imp = w.add_block("impostor", testdata, camera_id="CAM-A", org_id="CLINIC-A")
    ghost = w.add_block("ghost", testdata, camera_id="CAM-A", org_id="CLINIC-A")
    ghost_b = w.add_block("ghost", testdata, camera_id="CAM-B", org_id="PHARM-B")
    rows = [sc.settlement("A-IMP", "P-OBAMA", "CLINIC-A", imp.settled_at, counter="counter-1", amount="1234.5"),
            sc.settlement("A-GHOST", "P-OBAMA", "CLINIC-A", ghost.settled_at, terminal="CLINIC-A-T1", amount="88"),
            sc.settlement("B-GHOST", "P-OBAMA", "PHARM-B", ghost_b.settled_at, terminal="PHARM-B-T1")]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    flags = {f["settlement_id"]: f for f in w.flags("admin") if f["rule"] in ("ghost_visit", "impersonation")}
    assert set(flags) == {"A-IMP", "A-GHOST", "B-GHOST"}, [f["rule"] for f in w.flags("admin")]
    add_users(w.rt)
    with serve(w.client.app) as url:
        yield Site(w, url, flags)
    w.client.__exit__(None, None, None)
    w.rt.close()


@pytest.fixture(scope="module")
def served_site(tmp_path_factory, seaweed, models_dir):
    """serve(name, seed=None, *, pipeline=None, **setting overrides) -> (env, url, seeded): for the test modules
    that serve a site of their own. A fresh runtime on its own SQLite (tests.api.conftest.start_env), seeded by
    ``seed(env)`` (its return value is ``seeded``; ``env.tmp`` is the site's folder), then the users above, then
    a real uvicorn at ``url``; all closed when the module ends."""
    from tests.api.conftest import start_env
    from tests.replay.live import serve

    with contextlib.ExitStack() as stack:
        def make(name: str, seed=None, *, pipeline=None, **overrides):
            tmp = tmp_path_factory.mktemp(name)
            env = start_env(test_settings(tmp, seaweed, models_dir, **overrides), pipeline)
            stack.callback(env.rt.close)
            stack.callback(env.client.__exit__, None, None, None)
            env.tmp = tmp
            seeded = seed(env) if seed is not None else None
            add_users(env.rt)
            return env, stack.enter_context(serve(env.client.app)), seeded

        yield make


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def logged_in(browser, url: str, username: str, *, timeout_ms: int = 15000, **context_args):
    """A fresh browser context (zh-CN, 1360x900) logged in as ``username`` at ``url``: (context, page).
    For the test modules that serve a site of their own."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN", **context_args)
    page = ctx.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return ctx, page


@pytest.fixture
def login(browser, site):
    """login(username) -> a page of a fresh browser context, logged in."""
    contexts = []

    def go(username: str, lang: str | None = None):
        ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15000)
        if lang:
            page.goto(f"{site.url}/lang/{lang}")
        page.goto(f"{site.url}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/login" not in page.url, page.content()[:500]
        return page

    yield go
    for c in contexts:
        c.close()


def checked_claims(env, **generated):
    """CLINIC-A with its pharmacy and settlement counters and an admin key on ``env``, a generated set of platform
    records (camsim/claimsgen.py, ``generated``: its arguments) posted through POST /v1/claims and checked
    through POST /v1/claims/check: (the records, the check's answer)."""
    from api.keys import add_service_key
    from camsim.claimsgen import generate
    from ingest.cameras import add_camera
    from storage.db import session_scope

    with session_scope(env.rt.sessions) as db:
        add_camera(db, camera_id="CAM-P", org_id="CLINIC-A", name="发药窗口", role="pharmacy_counter",
                   url="rtsp://10.0.0.9/s", covers=["pharmacy-1"])
        add_camera(db, camera_id="CAM-S", org_id="CLINIC-A", name="收费处", role="settlement_counter",
                   url="rtsp://10.0.0.8/s", covers=["counter-1"])
        env.keys["admin"] = add_service_key(db, "admin", "operator")
    ds = generate(**generated)
    assert env.client.post("/v1/claims", json=ds.messages, headers=env.h("ingest")).status_code == 200
    r = env.client.post("/v1/claims/check", json={"org_id": "CLINIC-A", "start": ds.start.isoformat(),
                                                  "end": ds.end.isoformat()}, headers=env.h("admin"))
    assert r.status_code == 200, r.text
    return ds, r.json()
