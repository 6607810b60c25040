"""A terminal's attestation rule is kept by an API process for verify_attestation_rule_cache_s (facepay/capture_checks.py
AttestationRules): a change made elsewhere (the CLI, another API process) acts within that time, a change made
through this process at once, and with the cache off every capture reads the rule."""
from __future__ import annotations

import time

from api.keys import add_service_key
from facepay.attestation import set_org_requirement, set_terminal_requirement
from storage.db import session_scope
from tests.api.conftest import start_env


def start(tmp_path, make_settings, shared_pipeline, testdata, cache_s: float):
    env = start_env(make_settings(f"sqlite:///{tmp_path / 'rules.db'}", verify_attestation_rule_cache_s=cache_s,
                                  verify_replay_window_s=0, rate_limit_terminal=""), shared_pipeline)
    with session_scope(env.rt.sessions) as db:
        env.keys["admin"] = add_service_key(db, "admin", "operator")
    photo = testdata / "faces/obama.jpg"
    r = env.client.put("/v1/insured/P-OBAMA/photos", files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
                       headers=env.h("ingest"))
    assert r.status_code == 200, r.text
    env.capture = (testdata / "faces/obama2.jpg").read_bytes()
    return env


def decision(env, who="terminal") -> str:
    r = env.client.post("/v1/verify", data={"insured_id": "P-OBAMA"}, headers=env.h(who),
                        files={"image": ("c.jpg", env.capture, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()["decision"]


def stop(env):
    env.client.__exit__(None, None, None)
    env.rt.close()


def test_a_rule_set_from_another_process_acts_within_the_cache_time(tmp_path, make_settings, shared_pipeline,
                                                                    testdata):
    env = start(tmp_path, make_settings, shared_pipeline, testdata, cache_s=1.0)
    try:
        assert decision(env) == "match"  # nobody requires attestation; the rule is now kept for a second
        with session_scope(env.rt.sessions) as db:  # as `dualcheck orgs attestation CLINIC-A require` does
            set_org_requirement(db, "CLINIC-A", True)
        changed_at = time.monotonic()
        answers = []
        while time.monotonic() - changed_at < 2.0:
            sent = time.monotonic() - changed_at
            answers.append((sent, decision(env)))
        late = [d for sent, d in answers if sent > 1.0 + 0.05]
        assert late and set(late) == {"liveness_unverified"}, answers
        assert decision(env, "terminal_b") == "match"  # another organisation's terminal: untouched
    finally:
        stop(env)


def test_without_the_cache_a_rule_set_elsewhere_acts_at_once(tmp_path, make_settings, shared_pipeline, testdata):
    env = start(tmp_path, make_settings, shared_pipeline, testdata, cache_s=0)
    try:
        assert decision(env) == "match"
        with session_scope(env.rt.sessions) as db:
            set_terminal_requirement(db, "CLINIC-A-T1", True)
        assert decision(env) == "liveness_unverified"
    finally:
        stop(env)


def test_a_rule_set_through_this_api_acts_at_once_however_long_the_cache(tmp_path, make_settings, shared_pipeline,
                                                                         testdata):
    env = start(tmp_path, make_settings, shared_pipeline, testdata, cache_s=30)
    try:
        assert decision(env) == "match"
        r = env.client.put("/v1/terminals/CLINIC-A-T1/attestation", json={"required": True}, headers=env.h("admin"))
        assert r.status_code == 200, r.text
        assert decision(env) == "liveness_unverified"
        r = env.client.put("/v1/terminals/CLINIC-A-T1/attestation", json={"required": None}, headers=env.h("admin"))
        assert decision(env) == "match"  # back to the organisation's rule, which requires nothing
        r = env.client.put("/v1/orgs/CLINIC-A/attestation", json={"required": True}, headers=env.h("admin"))
        assert r.status_code == 200, r.text
        assert decision(env) == "liveness_unverified"
    finally:
        stop(env)
