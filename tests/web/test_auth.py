"""Logging in, sessions, CSRF, the login rate limit, the language switch, headers - without a browser
(TestClient against the real app and a real database)."""
from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone

from sqlalchemy import select

from api.web.i18n import Translator
from storage.db import session_scope
from storage.models import AuditEvent, User, WebSession
from tests.web.conftest import PASSWORD


def login(client, username, password=PASSWORD, **kw):
    return client.post("/login", data={"username": username, "password": password, "next": "/"},
                       follow_redirects=False, **kw)


def csrf_of(client, path="/cameras") -> str:
    html = client.get(path).text
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_login_sets_a_hardened_cookie_and_lands_on_the_roles_page(web):
    c = web.client
    r = login(c, "insp-north")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "dualcheck_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert c.get("/", follow_redirects=False).headers["location"] == "/flags"
    page = c.get("/flags")
    assert page.status_code == 200 and "预警队列" in page.text and "王稽核" in page.text
    # only a hash of the token is stored
    token = c.cookies.get("dualcheck_session")
    with session_scope(web.rt.sessions) as db:
        stored = db.scalars(select(WebSession.token_hash)).all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64
    # each role lands on its page
    for user, where in (("clinic-a", "/inquiries"), ("ops", "/cameras"), ("admin", "/flags")):
        c.cookies.clear()
        login(c, user)
        assert c.get("/", follow_redirects=False).headers["location"] == where


def test_wrong_password_unknown_user_and_disabled_user_are_refused_alike(web):
    c = web.client
    for user, pw in (("insp-north", "wrong-password"), ("nobody", PASSWORD)):
        r = login(c, user, pw)
        assert r.status_code == 401 and "用户名或密码错误" in r.text and "dualcheck_session" not in r.headers.get(
            "set-cookie", "")
    # a disabled user cannot log in, and its open sessions end at once
    login(c, "admin")
    assert c.get("/flags").status_code == 200
    from api.web.auth import set_disabled

    with session_scope(web.rt.sessions) as db:
        set_disabled(db, "admin")
    assert c.get("/flags", follow_redirects=False).status_code == 303
    c.cookies.clear()
    assert login(c, "admin").status_code == 401


def test_pages_need_a_login_and_say_when_the_session_expired(web, tmp_path, seaweed, models_dir):
    c = web.client
    r = c.get("/flags?level=4", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fflags%3Flevel%3D4")
    # after login the person goes where it wanted to go
    r = c.post("/login", data={"username": "insp-north", "password": PASSWORD, "next": "/flags?level=4"},
               follow_redirects=False)
    assert r.headers["location"] == "/flags?level=4"
    # never to another site
    r = c.post("/login", data={"username": "insp-north", "password": PASSWORD, "next": "//evil.example/"},
               follow_redirects=False)
    assert r.headers["location"] == "/"


def test_sessions_expire(tmp_path, seaweed, models_dir):
    from tests.api.conftest import start_env
    from tests.web.conftest import add_users, test_settings

    env = start_env(test_settings(tmp_path, seaweed, models_dir, web_session_hours=1.5 / 3600), None)
    try:
        add_users(env.rt)
        c = env.client
        assert login(c, "insp-north").status_code == 303
        assert c.get("/flags").status_code == 200
        assert c.get("/v1/cameras").status_code == 200
        time.sleep(1.7)
        r = c.get("/flags", follow_redirects=False)
        assert r.status_code == 303 and "expired=1" in r.headers["location"]
        assert "会话已过期" in c.get(r.headers["location"]).text
        r = c.get("/v1/cameras")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        with session_scope(env.rt.sessions) as db:  # the expired session is gone from the index
            assert db.scalars(select(WebSession)).all() == []
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()


def test_logout_ends_the_session_for_pages_and_the_api(web):
    c = web.client
    login(c, "insp-north")
    token = c.cookies.get("dualcheck_session")
    # logging out needs the CSRF token too (a foreign page cannot log people out)
    assert c.post("/logout", follow_redirects=False).status_code == 403
    r = c.post("/logout", data={"csrf_token": csrf_of(c)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    c.cookies.set("dualcheck_session", token)  # a copy of the old cookie is worthless
    assert c.get("/v1/cameras").status_code == 401
    assert c.get("/flags", follow_redirects=False).status_code == 303


def test_the_session_cookie_authenticates_the_json_api_with_csrf_for_changes(web):
    c = web.client
    # API keys work as before
    assert c.get("/v1/cameras", headers=web.h("ingest")).status_code == 200
    login(c, "admin")
    assert c.get("/v1/cameras").status_code == 200
    token = csrf_of(c)
    body = {"reason": "case 1", "camera_id": "NO-SUCH-CAMERA", "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T00:10:00Z"}
    r = c.post("/v1/holds", json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = c.post("/v1/holds", json=body, headers={"X-CSRF-Token": "not-the-token"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = c.post("/v1/holds", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code not in (401, 403), r.text  # past authentication: now the body is judged
    # a web form without its token gets a friendly page, not JSON
    r = c.post("/flags/whatever/action", data={"action": "confirm", "note": "x"})
    assert r.status_code == 403 and "页面已过期" in r.text and r.headers["content-type"].startswith("text/html")
    # roles map onto the same scope rules: an operator's cookie sees no footage or flags
    c.cookies.clear()
    login(c, "ops")
    assert c.get("/v1/flags").status_code == 403
    assert c.get("/flags").status_code == 403 and "没有权限" in c.get("/flags").text
    # ... but the health of its region's cameras, and only that: no footage, no other region
    from ingest.cameras import add_camera
    from storage.db import session_scope

    with session_scope(web.rt.sessions) as db:
        add_camera(db, camera_id="CAM-N", org_id="CLINIC-A", name="n", role="entrance", url="rtsp://h/n")
        add_camera(db, camera_id="CAM-S", org_id="PHARM-B", name="s", role="entrance", url="rtsp://h/s")
    health = c.get("/v1/cameras/CAM-N/health")
    assert health.status_code == 200 and health.json()["gaps"], health.text
    assert c.get("/v1/cameras/CAM-S/health").status_code == 404
    assert c.get("/v1/cameras/CAM-N/clip.json", params={"start": "2026-01-01T00:00:00Z",
                                                        "end": "2026-01-01T00:01:00Z"}).status_code == 404


def test_login_is_rate_limited_per_username_and_address(web):
    c = web.client  # web_login_max_failures=3 here
    for _ in range(3):
        assert login(c, "insp-north", "guess-1234").status_code == 401
    r = login(c, "insp-north")  # even the right password now waits
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "登录失败次数过多" in r.text
    # another user from the same address is not locked out by someone else's failures
    assert login(c, "insp-south").status_code == 303
    # the window passes: the person may log in again
    web.client.app.state.login_limiter.window_s = 0.2
    time.sleep(0.3)
    assert login(c, "insp-north").status_code == 303


def test_passwords_are_never_logged_or_stored_in_clear(web, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "wrong-but-secret-9876"
    login(web.client, "insp-north", secret)
    login(web.client, "insp-north")
    assert secret not in caplog.text and PASSWORD not in caplog.text
    with session_scope(web.rt.sessions) as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "login")).all()
        hashes = db.scalars(select(User.password_hash)).all()
    assert [e.outcome for e in events] == ["refused:bad_credentials", "ok"]
    assert all(secret not in repr(e.detail) + (e.note or "") for e in events)
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_chinese_by_default_english_on_request_remembered(web):
    c = web.client
    assert "登录" in c.get("/login").text
    r = c.get("/lang/en?next=/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login" and "dualcheck_lang=en" in r.headers["set-cookie"]
    c.get("/lang/en")
    assert "Log in" in c.get("/login").text
    login(c, "insp-north")
    assert "Flag queue" in c.get("/flags").text
    c.get("/lang/zh")
    assert "预警队列" in c.get("/flags").text
    assert c.get("/lang/fr").status_code == 400


def test_dates_and_amounts_are_written_the_chinese_way():
    t = Translator("zh", "Asia/Shanghai")
    when = datetime(2026, 11, 22, 6, 5, 9, tzinfo=timezone.utc)
    assert t.dt(when) == "2026年11月22日 14:05"
    assert t.dt(when, seconds=True) == "2026年11月22日 14:05:09"
    assert t.amount("1234.5") == "¥1,234.50" and t.amount("88") == "¥88.00"
    assert t.status("confirmed") == "已确认" and t.flag_type("ghost_visit") == "无就诊记录结算"
    en = Translator("en", "Asia/Shanghai")
    assert en.dt(when) == "2026-11-22 14:05" and en.amount("1234.5") == "¥1,234.50"


def test_pages_carry_security_headers_and_bad_input_gets_a_friendly_page(web):
    c = web.client
    r = c.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    login(c, "insp-north")
    for bad in ("/flags?level=9", "/flags?date_from=yesterday", "/cameras?day=2026-13-40"):
        r = c.get(bad)
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html") and "请求有误" in r.text
    r = c.get("/flags/no-such-flag")
    assert r.status_code == 404 and "未找到" in r.text


def test_users_and_sessions_on_each_database(db_url, make_settings):
    """The users/web_sessions tables (migration 0006) on SQLite and PostgreSQL: login, API by cookie,
    logout."""
    from tests.api.conftest import start_env
    from tests.web.conftest import add_users

    env = start_env(make_settings(db_url), None)
    try:
        add_users(env.rt)
        c = env.client
        assert login(c, "insp-north").status_code == 303
        assert c.get("/v1/cameras").status_code == 200
        r = c.post("/logout", data={"csrf_token": csrf_of(c)}, follow_redirects=False)
        assert r.status_code == 303 and c.get("/v1/cameras").status_code == 401
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()
