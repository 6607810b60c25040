"""Rules across settlements and face-pay signals: one face many cards, failed/absent face checks, a
face-pay capture that is not the person at the counter, repeated footage_missing."""
from __future__ import annotations

from tests.correlate import scenarios as sc


def _verify(w, testdata, insured: str, photo: str, ref: str) -> dict:
    with open(testdata / "faces" / photo, "rb") as fh:
        r = w.client.post("/v1/verify", data={"insured_id": insured, "settlement_ref": ref},
                          files={"image": (photo, fh, "image/jpeg")}, headers=w.h("terminal"))
    assert r.status_code == 200, r.text
    return r.json()


def _by(flags, rule):
    return {f["settlement_id"]: f for f in flags if f["rule"] == rule}


def test_one_face_settling_for_three_insured_people(world_sqlite, testdata):
    w = world_sqlite
    rows = []
    for i, insured in enumerate(["P-OBAMA", "P-2", "P-3"]):
        b = w.add_block("impostor", testdata)
        rows.append(sc.settlement(f"M-{i}", insured, "CLINIC-A", b.settled_at, terminal="CLINIC-A-T1"))
    assert w.post(rows[:2]).status_code == 200
    w.run_jobs()
    assert not _by(w.flags(), "one_face_many_cards")  # two cards: not yet
    assert w.post(rows[2:]).status_code == 200
    w.run_jobs()
    many = list(_by(w.flags(), "one_face_many_cards").values())
    assert len(many) == 1
    f = many[0]
    assert f["level"] == 4 and sorted(f["settlement_ids"]) == ["M-0", "M-1", "M-2"]
    assert f["evidence"]["count"] == 3 and sorted(f["evidence"]["insured_ids"]) == ["P-2", "P-3", "P-OBAMA"]
    assert all(x["crop_url"] for x in f["evidence"]["faces"])
    # P-OBAMA is enrolled: the same footage is an impersonation of that card as well
    assert _by(w.flags(), "impersonation")["M-0"]["level"] == 4


def test_face_pay_signals(world_sqlite, testdata):
    w = world_sqlite
    imp = w.add_block("impostor", testdata)
    present = w.add_block("present", testdata)
    present2 = w.add_block("present", testdata)
    v_fail = _verify(w, testdata, "P-OBAMA", "biden.jpg", "F-1")
    assert v_fail["decision"] == "mismatch"
    v_other = _verify(w, testdata, "P-OBAMA", "biden.jpg", "F-2")
    rows = [sc.settlement("F-1", "P-OBAMA", "CLINIC-A", imp.settled_at, terminal="CLINIC-A-T1",
                          verification_id=v_fail["verification_id"]),
            # found through the verification's settlement_ref, not named in the row
            sc.settlement("F-2", "P-OBAMA", "CLINIC-A", present.settled_at, terminal="CLINIC-A-T1"),
            sc.settlement("F-3", "P-OBAMA", "CLINIC-A", present2.settled_at, terminal="CLINIC-A-T1")]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    flags = w.flags()
    # impersonation whose face check failed too: one flag, level 5, with the capture as evidence
    imp_f = _by(flags, "impersonation")["F-1"]
    assert imp_f["level"] == 5 and imp_f["evidence"]["face_pay"]["decision"] == "mismatch"
    assert "F-1" not in _by(flags, "face_pay_failed")
    cap = w.client.get(imp_f["evidence"]["face_pay"]["capture_url"], headers=w.h("admin"))
    assert cap.status_code == 200 and cap.content[:2] == b"\xff\xd8"
    assert w.client.get(imp_f["evidence"]["face_pay"]["capture_url"], headers=w.h("inspector_south")).status_code == 404
    # the insured is at the counter but the face-pay capture shows someone else
    assert _by(flags, "face_pay_failed")["F-2"]["level"] == 3
    cm = _by(flags, "face_pay_capture_mismatch")["F-2"]
    assert cm["level"] == 4 and cm["evidence"]["faces"][0]["capture_score"] < cm["evidence"]["threshold"]
    assert v_other["verification_id"] == cm["evidence"]["face_pay"]["verification_id"]
    # no face check at all where the organisation uses face-pay: a reminder
    assert _by(flags, "face_pay_absent")["F-3"]["level"] == 2
    assert "F-3" not in _by(flags, "impersonation") and "F-3" not in _by(flags, "ghost_visit")


def test_repeated_footage_missing_at_one_organisation(world_sqlite, testdata):
    w = world_sqlite
    gaps = [w.gap_block() for _ in range(3)]
    w.add_block("ghost", testdata)  # the recorder came back: the gaps are final
    rows = [sc.settlement(f"G-{i}", "P-OBAMA", "CLINIC-A", b.settled_at, counter="counter-1")
            for i, b in enumerate(gaps)]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    flags = w.flags()
    assert set(_by(flags, "footage_missing")) == {"G-0", "G-1", "G-2"}
    rep = [f for f in flags if f["rule"] == "repeated_footage_missing"]
    assert len(rep) == 1 and rep[0]["level"] == 3 and sorted(rep[0]["settlement_ids"]) == ["G-0", "G-1", "G-2"]
    # a counter no camera covers is not footage_missing-flagged (nothing to compare), only noted
    r = w.post([sc.settlement("N-1", "P-OBAMA", "CLINIC-A", sc.at(5), counter="back-office")])
    assert r.status_code == 200
    w.run_jobs()
    assert "N-1" not in _by(w.flags(), "footage_missing")
