"""Bed-hanging (挂床住院) end to end: a ward camera over four beds (one seen from a steep angle), three
inpatient days with checks at 08:00, 12:30 and 22:00 (infrared), real segments in a real SeaweedFS, the
admissions and discharges through the claims API, beds and their empty pictures through the beds API,
the checks through POST /v1/ward/check, real face models.

Why segments written at the check times instead of a recorder on a live camera: the scene spans three
days, and a test cannot record three days. tests/replay/segmenter.py remuxes the rendered H.264 into
fMP4 segments exactly as the recorder does (no transcoding) and indexes them at their real wall-clock
times, 4 s either side of each check time; the checks read them as they read any recorded footage.
The recorder itself, on the GStreamer camera, is tested in tests/ingest.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from camsim.ward import Moment, region, render_ward
from correlate import ward_schedule
from correlate.ward_checks import WardChecker, check_figures
from ingest.cameras import add_camera
from storage.db import session_scope
from storage.models import BedCheck, EvidenceHold, Flag, FlagEvent
from tests.correlate.conftest import SETTINGS, make_world
from tests.replay.segmenter import make_segments

ORG, CAM = "CLINIC-A", "CAM-W"
TZ = ZoneInfo("Asia/Shanghai")
DAYS = ("2026-11-03", "2026-11-04", "2026-11-05")
SLOTS = ("08:00", "12:30", "22:00")
PATIENTS = {"01": ("M-01", "P-OBAMA", "obama"), "02": ("M-02", "P-02", "biden"), "03": ("M-03", "P-03", "bald_03"),
            "04": ("M-04", "P-04", "t1_2")}
ABSENT_02 = {("2026-11-04", s) for s in SLOTS} | {("2026-11-05", "08:00"), ("2026-11-05", "12:30")}
AWAY_03 = {("2026-11-04", "12:30")}  # the bathroom, an examination: one check


def local(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=TZ)


def moment(day: str, slot: str) -> Moment:
    night = slot == "22:00"
    beds, turned = [], []
    for bed, (_, _, who) in PATIENTS.items():
        if (bed == "02" and (day, slot) in ABSENT_02) or (bed == "03" and (day, slot) in AWAY_03):
            turned.append(bed)
            continue
        view = "away" if (bed == "03" and night) else "front"  # asleep facing the wall: no face, still there
        beds.append((bed, who, view))
    return Moment(beds=tuple(beds), light="night" if night else "day", turned_back=tuple(turned))


class Ward:
    def __init__(self, w):
        self.w = w
        with session_scope(w.rt.sessions) as db:
            add_camera(db, camera_id=CAM, org_id=ORG, name="内科3病区 摄像头", role="ward", url="rtsp://10.0.0.9/ward")

    def record(self, m: Moment, at: datetime) -> None:
        fp = render_ward(m)
        with session_scope(self.w.rt.sessions) as db:
            make_segments(db, self.w.rt.store, self.w.settings.bucket_footage, fp, org_id=ORG, camera_id=CAM,
                          start=at - timedelta(seconds=4), total_s=8.0, segment_s=8.0, workdir=self.w.tmp)

    def claims(self, msgs) -> None:
        r = self.w.client.post("/v1/claims", json=msgs, headers=self.w.h("admin"))
        assert r.status_code == 200, r.text

    def put_bed(self, bed: str, dept: str = "NK", **kw):
        body = {"org_id": ORG, "bed": bed, "dept_codg": dept, "camera_id": CAM, **kw}
        if "region" not in body:
            body["region"] = region(bed)
        return self.w.client.put("/v1/beds", json=body, headers=self.w.h("admin"))


def admission(mdtrt: str, psn: str, bed: str, dept: str = "NK") -> dict:
    return {"infno": "2401", "fixmedins_code": ORG, "input": {"mdtrtinfo": {
        "mdtrt_id": mdtrt, "psn_no": psn, "med_type": "21", "begntime": "2026-11-03 07:00:00", "ipt_no": "ZY" + mdtrt,
        "adm_dept_codg": dept, "adm_dept_name": "内科", "wardarea_bed": bed}}}


def discharge(mdtrt: str, psn: str) -> dict:
    return {"infno": "2402", "fixmedins_code": ORG, "input": {"dscginfo": {
        "mdtrt_id": mdtrt, "psn_no": psn, "endtime": "2026-11-05 23:30:00", "dscg_way": "1"}}}


@pytest.fixture
def ward(db_url, make_settings, shared_pipeline, testdata, tmp_path):  # noqa: F811
    w = make_world(make_settings(db_url, **SETTINGS), shared_pipeline, testdata, tmp_path)
    yield Ward(w)
    w.client.__exit__(None, None, None)
    w.rt.close()


def _checks(w, mdtrt: str) -> dict[tuple[str, str], BedCheck]:
    with session_scope(w.rt.sessions) as db:
        rows = db.scalars(select(BedCheck).where(BedCheck.mdtrt_id == mdtrt)).all()
        db.expunge_all()
    return {(c.day, c.slot): c for c in rows}


def test_a_patient_absent_for_days_is_flagged_and_one_away_for_a_check_is_not(ward):
    wd, w = ward, ward.w
    # the bed map: three beds of 内科 (NK), the steep one mapped for any department; one more (05) over the
    # steep bed for the surgical ward (WK), never given an empty picture
    for bed in ("01", "02", "03"):
        assert wd.put_bed(bed).status_code == 200
    assert wd.put_bed("04", dept="").status_code == 200
    r = wd.put_bed("05", dept="WK", region=region("04"))
    assert r.status_code == 200, r.text
    beds = {b["bed"]: b for b in w.client.get("/v1/beds", headers=w.h("admin")).json()["beds"]}
    assert set(beds) == {"01", "02", "03", "04", "05"} and beds["01"]["reference"] == {"day": None, "night": None}

    # the empty ward, recorded the afternoon and night before; the operator takes each bed's pictures there
    empty_day, empty_night = local("2026-11-02", "15:00"), local("2026-11-02", "23:00")
    wd.record(Moment(light="day"), empty_day)
    wd.record(Moment(light="night"), empty_night)
    for bed in ("01", "02", "03", "04"):
        for at, light in ((empty_day, "day"), (empty_night, "night")):
            r = w.client.put(f"/v1/beds/{beds[bed]['id']}/reference", json={"at": at.isoformat()}, headers=w.h("admin"))
            assert r.status_code == 200, r.text
            assert r.json()["reference"][light]["at"] is not None
    # each check time of the three days, as the camera saw the ward
    for day in DAYS:
        for slot in SLOTS:
            wd.record(moment(day, slot), local(day, slot))
    # a picture with a patient in the bed is no empty bed
    r = w.client.put(f"/v1/beds/{beds['01']['id']}/reference", json={"at": local("2026-11-03", "08:00").isoformat()},
                     headers=w.h("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "not_empty", r.text

    # P-OBAMA (bed 01) is enrolled by the world; the others have no enrolled photo
    msgs = [admission(m, p, b, dept="NK") for b, (m, p, _) in PATIENTS.items()]
    msgs += [admission("M-05", "P-05", "05", dept="WK"), admission("M-06", "P-06", "99")]
    msgs += [discharge(m, p) for m, p, _ in PATIENTS.values()] + [discharge("M-05", "P-05"), discharge("M-06", "P-06")]
    wd.claims(msgs)

    # the run of the morning of the third day: bed 02 empty since the day before, 4 checks over 2 days
    checker = WardChecker(settings=w.settings, store=w.rt.store, pipeline=w.rt.checker.pipeline, legal=w.rt.legal_holds)
    with session_scope(w.rt.sessions) as db:
        early = checker.run(db, org_ids=[ORG], now=local("2026-11-05", "10:00"))
    assert early.checks == 5 * 7 and len(early.flags) == 1
    with session_scope(w.rt.sessions) as db:
        assert len(db.scalar(select(Flag)).evidence["absent_checks"]) == 4
    # and the run after the stay: the same flag takes in the fifth absent check and the present one after it
    r = w.client.post("/v1/ward/check", json={"org_id": ORG}, headers=w.h("admin"))
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["no_bed"] == ["M-06"] and rep["checks"] == 5 * 2 and rep["flags"] == early.flags

    # the absent patient: flagged, with the days and the held frames
    c2 = _checks(w, "M-02")
    assert {k for k, c in c2.items() if c.outcome == "absent"} == ABSENT_02, {k: (c.outcome, c.why, c.changed)
                                                                              for k, c in c2.items()}
    assert {k for k, c in c2.items() if c.outcome == "present"} == {(d, s) for d in DAYS for s in SLOTS} - ABSENT_02
    with session_scope(w.rt.sessions) as db:
        flags = db.scalars(select(Flag).where(Flag.type == "bed_hanging")).all()
        assert len(flags) == 1
        f = flags[0]
        assert (f.level, f.rule_version, f.status) == (4, "bed_hanging@1", "open")
        assert [e.action for e in db.scalars(select(FlagEvent).where(FlagEvent.flag_id == f.id))] == [
            "created", "evidence_added"]
        ev = f.evidence
        assert ev["admission"]["mdtrt_id"] == "M-02" and ev["admission"]["bed"] == "02"
        assert ev["days"] == ["2026-11-04", "2026-11-05"]
        assert sorted(ev["absent_checks"]) == sorted(c.id for k, c in c2.items() if k in ABSENT_02)
        assert ev["present_same_days"] == [c2[("2026-11-05", "22:00")].id]
        # each check's figures beside the thresholds: the empty bed's small change, the sleeper's large one
        figs = {f["id"]: f for f in ev["checks"]}
        assert set(figs) == set(ev["absent_checks"]) | set(ev["present_same_days"])
        limit = ev["thresholds"]["occupied_share"]
        for cid in ev["absent_checks"]:
            fig = figs[cid]
            assert (fig["outcome"] == "absent" and fig["occupied_share"] < limit
                    and fig["brightness"] > ev["thresholds"]["dark_limit"])
            assert fig["face"] == "none" and fig["face_band"] is None and "face_score" not in fig
        back = figs[ev["present_same_days"][0]]
        assert back["light"] == "night" and back["occupied_share"] >= limit and back["face"] == "other"
        assert back["face_band"] is None  # P-02 has no enrolled photo: nothing to compare, no band
        holds = db.scalars(select(EvidenceHold).where(EvidenceHold.flag_id == f.id)).all()
        assert len(holds) == 6 and {h.camera_id for h in holds} == {CAM} and all(h.released_at is None for h in holds)
        held_at = sorted(h.start_at + (h.end_at - h.start_at) / 2 for h in holds)
        assert held_at == sorted(c.at for k, c in c2.items() if k in ABSENT_02 or k == ("2026-11-05", "22:00"))
        flag_id = f.id
    # the kept frame of an absent check is there to look at
    first = c2[("2026-11-04", "08:00")]
    img = w.client.get(f"/v1/ward/checks/{first.id}/frame.jpg", headers=w.h("admin"))
    assert img.status_code == 200 and img.content[:2] == b"\xff\xd8"
    assert w.client.get(f"/v1/ward/checks/{first.id}/frame.jpg", headers=w.h("clinic_a")).status_code == 404

    # away for one check: that check is absent, nobody is flagged
    c3 = _checks(w, "M-03")
    assert {k for k, c in c3.items() if c.outcome != "present"} == AWAY_03
    # asleep facing the wall at night (infrared, no face): present by the bed itself
    assert all(c3[(d, "22:00")].outcome == "present" and c3[(d, "22:00")].light == "night"
               and c3[(d, "22:00")].face == "none" for d in DAYS)
    # the enrolled patient's face is seen in bed; the steep bed is judged like the others
    c1, c4 = _checks(w, "M-01"), _checks(w, "M-04")
    assert all(c.outcome == "present" for c in c1.values()) and all(c.outcome == "present" for c in c4.values())
    assert all(c1[(d, s)].face == "insured" for d in DAYS for s in ("08:00", "12:30"))
    with session_scope(w.rt.sessions) as db:
        seen = check_figures(db.get(BedCheck, c1[("2026-11-03", "08:00")].id), w.rt.checker.pipeline.threshold)
    assert seen["face_band"] == "match" and "face_score" not in seen and seen["brightness"] > 14
    # no empty picture of that bed: unknown, never a guess
    c5 = _checks(w, "M-05")
    assert len(c5) == 9 and {(c.outcome, c.why) for c in c5.values()} == {("unknown", "no_reference")}

    tl = w.client.get("/v1/admissions/M-02/timeline", params={"org_id": ORG}, headers=w.h("admin")).json()
    assert tl["slots"] == list(SLOTS) and [d["day"] for d in tl["days"]] == list(DAYS)
    assert [c["outcome"] for c in tl["days"][1]["cells"]] == ["absent"] * 3
    assert tl["days"][2]["cells"][2]["light"] == "night"
    inst = w.client.get("/v1/admissions/M-02/timeline", params={"org_id": ORG}, headers=w.h("clinic_a")).json()
    assert "face" not in inst["days"][0]["cells"][0]
    assert w.client.get("/v1/admissions/M-02/timeline", params={"org_id": ORG},
                        headers=w.h("pharm_b")).status_code == 404

    # a second run checks nothing twice and raises nothing twice
    again = w.client.post("/v1/ward/check", json={"org_id": ORG}, headers=w.h("admin")).json()
    assert again["checks"] == 0 and again["flags"] == [flag_id]
    with session_scope(w.rt.sessions) as db:
        assert len(db.scalars(select(Flag).where(Flag.type == "bed_hanging")).all()) == 1


def test_bad_bed_maps_are_refused_with_the_reason(ward):
    wd, w = ward, ward.w
    for bad, code in (({"region": [[0.1, 0.1], [0.2, 0.2]]}, "bed_invalid"),
                      ({"region": [[0.1, 0.1], [1.2, 0.2], [0.3, 0.5]]}, "bed_invalid"),
                      ({"region": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}, "bed_invalid"),
                      ({"camera_id": "CAM-A"}, "not_a_ward_camera"),
                      ({"extra": 1}, "invalid_body")):
        r = wd.put_bed("01", **bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (bad, r.text)
    r = wd.put_bed(" ", region=region("01"))
    assert r.status_code == 400 and "bed must be" in r.json()["error"]["reason"]
    assert wd.put_bed("01", camera_id="NOPE").status_code == 404
    assert w.client.put("/v1/beds", json={"org_id": ORG, "bed": "01", "camera_id": CAM, "region": region("01")},
                        headers=w.h("inspector_north")).status_code == 403
    r = wd.put_bed("01")
    assert r.status_code == 200
    bid = r.json()["id"]
    r = w.client.put(f"/v1/beds/{bid}/reference", json={"at": "2001-01-01T00:00:00Z"}, headers=w.h("admin"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_footage"
    r = w.client.put(f"/v1/beds/{bid}/reference", json={"at": "2026-11-02T15:00:00+08:00", "light": "dusk"},
                     headers=w.h("admin"))
    assert r.status_code == 400
    r = w.client.post("/v1/ward/check", json={"org": ORG}, headers=w.h("admin"))
    assert r.status_code == 400
    assert w.client.post("/v1/ward/check", json={"org_id": "PHARM-B"}, headers=w.h("inspector_north")).status_code == 404
    assert w.client.delete(f"/v1/beds/{bid}", headers=w.h("admin")).status_code == 200
    assert w.client.get("/v1/beds", headers=w.h("admin")).json()["beds"] == []


def test_the_workers_daily_run_checks_the_previous_day_once(ward):
    """The correlation worker's daily run (correlate/ward_schedule.py, run on every poll): after its time it
    checks the open admissions' beds at yesterday's check times; a second run checks nothing again."""
    wd, w = ward, ward.w
    w.settings.ward_schedule_days = 1
    ids = {}
    for bed in ("02", "03"):
        r = wd.put_bed(bed)
        assert r.status_code == 200, r.text
        ids[bed] = r.json()["id"]
    empty_day, empty_night = local("2026-11-02", "15:00"), local("2026-11-02", "23:00")
    wd.record(Moment(light="day"), empty_day)
    wd.record(Moment(light="night"), empty_night)
    for bed in ids:
        for at in (empty_day, empty_night):
            r = w.client.put(f"/v1/beds/{ids[bed]}/reference", json={"at": at.isoformat()}, headers=w.h("admin"))
            assert r.status_code == 200, r.text
    for slot in SLOTS:  # 4 November: bed 02 empty all day (ABSENT_02), the others in bed
        wd.record(moment("2026-11-04", slot), local("2026-11-04", slot))
    # M-02 still in hospital; M-03 went home on the evening of 3 November (not open on the 4th)
    early_out = {"infno": "2402", "fixmedins_code": ORG, "input": {"dscginfo": {
        "mdtrt_id": "M-03", "psn_no": "P-03", "endtime": "2026-11-03 18:00:00", "dscg_way": "1"}}}
    wd.claims([admission("M-02", "P-02", "02"), admission("M-03", "P-03", "03"), early_out])

    assert ward_schedule.run_due(w.rt.checker, now=local("2026-11-05", "00:30")) is None  # before 01:00
    rep = ward_schedule.run_due(w.rt.checker, now=local("2026-11-05", "02:00"))
    assert rep is not None and rep.admissions == 1 and rep.checks == 3 and rep.flags == []
    c2 = _checks(w, "M-02")
    assert {k: c.outcome for k, c in c2.items()} == {("2026-11-04", s): "absent" for s in SLOTS}
    assert _checks(w, "M-03") == {}
    # the next poll: nothing left to check, nothing written
    again = ward_schedule.run_due(w.rt.checker, now=local("2026-11-05", "02:10"))
    assert again.checks == 0 and set(_checks(w, "M-02")) == set(c2)
    # switched off: the worker leaves the beds alone
    w.settings.ward_schedule = False
    assert ward_schedule.run_due(w.rt.checker, now=local("2026-11-06", "02:00")) is None
    assert set(_checks(w, "M-02")) == set(c2)


def test_a_nurse_standing_beside_an_empty_bed_is_not_the_patient(ward):
    """The decoy of the occupancy test: someone standing at the bed's side (a nurse, a visitor) while the
    patient is away changes the bed's edge, not its middle; the check says absent, by day and in infrared.
    The same bed with the patient in it is present."""
    wd, w = ward, ward.w
    r = wd.put_bed("02")
    assert r.status_code == 200, r.text
    empty_day, empty_night = local("2026-11-02", "15:00"), local("2026-11-02", "23:00")
    wd.record(Moment(light="day"), empty_day)
    wd.record(Moment(light="night"), empty_night)
    for at in (empty_day, empty_night):
        assert w.client.put(f"/v1/beds/{r.json()['id']}/reference", json={"at": at.isoformat()},
                            headers=w.h("admin")).status_code == 200
    nurse = (("02", "t1_4"),)
    wd.record(Moment(light="day", turned_back=("02",), standing=nurse), local("2026-11-03", "08:00"))
    wd.record(Moment(beds=(("02", "biden", "front"),), light="day"), local("2026-11-03", "12:30"))
    wd.record(Moment(light="night", turned_back=("02",), standing=nurse), local("2026-11-03", "22:00"))
    wd.claims([admission("M-02", "P-02", "02")])
    checker = WardChecker(settings=w.settings, store=w.rt.store, pipeline=w.rt.checker.pipeline, legal=w.rt.legal_holds)
    with session_scope(w.rt.sessions) as db:
        assert checker.run(db, org_ids=[ORG], now=local("2026-11-04", "00:30")).checks == 3
    c = _checks(w, "M-02")
    got = {s: (c[("2026-11-03", s)].outcome, c[("2026-11-03", s)].light) for s in SLOTS}
    assert got == {"08:00": ("absent", "day"), "12:30": ("present", "day"), "22:00": ("absent", "night")}, {
        s: (x.outcome, x.changed) for (_, s), x in c.items()}
    assert c[("2026-11-03", "08:00")].face != "insured"  # whoever stands there is not taken for the patient
