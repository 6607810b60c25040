"""A replayed face-pay capture is a signal for the settlement it was sent for (issue 18): the rules raise
``face_pay_replayed``; a settlement whose terminal's liveness check failed is a failed face check."""
from __future__ import annotations

from datetime import timedelta

import cv2
import pytest

from api.web.i18n import Translator
from correlate.levels import DEFAULT_LEVELS
from storage.db import session_scope
from storage.models import CaptureAttempt, utcnow
from storage.retention import run_retention
from tests.api import images
from tests.correlate import scenarios as sc
from tests.correlate.conftest import SETTINGS, make_world


@pytest.fixture
def world_replays(make_settings, shared_pipeline, testdata, tmp_path):
    w = make_world(make_settings(f"sqlite:///{tmp_path / 'w.db'}", verify_replay_window_s=3600, **SETTINGS),
                   shared_pipeline, testdata, tmp_path)
    yield w
    w.client.__exit__(None, None, None)
    w.rt.close()


def _send(w, image: bytes, ref: str, **fields):
    return w.client.post("/v1/verify", data={"insured_id": "P-OBAMA", "settlement_ref": ref, **fields},
                         files={"image": ("c.jpg", image, "image/jpeg")}, headers=w.h("terminal"))


@pytest.mark.slow
def test_a_replayed_capture_flags_its_settlement(world_replays, testdata):
    w = world_replays
    capture = images.read(testdata / "faces/obama2.jpg")
    first, second, third = (w.add_block("present", testdata) for _ in range(3))
    assert _send(w, capture, "R-1").json()["decision"] == "match"
    # the same picture re-encoded, sent for another settlement: refused, and a signal for that settlement
    again = images.jpeg(images.decode(capture), 75)
    r = _send(w, again, "R-2")
    assert r.status_code == 409 and r.json()["error"]["code"] == "replayed_capture"
    lf = images.jpeg(cv2.flip(images.decode(images.read(testdata / "faces/obama3.jpg")), 1), 90)
    assert _send(w, lf, "R-3", liveness_method="infrared", liveness_passed="false").json()["decision"] == \
        "liveness_failed"
    rows = [sc.settlement(f"R-{i + 1}", "P-OBAMA", "CLINIC-A", b.settled_at, terminal="CLINIC-A-T1")
            for i, b in enumerate((first, second, third))]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    flags = w.flags()
    replayed = {f["settlement_id"]: f for f in flags if f["rule"] == "face_pay_replayed"}
    assert set(replayed) == {"R-2"}
    f = replayed["R-2"]
    assert f["level"] == DEFAULT_LEVELS["face_pay_replayed"] == 4
    assert f["evidence"]["replays"][0]["kind"] == "near" and f["evidence"]["replays"][0]["replay_of"]
    failed = {f["settlement_id"]: f for f in flags if f["rule"] == "face_pay_failed"}
    assert set(failed) == {"R-3"} and failed["R-3"]["evidence"]["face_pay"]["decision"] == "liveness_failed"
    # the inspector's queue says it in Chinese: the flag's type and its reason
    zh = Translator("zh", "Asia/Shanghai")
    assert zh.flag_type("face_pay_replayed") == "刷脸抓拍重放"
    assert zh.reason(f["reason"], f["evidence"]) == "为结算 R-2 发送的 1 张刷脸抓拍重复了此前的抓拍（重放）"
    assert zh.decision("liveness_failed") == "活体检测未通过"

    # past the replay window the fingerprints are erased by the retention run; the attempts stay
    res = run_retention(w.rt.sessions, w.rt.store, w.settings, now=utcnow() + timedelta(hours=2))
    assert res.counts["capture_fingerprints_erased"] == 2
    with session_scope(w.rt.sessions) as db:
        kept = db.query(CaptureAttempt).all()
        assert len(kept) == 3 and all(a.embedding is None and a.phash is None for a in kept)
