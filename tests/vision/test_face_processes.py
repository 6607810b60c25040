"""Face work in model processes (vision/workers.py): the same faces, qualities and embeddings as in the
calling thread, refusals passed through, and a model process that dies costs one answer, not the service."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from vision.image import ImageRejected
from vision.workers import CaptureLimits, FaceProcesses, InProcessFaces, WorkerLost

pytestmark = pytest.mark.slow

IMAGES = ["faces/obama.jpg", "faces/obama2.jpg", "faces/obama3.jpg", "faces/biden.jpg",
          "faces/obama_partial_face.jpg", "scenes/dogs.jpg"]


@pytest.fixture(scope="module")
def processes(vision_settings):
    pool = FaceProcesses(vision_settings, CaptureLimits.from_settings(vision_settings), processes=2, nice=3)
    pool.start()
    yield pool
    pool.close()


def test_model_processes_give_the_same_faces_and_embeddings(processes, pipeline, vision_settings, testdata: Path):
    here = InProcessFaces(pipeline, CaptureLimits.from_settings(vision_settings))
    embedded = 0
    for rel in IMAGES:
        data = (testdata / rel).read_bytes()
        a, b = here.analyze_capture(data), processes.analyze_capture(data)
        assert [f.face.to_dict() for f in a] == [f.face.to_dict() for f in b], rel
        assert [f.quality.to_dict() for f in a] == [f.quality.to_dict() for f in b], rel
        for x, y in zip(a, b):
            assert (x.embedding is None) == (y.embedding is None), rel
            if x.embedding is not None:
                assert np.array_equal(x.embedding, y.embedding), rel  # bit-identical: scores cannot move
                embedded += 1
    assert embedded >= 4  # the portraits were embedded, so the comparison compared something


def test_model_processes_run_at_lower_priority(processes):
    pids = processes.start()
    assert len(pids) == 2 and os.getpid() not in pids
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert all(os.getpriority(os.PRIO_PROCESS, p) == min(19, mine + 3) for p in pids)


def test_refused_uploads_are_refused_the_same_way(processes, testdata: Path):
    jpeg = (testdata / "faces/obama.jpg").read_bytes()
    for data, code in [(b"", "empty"), (b"not an image at all", "not_an_image"), (jpeg[: len(jpeg) // 2], "truncated"),
                       (b"GIF89a" + b"\0" * 100, "not_an_image")]:
        with pytest.raises(ImageRejected) as e:
            processes.analyze_capture(data)
        assert e.value.code == code and e.value.reason


def test_a_killed_model_process_is_replaced_and_its_analyses_are_answered(vision_settings, testdata: Path):
    pool = FaceProcesses(vision_settings, CaptureLimits.from_settings(vision_settings), processes=1)
    try:
        pool.start()
        data = (testdata / "faces/obama2.jpg").read_bytes()
        expected = pool.analyze_capture(data)[0].embedding
        victim = pool.pids()[0]
        outcome: list = []

        def call():
            try:
                outcome.append(pool.analyze_capture(data)[0].embedding)
            except WorkerLost as e:
                outcome.append(e)

        # analyses queued in the one process: the kill lands during one of them; all are retried once
        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        os.kill(victim, signal.SIGKILL)
        for t in threads:
            t.join(120)
        assert len(outcome) == 6 and all(isinstance(o, np.ndarray) and np.array_equal(o, expected) for o in outcome)
        assert victim not in pool.pids()
    finally:
        pool.close()


def test_an_analysis_whose_processes_die_twice_is_refused_and_the_service_recovers(vision_settings, testdata: Path):
    pool = FaceProcesses(vision_settings, CaptureLimits.from_settings(vision_settings), processes=1)
    try:
        pool.start()
        data = (testdata / "faces/obama2.jpg").read_bytes()
        stop, outcome = threading.Event(), []

        def killer():  # every model process dies as soon as it appears, as if the capture killed it
            while not stop.is_set():
                for pid in pool.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                stop.wait(0.01)

        k = threading.Thread(target=killer)
        k.start()
        try:
            with pytest.raises(WorkerLost) as e:
                pool.analyze_capture(data)
        finally:
            stop.set()
            k.join()
        assert e.value.status == 503 and e.value.code == "face_service_restarting"
        outcome = pool.analyze_capture(data)
        assert outcome and outcome[0].embedding is not None
    finally:
        pool.close()
