"""Admission control of face work (kernel/admission.py, api/admission.py): past capacity a terminal is told
at once (503 overloaded + Retry-After) and the admitted requests are answered and recorded as before.

Capacity is made deterministic instead of timed: the test holds the process's only inference slot, so the
admitted requests wait on it while the others are answered; nothing here measures speed (bench/overload.py).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
from sqlalchemy import func, select

from api.admission import GATED
from kernel import metrics
from storage.db import session_scope
from storage.models import Verification
from tests.api import images
from tests.api.conftest import start_env
from tests.api.test_verify import enroll, verify


@pytest.fixture
def make_env(tmp_path, make_settings, shared_pipeline):
    envs = []

    def make(**overrides):
        env = start_env(make_settings(f"sqlite:///{tmp_path / f'api{len(envs)}.db'}", **overrides), shared_pipeline)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.client.__exit__(None, None, None)
        env.rt.close()


def refused(kind: str, reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("dualcheck_admission_refused_total",
                                             {"type": kind, "reason": reason}) or 0.0


def wait_until(condition, what: str) -> None:
    """Wait for a state of the server (not a speed assertion: the bound only stops a broken run)."""
    stop = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < stop, f"never reached: {what}"
        time.sleep(0.01)


def assert_overloaded(r) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    err = r.json()["error"]
    assert err["code"] == "overloaded" and err["retry_after_s"] >= 1 and err["reason"]


def one_slot(make_env, testdata, insured_id: str, cause: str, **overrides):
    """A server with one analysis at a time and ``insured_id`` enrolled: it, a capture of that person, and the
    count of refusals for ``cause`` so far."""
    api = make_env(inference_concurrency=1, **overrides)
    enroll(api, insured_id, testdata / "faces/obama.jpg")
    return api, images.read(testdata / "faces/obama2.jpg"), refused("verify", cause)


def test_beyond_capacity_answered_at_once_and_admitted_ones_recorded(make_env, testdata):
    # one analysis at a time, one more request may wait; the budget is long enough never to drop one
    api, capture, before = one_slot(make_env, testdata, "P500", "queue_full", verify_max_queue=1,
                                    verify_latency_budget_ms=600_000)
    gate = api.rt.admission

    slot = api.rt.inference_slots
    slot.acquire()  # the models are busy: admitted requests wait
    held = True
    with ThreadPoolExecutor(2) as ex:
        try:
            admitted = [ex.submit(verify, api, "P500", capture, settlement_ref=f"S-OV-{i}") for i in range(2)]
            wait_until(lambda: gate.in_flight == 2, "two verifications admitted")
            # beyond capacity: answered while the slot is still held, so without waiting for the models
            extra = [verify(api, "P500", capture, settlement_ref=f"S-OV-X{i}") for i in range(3)]
            assert not any(f.done() for f in admitted)
        finally:
            slot.release()
            held = False
        answers = [f.result() for f in admitted]
    assert not held
    for r in extra:
        assert_overloaded(r)

    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    assert {r.json()["decision"] for r in answers} == {"match"}
    assert refused("verify", "queue_full") == before + 3
    with session_scope(api.rt.sessions) as db:
        rows = db.execute(select(Verification.id, Verification.settlement_ref)).all()
    assert sorted(rows) == sorted((r.json()["verification_id"], r.json()["settlement_ref"]) for r in answers)
    assert gate.in_flight == 0


def test_a_request_that_waited_past_its_budget_is_dropped_not_analysed(make_env, testdata):
    api = make_env(inference_concurrency=1, verify_latency_budget_ms=1)
    enroll(api, "P501", testdata / "faces/obama.jpg")
    before = refused("verify", "stale")
    api.rt.inference_slots.acquire()  # held until the answer: the wait can only end by the budget
    with ThreadPoolExecutor(1) as ex:
        try:
            answer = ex.submit(verify, api, "P501", images.read(testdata / "faces/obama2.jpg"), settlement_ref="S-STALE")
            done, _ = wait([answer], timeout=60)  # a bound for a broken run only, not a speed assertion
            assert done, "the request kept waiting for the busy models past its budget"
        finally:
            api.rt.inference_slots.release()
        r = answer.result()
    assert_overloaded(r)
    assert refused("verify", "stale") == before + 1
    with session_scope(api.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Verification)) == 0
    assert api.rt.admission.in_flight == 0


def test_a_request_expected_to_wait_past_the_budget_is_told_so_at_once(make_env, testdata):
    # room in the queue, but the measured pace says the answer would come after the budget: refused before
    # its upload is analysed, with the wait and the budget in the reason and a Retry-After of that wait
    api, capture, before = one_slot(make_env, testdata, "P502", "over_budget", verify_max_queue=8,
                                    verify_latency_budget_ms=60_000)
    gate = api.rt.admission
    api.rt.inference_slots.acquire()  # the models are busy with one analysis: the next request is second in line
    held = True
    with ThreadPoolExecutor(1) as ex:
        try:
            first = ex.submit(verify, api, "P502", capture, settlement_ref="S-OB-1")
            wait_until(lambda: gate.in_flight == 1, "one verification admitted")
            gate.analysis_s, gate.start_interval_s = 90.0, 0.0  # as measured on models taking 90 s per analysis
            r = verify(api, "P502", capture, settlement_ref="S-OB-2")
        finally:
            api.rt.inference_slots.release()
            held = False
        answer = first.result()
    assert not held
    assert_overloaded(r)
    reason = r.json()["error"]["reason"]
    assert "90.0 s" in reason and "60000 ms" in reason, reason
    assert int(r.headers["Retry-After"]) == 90
    assert refused("verify", "over_budget") == before + 1
    assert answer.status_code == 200 and answer.json()["settlement_ref"] == "S-OB-1", answer.text
    with session_scope(api.rt.sessions) as db:
        assert db.scalars(select(Verification.settlement_ref)).all() == ["S-OB-1"]
    assert gate.in_flight == 0


def test_refused_upload_is_never_read(make_env, testdata):
    api = make_env(inference_concurrency=1, verify_max_queue=0)
    enroll(api, "P502", testdata / "faces/obama.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"insured_id\"\r\n\r\nP502\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"c.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + capture + f"\r\n--{boundary}--\r\n".encode()
    read = threading.Event()

    def stream():
        read.set()
        yield body

    headers = {**api.h("terminal"), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    ticket = api.rt.admission.try_admit("verify")  # the only place is taken
    try:
        r = api.client.post("/v1/verify", content=stream(), headers=headers)
    finally:
        ticket.leave()
    assert_overloaded(r)
    assert not read.is_set()
    # with the place free the same request is read and answered
    r = api.client.post("/v1/verify", content=stream(), headers=headers)
    assert r.status_code == 200 and read.is_set() and r.json()["decision"] == "match"


def test_photo_uploads_are_admitted_like_verifications(make_env, testdata):
    api = make_env(inference_concurrency=1, verify_max_queue=0)
    ticket = api.rt.admission.try_admit("verify")
    try:
        r = api.client.put("/v1/insured/P503/photos", headers=api.h("ingest"),
                           files=[("photos", ("o.jpg", images.read(testdata / "faces/obama.jpg"), "image/jpeg"))])
    finally:
        ticket.leave()
    assert_overloaded(r)
    enroll(api, "P503", testdata / "faces/obama.jpg")  # admitted once there is room


def test_every_gated_route_exists(make_env):
    """A renamed face-work route must not silently escape admission: each gated template is a route."""
    api = make_env()
    for method, template in GATED:
        path = template.format(insured_id="P1", org_id="CLINIC-A", staff_id="S1")
        r = api.client.request(method, path, files={"x": ("x", b"x")}, follow_redirects=False)
        assert r.status_code not in (404, 405), (method, template, r.status_code)
