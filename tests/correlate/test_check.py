"""One settlement against real footage: the outcome an inspector would expect for each scene, with the
evidence (face crops, scores, time range) and the holds on the footage."""
from __future__ import annotations

from sqlalchemy import select

from storage.db import session_scope
from storage.models import EvidenceHold, Settlement
from tests.correlate import scenarios as sc

EXPECTED_LEVEL = {"ghost_visit": 4, "impersonation": 4, "inconclusive": 1, "footage_missing": 2}


def test_each_scene_gets_its_outcome_flag_level_evidence_and_hold(world_sqlite, testdata):
    w = world_sqlite
    scenes = ["present", "ghost", "impostor", "back_turned", "blurred", "late_insured", "brief_impostor"]
    blocks = {name: w.add_block(name, testdata) for name in scenes}
    blocks["camera_off"] = w.gap_block()
    w.add_block("ghost", testdata)  # recording goes on after the gap: the gap is final
    rows = [sc.settlement(f"S-{name}", "P-OBAMA", "CLINIC-A", b.settled_at, terminal="CLINIC-A-T1",
                          counter="counter-1") for name, b in blocks.items()]
    r = w.post(rows)
    assert r.status_code == 200, r.text
    w.run_jobs()
    with session_scope(w.rt.sessions) as db:
        got = {s.id: (s.status, s.outcome) for s in db.scalars(select(Settlement))}
    for name, b in blocks.items():
        assert got[f"S-{name}"] == ("done", b.expected), (name, got[f"S-{name}"])

    flags = {f["settlement_id"]: f for f in w.flags() if f["rule"] in EXPECTED_LEVEL}
    assert "S-present" not in flags and "S-late_insured" not in flags
    for name, b in blocks.items():
        if b.expected == "verified_present":
            continue
        f = flags[f"S-{name}"]
        assert f["type"] == b.expected and f["level"] == EXPECTED_LEVEL[b.expected] and f["status"] == "open"
        cams = f["evidence"]["cameras"]
        assert cams[0]["camera_id"] == "CAM-A" and "replay_url" in cams[0]
    # impersonation: the impostor's face is kept as evidence with its (low) score, and can be fetched
    imp = flags["S-impostor"]
    faces = imp["evidence"]["faces"]
    assert faces and all(x["insured_score"] < imp["evidence"]["threshold"] for x in faces if x["insured_score"])
    crop = w.client.get(faces[0]["crop_url"], headers=w.h("admin"))
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg" and crop.content[:2] == b"\xff\xd8"
    assert imp["evidence"]["insured_photos"]  # reference to the enrolled photos it was compared with
    # the footage of every flagged window is held
    with session_scope(w.rt.sessions) as db:
        held = {h.flag_id for h in db.scalars(select(EvidenceHold).where(EvidenceHold.released_at.is_(None)))}
    assert {f["id"] for f in flags.values()} <= held
