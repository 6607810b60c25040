"""Issue 17, logins and logs: the login limits cannot be used to lock a user out nor dodged by a
header, and "refused" log lines carry the route template, never the path, on one escaped line."""
from __future__ import annotations

import io
import logging

from api.keys import add_service_key
from api.web.auth import DEVICE_COOKIE, LoginLimiter, add_user
from kernel import logs
from storage.db import session_scope

PW = "correct horse battery"


class Clock:
    t = 1000.0

    def __call__(self):
        return self.t


def test_limiter_counts_per_address_and_per_account_but_a_known_browser_passes():
    clock = Clock()
    lim = LoginLimiter(5, 300, clock, max_per_address=8, max_per_account=10)
    # one address guessing across accounts
    for i in range(8):
        lim.failed(f"user{i}", "198.51.100.7")
    assert lim.retry_after("someone-else", "198.51.100.7") > 0
    assert lim.retry_after("someone-else", "198.51.100.8") == 0
    # many addresses guessing one account: new browsers wait, the user's own browser does not
    for i in range(10):
        lim.failed("wang", f"203.0.113.{i}")
    assert lim.retry_after("wang", "192.0.2.1") > 0
    assert lim.retry_after("wang", "192.0.2.1", trusted=True) == 0
    lim.succeeded("wang", "192.0.2.1")  # the user's login does not reopen guessing from elsewhere
    assert lim.retry_after("wang", "192.0.2.99") > 0
    clock.t += 301
    assert lim.retry_after("wang", "192.0.2.99") == 0


def test_an_attacker_cannot_lock_the_user_out_nor_dodge_the_limit_with_a_header(api_sqlite):
    env = api_sqlite
    c = env.client
    with session_scope(env.rt.sessions) as db:
        add_user(db, "wang", PW, "inspector", regions=["north"])
    # the user logged in from this browser once: it keeps the device cookie
    r = c.post("/login", data={"username": "wang", "password": PW, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303 and r.cookies.get(DEVICE_COOKIE), r.headers
    device = r.cookies.get(DEVICE_COOKIE)
    c.cookies.clear()
    # an attacker behind the same address (an ingress, a NAT) fails on purpose, with a new
    # X-Forwarded-For each time: the header is not believed, every failure counts
    codes = [c.post("/login", data={"username": "wang", "password": "wrong-password"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"}, follow_redirects=False).status_code
             for i in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    # a forged device cookie is no way round
    c.cookies.set(DEVICE_COOKIE, "wang:" + "0" * 64, path="/login")
    r = c.post("/login", data={"username": "wang", "password": PW}, follow_redirects=False)
    assert r.status_code == 429
    c.cookies.clear()
    # the real user, from the browser that logged in before, still gets in with the right password
    c.cookies.set(DEVICE_COOKIE, device, path="/login")
    r = c.post("/login", data={"username": "wang", "password": PW, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    c.cookies.clear()


def test_refused_lines_log_the_route_not_the_insured_id_and_escape_controls(api_sqlite):
    env = api_sqlite
    with session_scope(env.rt.sessions) as db:
        env.keys["north"] = add_service_key(db, "inspector", "north", regions=["north"])
    out = io.StringIO()
    handler = logs.setup("INFO", "text", role="api", stream=out)
    try:
        r = env.client.delete("/v1/insured/H0004", headers=env.h("north"))
        assert r.status_code == 403
        env.client.get("/v1/flags/ABC%1b%5b31mX%0aforged", headers=env.h("north"))
        logging.getLogger("dualcheck.test").info("caller said %s", "a\nb\x1b[2Jc\u2028d")
    finally:
        logging.getLogger().removeHandler(handler)
    # the service's own lines (the test client's httpx logs its requests too)
    text = "\n".join(ln for ln in out.getvalue().splitlines() if " httpx " not in ln)
    refused = [ln for ln in text.splitlines() if "refused" in ln]
    assert any("refused DELETE /v1/insured/{insured_id}: 403" in ln for ln in refused), text
    assert "H0004" not in text and "forged" not in text, text
    assert "caller said a\\x0ab\\x1b[2Jc\\u2028d" in text and "\x1b" not in text, text
