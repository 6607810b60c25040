"""Face-pay decisions per face-size band, with an uncertain band between two thresholds (issue 15)."""
from __future__ import annotations

import cv2
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from kernel.settings import Settings
from storage.db import session_scope
from storage.models import AuditEvent, Verification
from tests.api import images
from tests.api.conftest import start_env
from tests.api.test_verify import enroll, verify


@pytest.fixture
def band_api(tmp_path, make_settings, shared_pipeline):
    """An API whose terminal band calls nothing a match below 0.99 and nothing a mismatch above 0.2."""
    envs = []

    def make(**overrides):
        env = start_env(make_settings(f"sqlite:///{tmp_path / f'api{len(envs)}.db'}", **overrides), shared_pipeline)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.client.__exit__(None, None, None)
        env.rt.close()


def test_score_between_the_thresholds_is_uncertain_and_recorded_with_its_band(band_api, testdata):
    api = band_api(match_thresholds={"yunet_sface": {"terminal": (0.2, 0.99)}})
    enroll(api, "P200", testdata / "faces/obama.jpg")
    r = verify(api, "P200", images.read(testdata / "faces/obama2.jpg"), settlement_ref="S-UNC-1")
    assert r.status_code == 200, r.text
    body = r.json()
    # the same person scores ~0.7: neither a match (< 0.99) nor a mismatch (>= 0.2)
    assert body["decision"] == "uncertain", body
    assert body["band"] == "terminal" and body["threshold"] == 0.99 and body["threshold_lower"] == 0.2
    assert 0.2 <= body["score"] < 0.99
    assert "another capture" in body["reason"]
    with session_scope(api.rt.sessions) as db:
        v = db.get(Verification, body["verification_id"])
        assert (v.decision, v.band, v.threshold, v.threshold_lower) == ("uncertain", "terminal", 0.99, 0.2)
        ev = db.scalar(select(AuditEvent).where(AuditEvent.subject == f"verification:{v.id}"))
        assert ev.outcome == "uncertain"
    # the other person is still a mismatch below the lower threshold
    other = verify(api, "P200", images.read(testdata / "faces/biden.jpg")).json()
    assert other["decision"] == "mismatch" and other["score"] < 0.2 and other["band"] == "terminal"


def test_default_thresholds_depend_on_the_face_size(band_api, testdata, shared_pipeline):
    api = band_api()
    enroll(api, "P201", testdata / "faces/obama.jpg")
    close = verify(api, "P201", images.read(testdata / "faces/obama2.jpg")).json()
    assert close["decision"] == "match" and close["band"] == "terminal"
    assert (close["threshold_lower"], close["threshold"]) == (0.30, 0.47)
    # the same capture with the face about 100 px wide, JPEG-compressed: the counter band's thresholds
    img = images.decode(images.read(testdata / "faces/obama2.jpg"))
    width = shared_pipeline.analyze(img)[0].face.width
    scale = 100.0 / width
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    far = verify(api, "P201", images.jpeg(small, 70)).json()
    assert far["band"] == "counter", far
    assert (far["threshold_lower"], far["threshold"]) == (0.30, 0.50)
    assert far["decision"] in ("match", "uncertain", "mismatch")
    assert far["decision"] == ("match" if far["score"] >= 0.50 else "uncertain" if far["score"] >= 0.30 else "mismatch")
    with session_scope(api.rt.sessions) as db:
        assert db.get(Verification, far["verification_id"]).band == "counter"


def test_a_single_match_threshold_replaces_the_bands(band_api, testdata):
    api = band_api(match_threshold=0.5)
    enroll(api, "P202", testdata / "faces/obama.jpg")
    body = verify(api, "P202", images.read(testdata / "faces/obama2.jpg")).json()
    assert body["decision"] == "match" and body["threshold"] == body["threshold_lower"] == 0.5


def test_decisions_without_a_score_record_no_band(band_api, testdata):
    api = band_api()
    enroll(api, "P203", testdata / "faces/obama.jpg")
    body = verify(api, "P203", images.empty_room()).json()
    assert body["decision"] == "no_face" and body["band"] is None and body["threshold_lower"] is None


@pytest.mark.parametrize("table, words", [
    ({"yunet_sface": {"near": (0.1, 0.2)}}, "unknown band 'near'"),
    ({"yunet_sface": {"counter": (0.5, 0.4)}}, "lower <= upper"),
    ({"yunet_sface": {"far": (0.1, 1.5)}}, "lower <= upper"),
])
def test_bad_threshold_tables_are_refused_with_a_reason(table, words):
    with pytest.raises(ValidationError) as e:
        Settings(match_thresholds=table)
    assert words in str(e.value)
