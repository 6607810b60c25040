"""Hardening as a caller notices it: rate limits, security headers, secrets from mounted files."""
from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.keys import add_service_key, rotate_terminal_key
from api.web.auth import add_user
from dualcheck.app import create_app
from storage.db import session_scope
from storage.models import AuditEvent, Verification
from tests.api import images
from tests.api.conftest import start_env


@pytest.fixture
def limited(tmp_path, make_settings, shared_pipeline):
    """make(**settings) -> an API with limits small enough to reach in a test."""
    made = []

    def make(**limits):
        env = start_env(make_settings(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:6]}.db'}", **limits),
                        shared_pipeline)
        made.append(env)
        return env

    yield make
    for env in made:
        env.client.__exit__(None, None, None)
        env.rt.close()


def enroll(env, insured_id, path):
    r = env.client.put(f"/v1/insured/{insured_id}/photos", headers=env.h("ingest"),
                       files=[("photos", (path.name, path.read_bytes(), "image/jpeg"))])
    assert r.status_code == 200, r.text


def verify(client, key, insured_id, capture):
    return client.post("/v1/verify", data={"insured_id": insured_id}, headers={"Authorization": f"Bearer {key}"},
                       files={"image": ("capture.jpg", capture, "image/jpeg")})


def refusals(env, code):
    with session_scope(env.rt.sessions) as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.outcome == f"refused:{code}")))


# --- rate limits -------------------------------------------------------------------------------------


def test_terminal_over_its_limit_gets_429_and_other_terminals_go_on(limited, testdata):
    env = limited(rate_limit_terminal="3/minute")
    enroll(env, "P1", testdata / "faces/obama.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")
    with session_scope(env.rt.sessions) as db:
        second_key = rotate_terminal_key(db, "CLINIC-A-T1")  # a second key of the same terminal
    statuses = [verify(env.client, env.keys["terminal"], "P1", capture).status_code for _ in range(2)]
    statuses.append(verify(env.client, second_key, "P1", capture).status_code)
    assert statuses == [200, 200, 200]
    # the fourth call within the minute: refused, whichever of the terminal's keys it uses
    for key in (env.keys["terminal"], second_key):
        r = verify(env.client, key, "P1", capture)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.json()["error"]["retry_after_s"] == int(r.headers["Retry-After"])
    # another terminal is not affected
    assert verify(env.client, env.keys["terminal_b"], "P1", capture).status_code == 200
    # refused calls stored nothing and each left an audit line naming the key
    with session_scope(env.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Verification)) == 4
    lines = refusals(env, "rate_limited")
    first = f"key:{env.keys['terminal'].split('_')[1]}"
    assert [e.actor for e in lines] == [first, f"key:{second_key.split('_')[1]}"]
    assert all(e.action == "POST /v1/verify" for e in lines)
    # a terminal stuck retrying is refused every time but leaves one audit line a minute, not one a call
    for _ in range(5):
        assert verify(env.client, env.keys["terminal"], "P1", capture).status_code == 429
    assert [e.actor for e in refusals(env, "rate_limited")].count(first) == 1


def test_the_window_moves_a_refused_caller_gets_in_after_retry_after(limited):
    env = limited(rate_limit_terminal="2 per 2 seconds")
    h = env.h("terminal")
    assert [env.client.get("/v1/verifications/none", headers=h).status_code for _ in range(2)] == [404, 404]
    r = env.client.get("/v1/verifications/none", headers=h)
    assert r.status_code == 429
    time.sleep(int(r.headers["Retry-After"]) + 0.1)
    assert env.client.get("/v1/verifications/none", headers=h).status_code == 404


def test_user_and_service_key_limits_count_each_caller_alone(limited):
    env = limited(rate_limit_user="2/minute", rate_limit_terminal="")
    with session_scope(env.rt.sessions) as db:
        admin1 = add_service_key(db, "admin", "desk 1")
        admin2 = add_service_key(db, "admin", "desk 2")
        add_user(db, "insp", "correct-horse-42", "inspector", regions=["north"])
    a1, a2 = ({"Authorization": f"Bearer {k}"} for k in (admin1, admin2))
    assert [env.client.get("/v1/flags", headers=a1).status_code for _ in range(2)] == [200, 200]
    assert env.client.get("/v1/flags", headers=a1).status_code == 429
    assert env.client.get("/v1/flags", headers=a2).status_code == 200
    # a person in the web UI: pages and the API calls of the session count together
    browser = TestClient(env.client.app)
    r = browser.post("/login", data={"username": "insp", "password": "correct-horse-42"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert browser.get("/flags").status_code == 200
    assert browser.get("/v1/flags").status_code == 200
    r = browser.get("/flags")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert {e.actor for e in refusals(env, "rate_limited")} == {f"key:{admin1.split('_')[1]}", "user:insp"}
    # unlimited when the setting is empty: the terminal goes on
    assert all(env.client.get("/v1/verifications/x", headers=env.h("terminal")).status_code == 404
               for _ in range(5))


@pytest.fixture
def redis_url(tmp_path):
    """A real Redis (Debian's redis-server, as deploy/k8s/redis.yaml runs it: a password, no persistence)
    on a free port, for this test only."""
    import shutil
    import subprocess

    import redis

    from tests.conftest import free_port

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server missing: scripts/setup.sh installs it (apt-get install redis-server)")
    port, password = free_port(), uuid.uuid4().hex
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
                          "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        p.terminate()
        p.wait(10)


def test_replicas_sharing_redis_share_one_limit(make_settings, tmp_path, redis_url):
    """Two API processes (replicas) on one database and one Redis: the terminal's limit is region-wide."""
    from api.keys import add_organisation, add_terminal
    from storage.db import migrate

    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    migrate(db_url)
    tid = "T-shared"
    settings = make_settings(db_url, rate_limit_terminal="3/minute", rate_limit_storage_uri=redis_url)
    apps = [create_app(settings, preload_models=False) for _ in range(2)]
    with session_scope(apps[0].state.runtime.sessions) as db:
        add_organisation(db, "CLINIC-R", region="north")
        db.flush()
        key = add_terminal(db, "CLINIC-R", tid)[1]
    h = {"Authorization": f"Bearer {key}"}
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        got = [c.get("/v1/verifications/x", headers=h).status_code for c in (one, two, one)]
        assert got == [404, 404, 404]
        assert two.get("/v1/verifications/x", headers=h).status_code == 429
        assert one.get("/v1/verifications/x", headers=h).status_code == 429
    for app in apps:
        app.state.runtime.close()


def test_an_unreachable_limit_storage_lets_requests_through(limited):
    from tests.conftest import free_port

    env = limited(rate_limit_terminal="1/minute", rate_limit_storage_uri=f"redis://127.0.0.1:{free_port()}")
    h = env.h("terminal")
    assert [env.client.get("/v1/verifications/x", headers=h).status_code for _ in range(3)] == [404, 404, 404]


def test_a_malformed_limit_is_refused_at_start():
    from pydantic import ValidationError

    from kernel.settings import Settings

    with pytest.raises(ValidationError, match="rate_limit_user"):
        Settings(rate_limit_user="lots")


# --- security headers --------------------------------------------------------------------------------

COMMON = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "same-origin"}


def _assert_common(r):
    for k, v in COMMON.items():
        assert r.headers.get(k) == v, (r.request.url, k, r.headers.get(k))
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "camera=()" in r.headers["permissions-policy"]


def test_every_kind_of_response_carries_the_security_headers(api_sqlite, testdata):
    env = api_sqlite
    enroll(env, "P2", testdata / "faces/obama.jpg")
    r = verify(env.client, env.keys["terminal"], "P2", images.read(testdata / "faces/obama2.jpg"))
    assert r.status_code == 200
    responses = {
        "verify": r,
        "login page": env.client.get("/login"),
        "refusal": env.client.get("/v1/flags"),
        "too large": env.client.post("/v1/verify", content=b"x" * (env.settings.max_upload_bytes + 100_000),
                                     headers={**env.h("terminal"), "content-type": "application/octet-stream"}),
        "health": env.client.get("/healthz"),
        "static": env.client.get("/static/player.js"),
    }
    assert responses["refusal"].status_code == 401 and responses["too large"].status_code == 413
    for name, resp in responses.items():
        _assert_common(resp)
    # biometric results, pages and refusals are never cached; static files may be
    for name in ("verify", "login page", "refusal", "too large"):
        assert "no-store" in responses[name].headers["cache-control"], name
    assert "no-store" not in responses["static"].headers.get("cache-control", "")
    # plain HTTP: no HSTS
    assert all("strict-transport-security" not in resp.headers for resp in responses.values())


def test_an_unexpected_failure_is_a_plain_500_with_the_same_headers(api_sqlite, caplog):
    """A fault nobody turned into a refusal (here the verifications table is gone from under the API):
    the caller gets JSON naming the request id, with every security header and no-store, and no
    internals (SQL, paths, values); the log has the traceback under the same request id."""
    from sqlalchemy import text

    env = api_sqlite
    with session_scope(env.rt.sessions) as db:
        db.execute(text("ALTER TABLE verifications RENAME TO verifications_gone"))
    client = TestClient(env.client.app, raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="dualcheck.api"):
        r = client.get("/v1/verifications/VX-123", headers={**env.h("terminal"), "X-Request-ID": "req-500-check"})
    assert r.status_code == 500
    _assert_common(r)
    assert "no-store" in r.headers["cache-control"] and r.headers["x-request-id"] == "req-500-check"
    assert r.json() == {"error": {"code": "internal_error", "reason": "internal error; request id req-500-check"}}
    assert "verifications" not in r.text and "SELECT" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "dualcheck.api" and rec.exc_info]
    assert logged and "/v1/verifications/{" in logged[0].getMessage() and "VX-123" not in logged[0].getMessage()


def test_hsts_only_over_https_when_configured(tmp_path, make_settings, shared_pipeline):
    env = start_env(make_settings(f"sqlite:///{tmp_path / 'h.db'}", api_hsts_max_age_s=31536000), shared_pipeline)
    try:
        assert "strict-transport-security" not in env.client.get("/healthz").headers
        behind_proxy = env.client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert behind_proxy.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        with TestClient(env.client.app, base_url="https://testserver") as tls:
            assert tls.get("/login").headers["strict-transport-security"].startswith("max-age=31536000")
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()


# --- secrets from mounted files --------------------------------------------------------------------------


def test_s3_credentials_from_mounted_secret_files(tmp_path, seaweed, monkeypatch):
    """A Kubernetes Secret volume: one file per setting, with the trailing newline editors and
    `kubectl create secret --from-file` leave; the store works with them. The environment wins."""
    from kernel.settings import Settings
    from storage.objects import ObjectStore

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "DUALCHECK_S3_ACCESS_KEY").write_text(seaweed.access_key + "\n")
    (secrets / "DUALCHECK_S3_SECRET_KEY").write_text(seaweed.secret_key + "\n")
    for name in ("DUALCHECK_S3_ACCESS_KEY", "DUALCHECK_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUALCHECK_SECRETS_DIR", str(secrets))
    s = Settings(data_dir=tmp_path / "data", s3_endpoint=seaweed.endpoint)
    assert s.s3_access_key == seaweed.access_key and s.s3_secret_key.get_secret_value() == seaweed.secret_key
    store = ObjectStore.from_settings(s)
    bucket = f"secret-{uuid.uuid4().hex[:8]}"
    store.ensure_bucket(bucket)
    store.put_bytes(bucket, "k", b"hello")
    assert store.get_bytes(bucket, "k") == b"hello"
    assert not (tmp_path / "data" / "secrets").exists()  # no generated fallback credentials were needed
    # an environment variable of the same name wins over the file
    monkeypatch.setenv("DUALCHECK_S3_ACCESS_KEY", "from-env")
    assert Settings(data_dir=tmp_path / "data").s3_access_key == "from-env"
    # without the directory the secret is simply not set (no hard-coded default)
    monkeypatch.delenv("DUALCHECK_SECRETS_DIR")
    monkeypatch.delenv("DUALCHECK_S3_ACCESS_KEY")
    assert Settings(data_dir=tmp_path / "data").s3_secret_key is None
