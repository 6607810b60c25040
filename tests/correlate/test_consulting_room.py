"""无就诊记录结算 and the consulting-room camera: three outpatient settlements of the insured person
without a visit record. At the claimed visit time the consulting room shows the insured person with
the doctor (the level stays as the data set it), the doctor alone (raised), or the doctor with a
stranger (raised). Real models, real SeaweedFS, consulting-room scenes rendered by camsim and written
as the recorder writes segments, records in through POST /v1/claims, the checks through
POST /v1/claims/check, the inspector's case page in Chinese."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from camsim import identities as ids
from camsim.counter import consulting_scene, render_counter
from correlate.claim_rules import rule
from ingest.cameras import add_camera
from storage.db import session_scope
from storage.models import Camera, StaffMember, StaffTemplate
from tests.correlate import scenarios as sc
from tests.correlate.conftest import SETTINGS, make_world
from tests.replay.segmenter import make_segments

pytestmark = pytest.mark.slow

ORG = "CLINIC-A"
DOCTOR = "bald_05"
SLOT_S = 2000.0


@pytest.fixture
def room(make_settings, shared_pipeline, testdata, tmp_path):  # noqa: F811
    w = make_world(make_settings(f"sqlite:///{tmp_path / 'r.db'}", **SETTINGS), shared_pipeline, testdata, tmp_path)
    yield w
    w.client.__exit__(None, None, None)
    w.rt.close()


def _enrol_doctor(w, testdata) -> None:
    pipe = w.rt.checker.pipeline
    face = pipe.analyze_closeup(ids.portrait(ids.get(DOCTOR, str(testdata))), max_embed=1)[0]
    emb = np.asarray(face.embedding if face.embedding is not None else pipe.recognizer.embed(face.aligned), np.float32)
    with session_scope(w.rt.sessions) as db:
        m = StaffMember(org_id=ORG, staff_id="D-003", name="Dr Zhao", role="doctor")
        db.add(m)
        db.flush()
        db.add(StaffTemplate(member_id=m.id, org_id=ORG, photo_key="test/staff/doctor.jpg", photo_sha256="d" * 64,
                             model=pipe.model_id, dim=int(emb.shape[0]), embedding=emb.tobytes(), source="api"))


def _settlement(i: int, at) -> dict:
    return {"infno": "2207", "fixmedins_code": ORG, "input": {"setlinfo": {
        "setl_id": f"S-ROOM-{i}", "mdtrt_id": f"MD-ROOM-{i}", "psn_no": "P-OBAMA", "med_type": "11",
        "setl_time": at.isoformat(), "medfee_sumamt": "86.00"}}}


def test_the_consulting_room_sets_the_level_of_a_settlement_without_a_visit(room, testdata):
    from tests.web.conftest import add_users
    from tests.web.test_auth import login

    w = room
    r_no = rule("claims_no_visit")
    before, after = r_no.thresholds["footage_before_s"], r_no.thresholds["footage_after_s"]
    _enrol_doctor(w, testdata)
    fp0 = render_counter(consulting_scene(DOCTOR, None, seed=1))
    with session_scope(w.rt.sessions) as db:
        add_camera(db, camera_id="CAM-R", org_id=ORG, name="内科诊室", role="consulting_room",
                   url="rtsp://10.0.0.7/stream1", covers=["A03"])
        db.get(Camera, "CAM-R").zones = [{"kind": k, "points": pts, "label": k} for k, pts in fp0.zones.items()]
    # the insured person (obama) with the doctor; the doctor alone; a stranger (biden) with the doctor
    scenes = {"seen": "obama", "alone": None, "stranger": "biden"}
    messages, setl_of = [], {}
    for i, (name, patient) in enumerate(scenes.items()):
        fp = render_counter(consulting_scene(DOCTOR, patient, seed=i + 1))
        start = sc.at(i * SLOT_S)
        with session_scope(w.rt.sessions) as db:
            make_segments(db, w.rt.store, w.settings.bucket_footage, fp, org_id=ORG, camera_id="CAM-R",
                          start=start, total_s=before + after + 20, segment_s=20.0, workdir=w.tmp)
        at = start + timedelta(seconds=before + 10)
        messages.append(_settlement(i, at))
        setl_of[name] = f"S-ROOM-{i}"
    r = w.client.post("/v1/claims", json=messages, headers=w.h("ingest"))
    assert r.status_code == 200, r.text
    r = w.client.post("/v1/claims/check", json={"org_id": ORG, "start": sc.at(0).isoformat(),
                                                "end": sc.at(len(scenes) * SLOT_S).isoformat()},
                      headers=w.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["consulting_rooms_analysed"] == 3
    flags = {f["settlement_id"]: f for f in w.flags(rule="claims_no_visit")}
    got = {name: flags[sid] for name, sid in setl_of.items()}
    room_of = {name: f["evidence"]["consulting_room"] for name, f in got.items()}
    assert {n: x["outcome"] for n, x in room_of.items()} == {
        "seen": "patient_seen_insured", "alone": "nobody_but_staff", "stranger": "someone_else"}
    assert got["seen"]["level"] == r_no.level
    assert got["alone"]["level"] == got["stranger"]["level"] == r_no.thresholds["raised_level"] > r_no.level
    # the doctor is recognised as staff, not taken for a patient
    assert room_of["alone"]["staff"] >= 1 and room_of["alone"]["patients"] == 0
    for name, f in got.items():  # the footage of the claimed visit is linked and held
        assert room_of[name]["camera_id"] == "CAM-R"
        assert [c["camera_id"] for c in f["evidence"]["cameras"]] == ["CAM-R"]
    # a second run raises nothing new and does not look at the footage again
    r = w.client.post("/v1/claims/check", json={"org_id": ORG, "start": sc.at(0).isoformat(),
                                                "end": sc.at(len(scenes) * SLOT_S).isoformat()},
                      headers=w.h("admin"))
    assert r.json()["counts"].get("consulting_rooms_analysed", 0) == 0
    # the inspector's case page says what the room showed, in Chinese
    add_users(w.rt)
    assert login(w.client, "insp-north").status_code == 303
    texts = {"seen": "见到参保人本人就诊", "alone": "诊室内仅有医务人员，未见患者", "stranger": "就诊者不是参保人本人"}
    for name, f in got.items():
        page = w.client.get(f"/flags/{f['id']}")
        assert page.status_code == 200
        assert "诊室录像核验" in page.text and texts[name] in page.text, name
        assert all(t not in page.text for n, t in texts.items() if n != name)
