"""无就诊记录结算: what the consulting-room camera shows at the claimed visit time.

A settlement without a visit record says a patient saw a doctor. The organisation's cameras of role
``consulting_room`` around that time are analysed with the counter check's own camera pass
(correlate/check.py ``Checker._camera``: sampled frames, change detection, face tracking, the insured
person's templates, the staff gallery that recognises the doctor), and the room says one of

* ``patient_seen_insured``: the insured person's face is seen (the visit happened as claimed);
* ``nobody_but_staff``: no patient at all, only staff (the doctor seeing nobody), or an empty room;
* ``someone_else``: patients' usable faces, none of them the insured person;
* ``cannot_tell``: someone there whose face never was usable (a back turned, too small);
* ``footage_missing``: no consulting-room camera, or no footage of the time.

``nobody_but_staff`` and ``someone_else`` raise the flag's level (the rule's ``consulting_raise_if``);
the others leave it as the data set it and are recorded on the flag. A doctor not enrolled as staff is
a face that is not the insured person's: ``someone_else`` (enrol the doctors, facepay/staff.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy.orm import Session

from correlate import footage as footage_mod
from correlate import zones as zones_mod
from correlate.check import Checker, _verdict
from correlate.window import CameraWindow
from facepay.templates import load_staff, load_templates
from kernel.timefmt import iso_z
from storage.models import Camera, utcnow
from vision.decision import MATCH, Thresholds

OUTCOMES = ("patient_seen_insured", "nobody_but_staff", "someone_else", "cannot_tell", "footage_missing")
MIN_COVERAGE = 0.2  # less of the window recorded than this: the footage is missing, not the patient
FACELESS_FRAMES = 2  # samples with someone on the patient's side whom no face explains: cannot tell


@dataclass
class RoomResult:
    outcome: str
    camera_id: str | None
    start: datetime
    end: datetime
    frames: int = 0
    coverage: float = 0.0
    patients: int = 0  # people tracked who are not staff
    staff: int = 0
    usable_faces: int = 0  # of the patients
    faceless_frames: int = 0

    def to_dict(self) -> dict:
        """For the flag's evidence: no scores (an institution sees it too)."""
        return {"outcome": self.outcome, "camera_id": self.camera_id, "start": iso_z(self.start),
                "end": iso_z(self.end), "frames": self.frames, "coverage": round(self.coverage, 3),
                "patients": self.patients, "staff": self.staff, "usable_faces": self.usable_faces,
                "faceless_frames": self.faceless_frames}


def _one(checker: Checker, cw: CameraWindow, rd, templates, staff, zones, at: datetime, thr: float,
         judge: Thresholds) -> RoomResult:
    res = checker._camera(cw, rd, templates, None, at, thr, 1, zones, staff, None)
    out = RoomResult("footage_missing", cw.camera_id, cw.start, cw.end, frames=res.frames, coverage=res.coverage)
    if not res.frames or res.coverage < MIN_COVERAGE:
        return out
    # a patient is someone not recognised as staff seen on the patient's side (the camera's customer zone;
    # anywhere without zones), as the counter check's customers: someone only at the doctor's desk whose
    # face never was usable is the doctor turned away, not a patient
    patients = [t for t in res.tracks if t.id not in res.staff
                and any(zones_mod.customer_side(res.zone(d)) for d in t.dets)]
    out.patients, out.staff = len(patients), len(res.staff)
    out.usable_faces = sum(len(t.embedded) for t in patients)
    out.faceless_frames = res.customer_frames
    if any(_verdict(t, judge, MATCH) for t in patients):
        out.outcome = "patient_seen_insured"
    elif out.usable_faces:
        out.outcome = "someone_else"
    elif patients or res.customer_frames >= FACELESS_FRAMES:
        out.outcome = "cannot_tell"
    else:
        out.outcome = "nobody_but_staff"
    return out


RANK = {o: i for i, o in enumerate(OUTCOMES)}  # several rooms: the first outcome of this order wins


def analyse_room(db: Session, settings, checker: Callable[[], Checker], cameras: list[Camera], *, org_id: str,
                 insured_id: str, at: datetime, start: datetime, end: datetime,
                 sample_interval_s: float) -> RoomResult:
    """What the consulting-room cameras show in [start, end) about a visit claimed at ``at``. Reads
    the database (segments, templates, staff) in ``db``, the footage from the object store; ``checker()``
    (which loads the models) is called only when there is footage to look at."""
    ready = [(cam, footage_mod.readiness(db, settings, cam.id, start, end, utcnow())) for cam in cameras]
    ready = [(cam, rd) for cam, rd in ready if rd.segments]
    if not ready:
        return RoomResult("footage_missing", cameras[0].id if cameras else None, start, end)
    base = checker()
    s = base.settings.model_copy(update={"correlate_sample_interval_s": sample_interval_s})
    room = Checker(settings=s, sessions=base.sessions, store=base.store, pipeline=base.pipeline, legal=None)
    mid = base.pipeline.model_id
    templates = load_templates(db, insured_id, mid).embeddings
    staff = load_staff(db, org_id, mid)
    thr = float(base.pipeline.threshold)
    judge = Thresholds.of(s, base.pipeline)
    results = [_one(room, CameraWindow(cam.id, cam.role, start, end), rd, templates, staff,
                    zones_mod.parse(cam.zones), at, thr, judge) for cam, rd in ready]
    return min(results, key=lambda r: RANK[r.outcome])
