"""POST /v1/verify with the captures analysed in model processes (face_processes, vision/workers.py): the same
answers as in the API's own threads, every answer recorded with its capture, and a model process that dies
is replaced without the terminals noticing more than one retry."""
from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy import func, select

from storage.db import session_scope
from storage.models import AuditEvent, Verification
from tests.api import images
from tests.api.conftest import start_env

pytestmark = pytest.mark.slow

CAPTURES = ["faces/obama2.jpg", "faces/obama3.jpg", "faces/biden.jpg", "faces/obama_partial_face.jpg"]
# peak RSS growth while six 98 MB-budget PNGs are verified at once: one decode at a time per model process
# (~125 MB) and the analysis of its 2048-px copy; the API process only holds the uploads
PER_PROCESS_CEILING_MB = 300
MODEL_FREE_API_CEILING_MB = 100
ANSWER = ("decision", "score", "threshold", "reason", "faces_found", "quality", "model")


@pytest.fixture
def envs(tmp_path, make_settings, shared_pipeline, testdata):
    made = []

    def make(name: str, **overrides):
        env = start_env(make_settings(f"sqlite:///{tmp_path / f'{name}.db'}", **overrides), shared_pipeline)
        env.testdata = testdata
        made.append(env)
        r = env.client.put("/v1/insured/P-PROC/photos", headers=env.h("ingest"),
                           files=[("photos", ("a.jpg", images.read(testdata / "faces/obama.jpg"), "image/jpeg"))])
        assert r.status_code == 200, r.text
        return env

    yield make
    for env in made:
        env.client.__exit__(None, None, None)
        env.rt.close()


def verify(env, rel: str):
    return env.client.post("/v1/verify", data={"insured_id": "P-PROC"}, headers=env.h("terminal"),
                           files={"image": ("c.jpg", images.read(env.testdata / rel), "image/jpeg")})


def test_answers_from_model_processes_equal_the_in_thread_answers(envs):
    threads, procs = envs("threads", face_processes=0), envs("procs", face_processes=2)
    decisions = []
    for rel in CAPTURES:
        a, b = verify(threads, rel), verify(procs, rel)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert {k: a.json()[k] for k in ANSWER} == {k: b.json()[k] for k in ANSWER}, rel
        decisions.append(b.json()["decision"])
    assert decisions[:3] == ["match", "match", "mismatch"]  # real decisions were compared
    # every answer of the model processes is recorded, with its capture and audit line
    with session_scope(procs.rt.sessions) as db:
        rows = db.scalars(select(Verification)).all()
        assert len(rows) == len(CAPTURES) and all(v.capture_sha256 and v.capture_key for v in rows)
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "verify")) == 4
    for v in rows:
        stored = procs.rt.store.get_bytes(procs.settings.bucket_biometrics, v.capture_key)
        assert stored in {images.read(procs.testdata / rel) for rel in CAPTURES}


def test_a_refused_upload_is_refused_by_the_model_processes_and_stores_nothing(envs):
    procs = envs("procs", face_processes=1)
    r = procs.client.post("/v1/verify", data={"insured_id": "P-PROC"}, headers=procs.h("terminal"),
                          files={"image": ("c.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "not_an_image"
    with session_scope(procs.rt.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Verification)) == 0
    # it looked like a JPEG, so it went to the store during the analysis: removed again with the refusal
    assert list(procs.rt.store.list_keys(procs.settings.bucket_biometrics, "captures/")) == []


def test_a_model_process_killed_between_requests_is_replaced(envs):
    procs = envs("procs", face_processes=1)
    first = verify(procs, "faces/obama2.jpg")
    assert first.status_code == 200
    [victim] = procs.rt.face_work.pids()
    os.kill(victim, signal.SIGKILL)
    again = verify(procs, "faces/obama2.jpg")
    assert again.status_code == 200, again.text
    assert (again.json()["decision"], again.json()["score"]) == (first.json()["decision"], first.json()["score"])
    assert victim not in procs.rt.face_work.pids()


def _kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split(field + ":")[1].split()[0])


def test_big_images_at_once_are_bounded_in_every_model_process(envs):
    """Six 16 Mpx PNGs just inside the per-image decoding budget, sent together: each model process decodes
    one at a time, and the API process decodes none (tests/api/test_memory_bombs.py: in the threads)."""
    procs = envs("procs", face_processes=2, verify_latency_budget_ms=120_000, verify_max_queue=64,
                 rate_limit_terminal="")
    img = np.zeros((4000, 4100, 3), np.uint8)
    img[::50] = 200
    near = images.png(img)
    del img
    assert verify(procs, "faces/obama2.jpg").status_code == 200  # both processes started and warm
    pids = [os.getpid(), *procs.rt.face_work.start()]
    before = {p: _kb(p, "VmRSS") for p in pids}
    for p in pids:
        with open(f"/proc/{p}/clear_refs", "w") as f:
            f.write("5")  # VmHWM (the peak) back to the current resident size

    def call(_):
        return procs.client.post("/v1/verify", data={"insured_id": "P-PROC"}, headers=procs.h("terminal"),
                                 files={"image": ("c.png", near, "image/png")})

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(call, range(6)))
    growth = {p: (_kb(p, "VmHWM") - before[p]) / 1024 for p in pids}
    print(f"\npeak RSS growth, API process then model processes (MB): {[round(g) for g in growth.values()]}")
    assert growth[os.getpid()] < MODEL_FREE_API_CEILING_MB
    assert all(g < PER_PROCESS_CEILING_MB for p, g in growth.items() if p != os.getpid())
    done = [r for r in responses if r.status_code == 200]
    assert len(done) >= 3 and {r.json()["decision"] for r in done} == {"no_face"}, [r.text[:200] for r in responses]
