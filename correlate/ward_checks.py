"""Bed-hanging (挂床住院): every inpatient day of an admission, its bed's ward camera is looked at at the
rule's daily check times; absent at N consecutive checks spanning M days raises a flag.

For each admission (2401; it ends at its discharge 2402, else now) with a mapped bed (correlate/beds.py):
1. the check moments: each local day (claims_timezone) from admission to discharge, at each of the rule's
   ``check_times``, that lies inside the stay and whose footage time is over;
2. each moment not checked yet: the recorded frames of ``sample_seconds`` around it (correlate/footage.py
   reads the segments), faces in the bed's region compared with the patient's enrolled templates, and the
   bed against its empty picture (correlate/bed_presence.py): present / absent / unknown, with the frame at
   the check time kept (``ward/<org>/<mdtrt_id>/<time>.jpg``). A moment checked once is not checked again;
3. the rule over the stay's checks in time order (unknown checks neither count nor break a run): a run of
   at least ``min_absent_checks`` absent checks over at least ``min_days`` days is a flag, its evidence the
   day-by-day timeline, the absent checks and the same days' present checks, their footage held.

A patient out for one check (bathroom, an examination) breaks no run of three.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correlate import bed_presence, beds, rulebook
from correlate import footage as footage_mod
from correlate.check import detect_wide
from correlate.flags import raise_flag, record_event
from correlate.reasons import Reason, text_and_parts
from correlate.tracking import box_of
from facepay.templates import load_templates
from kernel.timefmt import iso_z
from storage.clips import segments_in
from storage.holds import place_hold
from storage.models import BedCheck, ClaimAdmission, ClaimDischarge, Flag, WardBed, utcnow
from vision.matching import cosine_scores

log = logging.getLogger(__name__)

RULE = "bed_hanging"
SAMPLE_INTERVAL_S = 1.0
MAX_DAYS = 400  # a stay longer than this is checked over its last MAX_DAYS days only
FRAME_QUALITY = 85


@dataclass
class RunReport:
    admissions: int = 0
    no_bed: list[str] = field(default_factory=list)
    checks: int = 0
    by_outcome: dict = field(default_factory=lambda: {"present": 0, "absent": 0, "unknown": 0})
    flags: list[str] = field(default_factory=list)

    def view(self) -> dict:
        return {"admissions": self.admissions, "no_bed": self.no_bed, "checks": self.checks,
                "by_outcome": self.by_outcome, "flags": self.flags}


def _slots(values) -> list[tuple[str, time]]:
    out = []
    for v in values or []:
        try:
            h, m = str(v).split(":")
            out.append((f"{int(h):02d}:{int(m):02d}", time(int(h), int(m))))
        except ValueError:
            log.warning("bed_hanging: check time %r is not HH:MM; skipped", v)
    return sorted(set(out), key=lambda s: s[1])


def moments(begin: datetime, end: datetime, slots: list[tuple[str, time]], tz: ZoneInfo) -> list[tuple[str, str, datetime]]:
    """(local day, slot, UTC instant) of every check time within [begin, end)."""
    first = begin.astimezone(tz).date()
    last = end.astimezone(tz).date()
    if (last - first).days > MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS)
    out = []
    d = first
    while d <= last:
        for label, t in slots:
            at = datetime.combine(d, t, tzinfo=tz).astimezone(timezone.utc)
            if begin <= at < end:
                out.append((d.isoformat(), label, at))
        d += timedelta(days=1)
    return out


class WardChecker:
    """The ward checks of one deployment: its store and the face pipeline (detection, templates)."""

    def __init__(self, *, settings, store, pipeline, legal=None):
        self.s, self.store, self.pipeline, self.legal = settings, store, pipeline, legal
        self.bucket = settings.bucket_footage
        self._last = None  # (camera, window) -> frames of the last read (see run)
        self._dets = None  # (frame, faces) of the last frame searched

    # -- one check ----------------------------------------------------------------------------------

    def _pictures(self, bed: WardBed) -> dict:
        from correlate import reference as reference_mod

        return {"day": reference_mod.load(self.store, self.bucket, bed.ref_day),
                "night": reference_mod.load(self.store, self.bucket, bed.ref_night)}

    def _face(self, img: np.ndarray, bed: WardBed, templates: np.ndarray) -> tuple[str, float | None]:
        """'insured' | 'other' | 'none' for faces whose centre lies in the bed's region (with its margin)."""
        h, w = img.shape[:2]
        mask = bed_presence.region_mask(bed.region, w, h, margin=bed_presence.MARGIN)
        found = []
        if self._dets is None or self._dets[0] is not img:  # the camera's other beds: same frame, same faces
            self._dets = (img, detect_wide(self.pipeline, img, self.s.correlate_detect_max_side))
        for f in self._dets[1]:
            x, y, bw, bh = box_of(f)
            if mask[min(h - 1, max(0, int(y + bh / 2))), min(w - 1, max(0, int(x + bw / 2)))]:
                found.append(f)
        if not found:
            return "none", None
        best = None
        if templates.size:
            for f in found:
                if not f.usable:
                    continue
                emb = self.pipeline.recognizer.embed(f.aligned)
                sc = float(np.max(cosine_scores(emb, templates)))
                best = sc if best is None else max(best, sc)
        if best is not None and best >= self.pipeline.threshold:
            return "insured", best
        return "other", best

    def check_one(self, db: Session, adm: ClaimAdmission, bed: WardBed, day: str, slot: str, at: datetime,
                  th: dict, templates: np.ndarray, pictures: dict) -> BedCheck:
        half = timedelta(seconds=float(th.get("sample_seconds") or 6) / 2)
        frames = self._frames(db, bed.camera_id, at - half, at + half)
        face, score, key = "none", None, None
        if frames:
            mid = min(frames, key=lambda f: abs((f.at - at).total_seconds()))
            face, score = self._face(mid.image, bed, templates)
            key = self._keep(adm, at, mid.image)
        j = bed_presence.judge([f.image for f in frames], bed.region, pictures,
                               occupied_share=float(th.get("occupied_share", 0.4)),
                               dark_limit=float(th.get("dark_limit", 14)), insured_face=face == "insured")
        row = BedCheck(org_id=adm.org_id, mdtrt_id=adm.mdtrt_id, psn_no=adm.psn_no, bed_id=bed.id,
                       camera_id=bed.camera_id, day=day, slot=slot, at=at, outcome=j.outcome, why=j.why,
                       light=j.light, changed=None if j.changed is None else round(j.changed, 4), face=face,
                       brightness=None if j.brightness is None else round(j.brightness, 1),
                       face_score=None if score is None else round(score, 4), frame_key=key)
        db.add(row)
        return row

    def _frames(self, db: Session, camera_id: str, a: datetime, b: datetime) -> list:
        """The sampled frames (not blind) of [a, b); the last read is kept for the next bed of the camera."""
        key = (camera_id, a, b)
        if getattr(self, "_last", None) is not None and self._last[0] == key:
            return self._last[1]
        segs = segments_in(db, camera_id, a, b)
        frames = footage_mod.sample_frames(self.store, self.bucket, camera_id, segs, a, b, SAMPLE_INTERVAL_S) if segs else []
        frames = [f for f in frames if not f.blind]
        self._last = (key, frames)
        return frames

    def _keep(self, adm: ClaimAdmission, at: datetime, img: np.ndarray) -> str | None:
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, FRAME_QUALITY])
        if not ok:
            return None
        digest = hashlib.sha256(f"{adm.org_id}/{adm.mdtrt_id}".encode()).hexdigest()[:16]
        key = f"ward/{adm.org_id}/{digest}/{at:%Y%m%dT%H%M%SZ}.jpg"
        self.store.put_bytes(self.bucket, key, jpg.tobytes(), "image/jpeg")
        return key

    # -- a run ----------------------------------------------------------------------------------------

    def run(self, db: Session, *, org_ids: list[str] | None = None, mdtrt_id: str | None = None,
            now: datetime | None = None, since: datetime | None = None) -> RunReport:
        """Check every check time of the admissions up to ``now`` not checked yet, then apply the rule.
        ``since`` (the worker's daily run, correlate/ward_schedule.py): only check times from then on, and only
        admissions still open then (not discharged before it)."""
        now = now or utcnow()
        rule = rulebook.current(db, RULE, self.s)
        th = rule.thresholds
        slots = _slots(th.get("check_times"))
        tz = ZoneInfo(self.s.claims_timezone)
        half = timedelta(seconds=float(th.get("sample_seconds") or 6) / 2)
        rep = RunReport()
        q = select(ClaimAdmission).order_by(ClaimAdmission.begntime, ClaimAdmission.id)
        if org_ids is not None:
            q = q.where(ClaimAdmission.org_id.in_(org_ids))
        if mdtrt_id:
            q = q.where(ClaimAdmission.mdtrt_id == mdtrt_id)
        stays, todo = [], []
        for adm in db.scalars(q).all():
            end = db.scalar(select(func.min(ClaimDischarge.endtime)).where(
                ClaimDischarge.org_id == adm.org_id, ClaimDischarge.mdtrt_id == adm.mdtrt_id)) or now
            if since is not None and end < since:  # discharged before the days looked at: not open
                continue
            rep.admissions += 1
            bed = beds.bed_of(db, adm)
            if bed is None:
                rep.no_bed.append(adm.mdtrt_id)
                continue
            stays.append((adm, bed))
            end = min(end, now - half)  # a moment is checked once its footage time is over
            done = set(db.scalars(select(BedCheck.at).where(BedCheck.org_id == adm.org_id,
                                                            BedCheck.mdtrt_id == adm.mdtrt_id)))
            mine = [m for m in moments(max(adm.begntime, since) if since else adm.begntime, end, slots, tz)
                    if m[2] not in done]
            if mine:
                ctx = (load_templates(db, adm.psn_no, self.pipeline.model_id).embeddings, self._pictures(bed))
                todo += [(adm, bed, day, slot, at, ctx) for day, slot, at in mine]
        # camera by camera, moment by moment: the beds one camera sees at one moment share one read of its frames
        self._last = None
        for adm, bed, day, slot, at, (templates, pictures) in sorted(todo, key=lambda x: (x[1].camera_id, x[4])):
            row = self.check_one(db, adm, bed, day, slot, at, th, templates, pictures)
            rep.checks += 1
            rep.by_outcome[row.outcome] += 1
        self._last = self._dets = None
        db.flush()
        for adm, bed in stays:
            if rule.applies(adm.begntime):
                flag = self.judge_stay(db, adm, bed, rule)
                if flag is not None:
                    rep.flags.append(flag)
        return rep

    # -- the rule -------------------------------------------------------------------------------------

    def judge_stay(self, db: Session, adm: ClaimAdmission, bed: WardBed, rule) -> str | None:
        checks = timeline_checks(db, adm.org_id, adm.mdtrt_id)
        run = longest_run(checks, int(rule.thresholds.get("min_absent_checks", 3)),
                          int(rule.thresholds.get("min_days", 2)))
        if not run:
            return None
        half = timedelta(seconds=float(rule.thresholds.get("sample_seconds") or 6) / 2)
        days = sorted({c.day for c in run})
        present_same_days = [c for c in checks if c.day in days and c.outcome == "present"]
        held = run + present_same_days
        first = run[0]
        reason = Reason.of("bed_hanging", bed=bed.bed_no, mdtrt_id=adm.mdtrt_id, checks=len(run), days=len(days),
                           first_day=days[0], last_day=days[-1])
        evidence = {
            "admission": {"mdtrt_id": adm.mdtrt_id, "psn_no": adm.psn_no, "begntime": iso_z(adm.begntime),
                          "bed": bed.bed_no, "dept": adm.adm_dept_name or adm.adm_dept_codg, "bed_id": bed.id},
            "absent_checks": [c.id for c in run], "present_same_days": [c.id for c in present_same_days],
            "days": days, "moment": iso_z(first.at),
            "cameras": [{"camera_id": bed.camera_id, "role": "ward", "start": iso_z(first.at - half),
                         "end": iso_z(first.at + half)}],
            "thresholds": rule.thresholds,
            # each check's own figures beside the rule's thresholds; the face as a band, never a raw score
            "checks": [check_figures(c, self.pipeline.threshold) for c in held],
        }
        flag, created = raise_flag(
            db, type=RULE, rule=RULE, level=rule.level, org_id=adm.org_id, settlement_ids=[],
            occurred_at=run[-1].at, reason=reason, evidence=evidence, model={"detector": self.pipeline.model_id},
            rule_version=rule.tag, dedup_key=f"{RULE}:{adm.org_id}:{adm.mdtrt_id}:{iso_z(first.at)}"[:200],
            holds=[(c.camera_id, c.at - half, c.at + half) for c in held if c.camera_id], legal=self.legal)
        if not created:
            self._extend(db, flag, evidence, reason, run, held, half)
        return flag.id

    def _extend(self, db: Session, flag: Flag, evidence: dict, reason: Reason, run: list[BedCheck],
                held: list[BedCheck], half: timedelta) -> None:
        """The absence went on since the flag was raised (a later day's run): the flag takes in the new
        checks, their footage is held too, and its history says so."""
        old = flag.evidence or {}
        known = set(old.get("absent_checks") or []) | set(old.get("present_same_days") or [])
        new = [c for c in held if c.id not in known]
        if not new:
            return
        text, parts = text_and_parts(reason)
        flag.evidence = {**evidence, **({"reason_parts": parts} if parts else {})}
        flag.reason, flag.occurred_at, flag.updated_at = text, max(flag.occurred_at, run[-1].at), utcnow()
        record_event(db, flag, actor="correlate", role="system", action="evidence_added", from_status=flag.status,
                     note=f"{len(new)} more checks of the bed: {', '.join(iso_z(c.at) for c in new)}"[:2000])
        for c in new:
            if c.camera_id:
                place_hold(db, actor="correlate", reason=f"flag {flag.id}: {flag.type} (level {flag.level})",
                           camera_id=c.camera_id, start=c.at - half, end=c.at + half, flag_id=flag.id,
                           legal=self.legal)


def timeline_checks(db: Session, org_id: str, mdtrt_id: str) -> list[BedCheck]:
    return list(db.scalars(select(BedCheck).where(BedCheck.org_id == org_id, BedCheck.mdtrt_id == mdtrt_id)
                           .order_by(BedCheck.at)))


def longest_run(checks: list[BedCheck], min_checks: int, min_days: int) -> list[BedCheck]:
    """The first run of consecutive absent checks (unknown ones skipped) long enough for the rule, at its
    full length; [] when there is none."""
    run: list[BedCheck] = []
    best: list[BedCheck] = []
    for c in checks + [None]:
        if c is not None and c.outcome == "unknown":
            continue
        if c is not None and c.outcome == "absent":
            run.append(c)
            continue
        if len(run) >= max(1, min_checks) and len({x.day for x in run}) >= min_days:
            return run
        run = []
    return best


NEAR_BAND = 0.1  # a face score this far under the threshold is "near" (a poor view of the patient, perhaps)


def face_band(score: float | None, threshold: float) -> str | None:
    """The face score as a band for people who may not see scores: match / near / low (None: no face)."""
    if score is None:
        return None
    return "match" if score >= threshold else "near" if score >= threshold - NEAR_BAND else "low"


def check_figures(c: BedCheck, threshold: float) -> dict:
    """One check's figures as a flag's evidence keeps them: the bed region's occupied share and brightness,
    the light, whose face was seen and its score band."""
    return {"id": c.id, "day": c.day, "slot": c.slot, "at": iso_z(c.at), "outcome": c.outcome, "why": c.why,
            "light": c.light, "occupied_share": c.changed, "brightness": c.brightness, "face": c.face,
            "face_band": face_band(c.face_score, threshold)}


def timeline(checks: list[BedCheck], slots: list[str] | None = None) -> dict:
    """Days x checks: {"slots": [...], "days": [{"day", "cells": [{slot, outcome, why, at, id, light, face}|None]}]}."""
    slot_list = sorted(set(slots or []) | {c.slot for c in checks})
    by_day: dict[str, dict[str, BedCheck]] = {}
    for c in checks:
        by_day.setdefault(c.day, {})[c.slot] = c
    days = []
    for d in sorted(by_day):
        cells = []
        for s in slot_list:
            c = by_day[d].get(s)
            cells.append(None if c is None else {"id": c.id, "slot": s, "outcome": c.outcome, "why": c.why,
                                                  "at": iso_z(c.at), "light": c.light, "face": c.face,
                                                  "camera_id": c.camera_id, "changed": c.changed,
                                                  "brightness": c.brightness})
        days.append({"day": d, "weekday": date.fromisoformat(d).weekday(), "cells": cells})
    return {"slots": slot_list, "days": days}
