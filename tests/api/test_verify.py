"""Face verification as a face-pay terminal calls it."""
from __future__ import annotations

import time

from sqlalchemy import select

from api.keys import revoke_terminal
from storage.db import session_scope
from storage.models import Verification
from tests.api import images


def enroll(api, insured_id, *paths):
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
    r = api.client.put(f"/v1/insured/{insured_id}/photos", files=files, headers=api.h("ingest"))
    assert r.status_code == 200, r.text


def verify(api, insured_id, data, who="terminal", **form):
    return api.client.post("/v1/verify", data={"insured_id": insured_id, **form},
                           files={"image": ("capture.jpg", data, "image/jpeg")}, headers=api.h(who))


def test_same_person_matches_and_is_recorded_with_its_capture(api, testdata):
    enroll(api, "P100", testdata / "faces/obama.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")
    r = verify(api, "P100", capture, settlement_ref="S-2026-0001")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "match"
    # the terminal band's match threshold (settings.match_thresholds, calibrated on East Asian faces)
    assert body["score"] >= body["threshold"] == 0.47 and body["band"] == "terminal"
    assert body["model"]["pack"] == "yunet_sface"
    assert body["quality"]["usable"] is True
    with session_scope(api.rt.sessions) as db:
        v = db.get(Verification, body["verification_id"])
        assert (v.org_id, v.terminal_id, v.settlement_ref, v.decision) == (
            "CLINIC-A", "CLINIC-A-T1", "S-2026-0001", "match")
        assert abs(v.score - body["score"]) < 1e-3
        assert v.capture_expires_at > v.created_at
        key = v.capture_key
    # the capture is kept as evidence under the terminal's organisation
    assert key.startswith("captures/CLINIC-A/")
    assert api.rt.store.get_bytes(api.settings.bucket_biometrics, key) == capture


def test_another_person_is_a_mismatch(api_sqlite, testdata):
    api = api_sqlite
    enroll(api, "P101", testdata / "faces/obama.jpg")
    body = verify(api, "P101", images.read(testdata / "faces/biden.jpg")).json()
    assert body["decision"] == "mismatch"
    assert body["score"] < body["threshold"]


def test_group_photo_faceless_and_blurred_captures(api_sqlite, testdata):
    api = api_sqlite
    enroll(api, "P102", testdata / "faces/obama.jpg")
    group = verify(api, "P102", images.read(testdata / "scenes/bald_guys.jpg")).json()
    assert group["decision"] == "multiple_faces" and group["faces_found"] > 2
    empty = verify(api, "P102", images.empty_room()).json()
    assert empty["decision"] == "no_face" and empty["score"] is None
    blur = verify(api, "P102", images.blurred(images.read(testdata / "faces/obama2.jpg"))).json()
    assert blur["decision"] == "low_quality", blur
    assert "blurry" in blur["quality"]["reasons"]


def test_not_enrolled(api_sqlite, testdata):
    api = api_sqlite
    body = verify(api, "NOBODY1", images.read(testdata / "faces/obama2.jpg")).json()
    assert body["decision"] == "not_enrolled" and body["score"] is None


def test_best_score_over_several_templates(api_sqlite, testdata):
    api = api_sqlite
    enroll(api, "P103", testdata / "faces/obama.jpg", testdata / "faces/obama3.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")
    both = verify(api, "P103", capture).json()["score"]
    enroll(api, "P104", testdata / "faces/obama3.jpg")
    one = verify(api, "P104", capture).json()["score"]
    assert both >= one


def test_revoked_and_unknown_keys_are_refused(api_sqlite, testdata):
    api = api_sqlite
    enroll(api, "P105", testdata / "faces/obama.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")
    assert verify(api, "P105", capture).status_code == 200
    with session_scope(api.rt.sessions) as db:
        revoke_terminal(db, "CLINIC-A-T1")
    time.sleep(api.settings.api_key_cache_s)  # a checked key is trusted this long (api/keys.py KeyCache)
    r = verify(api, "P105", capture)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    api.keys["made_up"] = "dck_0123456789abcdef_" + "x" * 43
    assert verify(api, "P105", capture, who="made_up").status_code == 401
    api.keys["garbage"] = "hello"
    assert verify(api, "P105", capture, who="garbage").status_code == 401
    # the data exchange's key is not a terminal key
    assert verify(api, "P105", capture, who="ingest").status_code == 403


def test_records_survive_a_restart_and_are_scoped_by_organisation(api, testdata, shared_pipeline):
    enroll(api, "P106", testdata / "faces/obama.jpg")
    vid = verify(api, "P106", images.read(testdata / "faces/obama2.jpg"), settlement_ref="S-9").json()[
        "verification_id"]
    api.client.__exit__(None, None, None)
    api.rt.close()
    # a new process on the same database and store
    from fastapi.testclient import TestClient

    from dualcheck.app import create_app

    app = create_app(api.settings, preload_models=False)
    app.state.runtime.__dict__["pipeline"] = shared_pipeline
    with TestClient(app) as client:
        r = client.get(f"/v1/verifications/{vid}", headers=api.h("terminal"))
        assert r.status_code == 200, r.text
        rec = r.json()
        assert (rec["decision"], rec["settlement_ref"], rec["insured_id"]) == ("match", "S-9", "P106")
        # another organisation's terminal cannot read it
        assert client.get(f"/v1/verifications/{vid}", headers=api.h("terminal_b")).status_code == 404
    app.state.runtime.close()
    with session_scope(api.rt.sessions) as db:
        assert db.scalar(select(Verification).where(Verification.id == vid)).decision == "match"
