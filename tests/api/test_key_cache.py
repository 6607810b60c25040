"""API keys checked in the last seconds are trusted without asking the index (api/keys.py KeyCache); a revoked
key is refused within api_key_cache_s, and at once when the cache is off."""
from __future__ import annotations

import time

from api.keys import revoke_key, revoke_terminal
from storage.db import session_scope
from tests.api.conftest import start_env


def call(env, who="terminal"):
    # a terminal's cheapest authenticated call: an unknown verification is 404 once the key is accepted
    return env.client.get("/v1/verifications/0123456789abcdef0123456789abcdef", headers=env.h(who))


def test_a_revoked_key_in_constant_use_is_refused_within_the_cache_time(tmp_path, make_settings, shared_pipeline):
    env = start_env(make_settings(f"sqlite:///{tmp_path / 'k.db'}", api_key_cache_s=1.0, rate_limit_terminal=""),
                    shared_pipeline)
    try:
        assert call(env).status_code == 404  # accepted, now trusted for a second
        with session_scope(env.rt.sessions) as db:  # as `dualcheck keys revoke` does from another process
            revoke_key(db, env.keys["terminal"].split("_")[1])
        revoked_at = time.monotonic()
        answers = []
        while time.monotonic() - revoked_at < 2.0:
            sent = time.monotonic() - revoked_at
            answers.append((sent, call(env).status_code))
            time.sleep(0.05)
        late = [code for sent, code in answers if sent > 1.0 + 0.05]
        assert late and set(late) == {401}, answers
        # the other terminal's key was not touched
        assert call(env, "terminal_b").status_code == 404
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()


def test_without_the_cache_a_revoked_terminal_is_refused_at_once(tmp_path, make_settings, shared_pipeline):
    env = start_env(make_settings(f"sqlite:///{tmp_path / 'k.db'}", api_key_cache_s=0), shared_pipeline)
    try:
        assert call(env).status_code == 404
        with session_scope(env.rt.sessions) as db:
            revoke_terminal(db, "CLINIC-A-T1")
        r = call(env)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()


def test_a_new_key_works_at_once_and_unknown_keys_stay_refused(tmp_path, make_settings, shared_pipeline):
    env = start_env(make_settings(f"sqlite:///{tmp_path / 'k.db'}", api_key_cache_s=30), shared_pipeline)
    try:
        env.keys["made_up"] = "dck_0123456789abcdef_" + "x" * 43
        assert call(env, "made_up").status_code == 401
        assert call(env, "made_up").status_code == 401  # a refusal is not remembered as anything else
        assert call(env).status_code == 404
        # a wrong secret for a cached key's id is not the cached key
        wrong = env.keys["terminal"][:-4] + ("aaaa" if not env.keys["terminal"].endswith("aaaa") else "bbbb")
        env.keys["wrong"] = wrong
        assert call(env, "wrong").status_code == 401
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()
