"""Check one settlement against the footage of the cameras covering its counter.

Outcome (first that applies):

1. ``footage_missing`` - no camera covers the counter (``no_camera``, not flagged: nothing to compare),
   or there is no footage at all for the window;
2. ``verified_present`` - a face in the window matches the insured person's templates (at or above the
   upper threshold of its face-size band: vision/decision.py);
3. ``footage_missing`` - less than ``correlate_min_coverage`` of the window is recorded (black frames
   count as not recorded) and the insured person was not seen in what there is;
4. ``ghost_visit`` - nobody on the customer side for the whole window, whoever is on the staff side:
   no face of anyone but recognised staff there, and no background difference or motion there that
   the staff's own head and body do not explain (correlate/presence.py, correlate/zones.py);
5. ``inconclusive`` - the insured person has no template of the current model;
6. ``inconclusive`` - customers present but no face of theirs, several people at the counter at the
   settlement time with no clear payer, or the payer's face could not be compared (blurred, turned,
   too small: never replaced by other people's faces);
7. ``inconclusive`` (``cannot_tell``) - the payer's or another customer's best similarity lies in the
   uncertain band of its face size (between the band's lower and upper threshold): the inspector judges;
8. ``impersonation`` - the payer's face is usable, embedded and not the insured person (below the lower
   threshold of its size band), and the insured person is seen nowhere in the window.

Who is who: every tracked person's best faces are compared with the organisation's staff gallery
(facepay.templates.load_staff); a person is staff when their best staff similarity reaches the match
threshold and beats their similarity to the insured person (a staff member paying for themselves is
the insured person: identity comes from the templates, not the role). Staff are never a customer,
the payer, an impostor or a one-face-many-cards candidate. Where each person stands comes from the
camera's zones (customer / staff / ignore; correlate/zones.py): faces in ignored areas are dropped,
changes there do not count. The payer is the customer nearest the settlement second; customers
equally near are told apart by face size (the one at the counter is nearest the camera), else there
is no clear payer.

Faces are followed across frames (correlate/tracking.py); of each tracked person the best
``correlate_embed_per_track`` faces are embedded (at least one of every person with a usable face,
so staff are recognised even after the insured person is found) and compared with the templates,
the staff gallery and the face-pay capture. The best face of each person is kept as evidence (a JPEG
crop in the biometrics bucket + a ``face_evidence`` row with its scores, staff match, zone, payer mark
and embedding); flags and holds follow (correlate/rules.py). A re-check replaces the previous result
and never duplicates a flag.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import cv2
import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from correlate import footage as footage_mod
from correlate import presence as presence_mod
from correlate import reference as reference_mod
from correlate import rules
from correlate import zones as zones_mod
from correlate.levels import RULE_VERSION
from correlate.reasons import Reason
from correlate.tracking import Detection, Track, Tracker, box_of
from correlate.window import CameraWindow, span, windows
from facepay.templates import StaffGallery, load_staff, load_templates
from kernel.settings import Settings
from kernel.timefmt import iso_z
from storage.db import session_scope
from storage.holds import LegalHolds
from storage.models import Camera, FaceEvidence, Organisation, Settlement, SettlementCheck, Verification, utcnow
from storage.objects import ObjectStore
from vision.decision import MATCH, UNCERTAIN, Thresholds, Verdict
from vision.image import decode_image
from vision.matching import cosine_scores
from vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

MIN_IMPOSTOR_FACES = 1  # usable, embedded faces of the payer (see docs/correlation.md: "the payer")
DETECT_EVERY = 4  # faces are searched in every other sample with change, and every 4th sample regardless
MAX_EVIDENCE_FACES = 8
# the payer stands at the till when the card is swiped: a customer whose face is seen no nearer the
# settlement second than this many sample intervals (the checker's own longest gap between face
# searches) is someone before or after, not the payer, whose face then was not seen at all
PAYER_NEAR_SAMPLES = DETECT_EVERY
PAYER_TIE_S = 4.0  # customers seen this much farther from the settlement second than the nearest: as near
PAYER_SIZE_RATIO = 1.15  # among equally near customers, a face this much wider is the one at the counter
SIZE_AROUND_S = 6.0  # a person's face size is the median of their faces this near the settlement second
STAFF_AT_SETTLEMENT_S = 10.0  # staff seen this near the settlement second are named by a ghost visit
# a staff face matching the insured person too is the insured person (paying for themselves) only when
# the two similarities are this close; a cashier who merely resembles the insured person (SFace gives
# 0.37 for some pairs of strangers, threshold 0.363) scores far higher against their own staff photos
SELF_MARGIN = 0.2
BODY_REACH = 4  # samples around a staff member's face where their head and body still explain changes
# a staff member's head and body around their face box (x, y, w, h): left, up, right, down in face sizes
BODY = (1.3, 0.7, 2.3, 6.0)
# a standing customer's head and shoulders (face widths left, heights up, widths right, heights down):
# narrower than BODY, which also covers a seated cashier's arms and till, so that a back turned beside
# someone whose face shows is not taken for part of them. Set on camsim's people (shoulders about 1.1
# face widths beyond the face each side); a wider box hides the payer beside the first in the queue
TORSO = (0.9, 0.6, 0.9, 4.0)
# against the counter-empty picture a visible customer's whole body differs (arms, coat, bag), not only
# the head and shoulders the window's own background leaves: their whole standing body is explained
# there, and what is left must be person-sized to be somebody without a face
REF_BODY = (1.3, 0.7, 1.3, 6.0)
REF_AREA = 3.0  # times correlate_min_presence_area
REF_FRAMES = 2  # samples at the settlement second (of the up to 3 there) that must show the faceless person


@dataclass
class Waiting:
    settlement_id: str
    next_check_at: datetime
    reason: str


@dataclass
class CameraResult:
    window: CameraWindow
    covered_s: float
    span_s: float
    frames: int = 0
    blind: int = 0
    people_frames: int = 0
    face_frames: int = 0
    tracks: list[Track] = field(default_factory=list)
    images: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    ready_reason: str = ""
    zones: list = field(default_factory=list, repr=False)  # correlate.zones.Zone
    size: tuple[int, int] = (0, 0)  # frame width, height
    customer_frames: int = 0  # frames with a change on the customer side that staff do not explain
    faceless_at_settlement: bool = False  # someone on the customer side then whom no tracked face explains
    reference: str | None = None  # the counter-empty picture: "used", "light_differs" or None (none set)
    staff: dict[int, tuple[str, float]] = field(default_factory=dict)  # track id -> (member id, similarity)
    best_staff: dict[int, tuple[str | None, float | None]] = field(default_factory=dict)  # every compared track
    stream: str = "main"  # the recording read: the camera's main stream or its sub-stream

    def zone(self, d: Detection) -> str | None:
        return zones_mod.zone_of(d.box, self.zones, *self.size)

    @property
    def coverage(self) -> float:
        if self.span_s <= 0:
            return 0.0
        lost = self.blind * min(self.span_s / max(self.frames, 1), 1e9) if self.frames else 0.0
        return max(0.0, (self.covered_s - lost) / self.span_s)

    def to_dict(self) -> dict:
        return {**self.window.to_dict(), "coverage": round(self.coverage, 3), "frames": self.frames,
                "blind_frames": self.blind, "frames_with_people": self.people_frames, "reference": self.reference,
                "frames_with_faces": self.face_frames, "people_tracked": len(self.tracks),
                "staff_tracked": len(self.staff), "frames_with_customers": self.customer_frames,
                "zones": len(self.zones), "faceless_at_settlement": self.faceless_at_settlement,
                "footage": self.ready_reason, "stream": self.stream}


@dataclass
class Person:
    """A tracked person as the outcome sees them: role, side, distance to the settlement second."""
    track: Track
    camera: CameraResult
    staff_member: str | None
    staff_score: float | None
    customer_side: bool  # seen on the customer side (anywhere, without zones)
    zone: str | None  # where they are seen nearest the settlement second (None: camera has no zones)
    dt: float  # seconds from the settlement second to their nearest face (0: seen before and after it)
    width: float  # face width nearest the settlement second (px)

    @property
    def is_staff(self) -> bool:
        return self.staff_member is not None


def _body(box, w: int, h: int, shape: tuple[float, float, float, float] = BODY) -> tuple[float, float, float, float]:
    x, y, fw, fh = box
    x0, y0 = max(0.0, x - shape[0] * fw), max(0.0, y - shape[1] * fh)
    return x0, y0, min(float(w), x + fw + shape[2] * fw) - x0, min(float(h), y + fh + shape[3] * fh) - y0


def _near(dets: list[Detection], at: datetime) -> Detection:
    return min(dets, key=lambda d: abs((d.at - at).total_seconds()))


def _dt(dets: list[Detection], at: datetime) -> float:
    if dets[0].at <= at <= dets[-1].at:
        return 0.0
    return min(abs((d.at - at).total_seconds()) for d in dets)


@dataclass
class Result:
    settlement_id: str
    outcome: str
    reason: str
    check_id: str
    flags: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


class Checker:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore,
                 pipeline: FacePipeline, legal: LegalHolds | None):
        self.s, self.sessions, self.store, self.pipeline = settings, sessions, store, pipeline
        self.legal = legal  # flags hold their evidence; holds are mirrored into the store through this

    @property
    def settings(self) -> Settings:
        return self.s

    # --- inputs ---------------------------------------------------------------------------------

    def _verification(self, db, s: Settlement) -> Verification | None:
        if s.verification_id:
            return db.get(Verification, s.verification_id)
        return db.scalar(select(Verification).where(Verification.settlement_ref == s.id,
                                                    Verification.org_id == s.org_id)
                         .order_by(Verification.created_at.desc()).limit(1))

    def _capture_embedding(self, v: Verification | None) -> np.ndarray | None:
        if v is None or not v.capture_key:
            return None
        try:
            data = self.store.get_bytes(self.s.bucket_biometrics, v.capture_key)
            img = decode_image(data, max_bytes=self.s.max_upload_bytes * 2, max_pixels=self.s.max_image_pixels,
                               max_decoded_bytes=self.s.max_decoded_bytes,
                               decode_memory_bytes=self.s.decode_memory_bytes,
                               max_side=self.s.max_decoded_side)
        except Exception as e:  # a capture past its retention, or unreadable: no comparison
            log.info("face-pay capture of verification %s not usable: %s", v.id, type(e).__name__)
            return None
        faces = self.pipeline.analyze_closeup(img, max_embed=1, small_side=self.s.verify_detect_max_side)
        faces = [f for f in faces if f.embedding is not None]
        return faces[0].embedding if faces else None

    # --- one camera -------------------------------------------------------------------------------
    def _camera(self, cw: CameraWindow, rd: footage_mod.Readiness, templates: np.ndarray,
                capture: np.ndarray | None, settled_at: datetime, thr: float, first_track: int,
                zones: list | None = None, staff: StaffGallery | None = None,
                picture: np.ndarray | None = None) -> CameraResult:
        res = CameraResult(cw, rd.covered_s, rd.span_s, ready_reason=rd.reason, zones=zones or [],
                           stream=rd.stream)
        frames = footage_mod.sample_frames(self.store, self.s.bucket_footage, cw.camera_id, rd.segments,
                                           cw.start, cw.end, self.s.correlate_sample_interval_s)
        res.frames = len(frames)
        res.blind = sum(f.blind for f in frames)
        if not frames:
            return res
        shape = next((f.image.shape for f in frames if not f.blind), frames[0].image.shape)
        res.size = (int(shape[1]), int(shape[0]))
        sw, sh = presence_mod.small_size(shape)
        pres = presence_mod.analyze([f.image for f in frames], [f.blind for f in frames],
                                    keep=zones_mod.ignore_mask(res.zones, sw, sh))
        pipeline = self.pipeline
        tracker = Tracker(cw.camera_id, thr, first_track)
        min_area = self.s.correlate_min_presence_area
        for i, (fr, p) in enumerate(zip(frames, pres)):
            if fr.blind:
                continue
            changed = p.present(min_area)
            faces = []
            searched = (changed and i % 2 == 0) or i % DETECT_EVERY == 0
            if searched:
                faces = detect_wide(pipeline, fr.image, self.s.correlate_detect_max_side)
                if res.zones:  # a TV, a poster, a street window: not people at this counter
                    faces = [f for f in faces if zones_mod.zone_of(box_of(f), res.zones, *res.size) != "ignore"]
            if faces:
                res.face_frames += 1
                res.images[i] = fr.image
            if changed or faces:
                res.people_frames += 1
            if searched:  # the tracker counts a track's gap in searches, so only searched frames are given
                tracker.update(i, [Detection(i, fr.at, box_of(f), f, image_index=i) for f in faces])
        # embed the best faces of each person, people nearest the settlement time first
        has_templates = templates.size > 0

        def distance(t: Track) -> float:
            return min(abs((d.at - settled_at).total_seconds()) for d in t.dets)

        insured_seen = False
        for t in sorted(tracker.tracks, key=distance):
            # once the insured person is seen the others do not change the outcome, but one face each
            # still tells merge_same_identity who is the same person, so people are not over-counted
            per_track = 1 if insured_seen and capture is None else self.s.correlate_embed_per_track
            for d in sorted(t.usable, key=lambda d: -d.rank)[:per_track]:
                d.embedding = pipeline.recognizer.embed(d.face.aligned)
                if has_templates:
                    d.insured_score = float(np.max(cosine_scores(d.embedding, templates)))
                if capture is not None:
                    d.capture_score = float(cosine_scores(d.embedding, capture[None, :])[0])
                if d.insured_score is not None and d.insured_score >= thr:
                    insured_seen = True
                    break
        tracker.split_on_identity()
        tracker.merge_same_identity()
        res.tracks = tracker.tracks
        self._recognise_staff(res, staff, templates, thr)
        staff_dets = [t.dets for t in res.tracks if t.id in res.staff]
        res.customer_frames = len(self._unexplained(res, frames, pres, (sw, sh), staff_dets))
        # a back turned on the customer side when the card is swiped: that person may be the payer, and
        # then nobody's face can stand in for theirs (a queue's faces are not the payer's). Only where
        # zones say where customers stand: without them a passer-by anywhere would count
        if res.zones:
            near = [i for i, f in enumerate(frames)
                    if abs((f.at - settled_at).total_seconds()) <= self.s.correlate_sample_interval_s * 1.01]
            customers = {id(t.dets) for t in res.tracks if t.id not in res.staff}
            everyone = [t.dets for t in res.tracks]
            res.faceless_at_settlement = bool(self._unexplained(res, frames, pres, (sw, sh), everyone, near, customers))
            if picture is not None and near and not res.faceless_at_settlement:
                # the window's own background may hold a customer who stood still: ask the counter empty
                seen = [f.image for f in frames if not f.blind]
                fits = reference_mod.unlike(picture, seen, zones_mod.mask(res.zones, sw, sh)) <= reference_mod.MAX_UNLIKE
                res.reference = "used" if fits else "light_differs"
                if fits:
                    vs = presence_mod.against([frames[i].image for i in near], picture,
                                              keep=zones_mod.ignore_mask(res.zones, sw, sh))
                    pres_ref = list(pres)
                    for i, p in zip(near, vs):
                        pres_ref[i] = p
                    # a payer stands at the till across the settlement second: a change in one frame only
                    # (someone walking past, a door, a reflection) is not them
                    unexplained = self._unexplained(res, frames, pres_ref, (sw, sh), everyone, near, customers,
                                                    shape=REF_BODY, min_area=self.s.correlate_min_presence_area * REF_AREA)
                    res.faceless_at_settlement = len(unexplained) >= min(REF_FRAMES, len(near))
        keep = {d.image_index for t in res.tracks for d in [t.representative()]}
        res.images = {k: v for k, v in res.images.items() if k in keep}
        return res

    @staticmethod
    def _recognise_staff(res: CameraResult, staff: StaffGallery | None, templates: np.ndarray, thr: float) -> None:
        """Staff: best staff similarity >= the threshold and above the similarity to the insured person.
        A staff face that also reaches the threshold against the insured person's templates is the insured
        person only when that staff member's own templates match the insured's (a staff member paying for
        themselves: identity from the templates); otherwise it is a chance likeness of the cashier, who
        must not verify every settlement at the counter."""
        if staff is None or staff.empty:
            return
        for t in res.tracks:
            best: tuple[str | None, float | None] = (None, None)
            for d in t.embedded:
                member, score = staff.best(d.embedding)
                if score is not None and (best[1] is None or score > best[1]):
                    best = (member, score)
            if best[1] is None:
                continue
            res.best_staff[t.id] = best
            if best[1] >= thr and best[1] > (t.best_insured() if t.best_insured() is not None else -1.0):
                mine = staff.embeddings[[i for i, m in enumerate(staff.member_ids) if m == best[0]]]
                ins = t.best_insured()
                if ins is not None and ins >= thr and ins >= best[1] - SELF_MARGIN and templates.size and \
                        float(np.max(mine @ templates.T)) >= thr:
                    continue  # the staff member is the insured person: a customer this time
                res.staff[t.id] = best

    def _unexplained(self, res: CameraResult, frames, pres, small: tuple[int, int], explained: list[list],
                     only: list[int] | None = None, torso: set[int] = frozenset(),
                     shape: tuple[float, float, float, float] = TORSO, min_area: float | None = None) -> list[int]:
        """Samples (of ``only``, or all) with a change on the customer side (the customer zones, or
        anywhere but the staff side and ignored areas) that the head and body of none of the
        ``explained`` people (their detections) accounts for; those whose first detection's track is in
        ``torso`` explain only their head and torso (customers standing), the others head and body."""
        keep = zones_mod.mask(res.zones, *small)
        min_area = self.s.correlate_min_presence_area if min_area is None else min_area
        out = []
        for i in (range(len(frames)) if only is None else only):
            fr, p = frames[i], pres[i]
            if fr.blind or not p.present(min_area):
                continue
            exclude = []
            for dets in explained:
                d = min(dets, key=lambda d: abs(d.frame - i))
                if abs(d.frame - i) <= BODY_REACH or dets[0].frame <= i <= dets[-1].frame:
                    exclude.append(_body(d.box, *res.size, shape if id(dets) in torso else BODY))
            if presence_mod.residual(p, keep, exclude) >= min_area:
                out.append(i)
        return out

    # --- the check --------------------------------------------------------------------------------
    def check(self, settlement_id: str, now: datetime | None = None) -> Result | Waiting:
        t0 = time.perf_counter()
        now = now or utcnow()
        s = self.s
        with session_scope(self.sessions) as db:
            st = db.get(Settlement, settlement_id)
            if st is None:
                raise LookupError(f"no settlement {settlement_id!r}")
            if st.status == "done":
                chk = db.scalar(select(SettlementCheck).where(SettlementCheck.settlement_id == settlement_id))
                return Result(settlement_id, st.outcome or "", chk.reason if chk else "", chk.id if chk else "")
            wins = windows(db, s, st)
            ready = {}
            for w in wins:
                stream = getattr(db.get(Camera, w.camera_id), "analyse_stream", None) or "main"
                rd = footage_mod.readiness(db, s, w.camera_id, w.start, w.end, now, stream)
                if not rd.ready:
                    return Waiting(settlement_id, now + timedelta(seconds=s.correlate_recheck_s), rd.reason)
                ready[w.camera_id] = rd
            db.expunge_all()
            pipeline = self.pipeline
            mid = pipeline.model_id
            tpl = load_templates(db, st.insured_id, mid)
            templates, template_refs = tpl.embeddings, tpl.refs
            staff = load_staff(db, st.org_id, mid)
            cam_zones = {w.camera_id: zones_mod.parse(getattr(db.get(Camera, w.camera_id), "zones", None))
                         for w in wins}
            cam_refs = {w.camera_id: getattr(db.get(Camera, w.camera_id), "reference", None) for w in wins}
            v = self._verification(db, st)
            org = db.get(Organisation, st.org_id)
            uses_face_pay = bool(org.uses_face_pay) if org else False
        thr = float(pipeline.threshold)
        capture = self._capture_embedding(v)

        cams: list[CameraResult] = []
        for w in wins:
            first = sum(len(c.tracks) for c in cams) + 1000 * len(cams)
            picture = reference_mod.load(self.store, s.bucket_footage, cam_refs[w.camera_id]) \
                if cam_zones[w.camera_id] else None  # the customer side is known only with zones
            cams.append(self._camera(w, ready[w.camera_id], templates, capture, st.settled_at, thr, first,
                                     cam_zones[w.camera_id], staff, picture))

        people = self._people(cams, st.settled_at)
        outcome, reason, summary = self._decide(st, wins, cams, templates, thr, people, staff)
        tracks = [t for c in cams for t in c.tracks if t.id not in c.staff]  # staff are not candidates
        best_insured = max((t.best_insured() for t in tracks if t.best_insured() is not None), default=None)
        best_capture = max((t.best_capture() for t in tracks if t.best_capture() is not None), default=None)
        win_a, win_b = span(wins, st.settled_at, s)
        duration_ms = (time.perf_counter() - t0) * 1e3

        with session_scope(self.sessions) as db:
            st = db.get(Settlement, settlement_id)
            old = db.scalar(select(SettlementCheck).where(SettlementCheck.settlement_id == settlement_id))
            if old is not None:
                db.execute(delete(FaceEvidence).where(FaceEvidence.check_id == old.id))
                db.delete(old)
                db.flush()
            chk = SettlementCheck(settlement_id=st.id, org_id=st.org_id, outcome=outcome, reason=reason,
                                  window_start=win_a, window_end=win_b, cameras=[c.to_dict() for c in cams],
                                  summary=summary, best_insured_score=best_insured, capture_score=best_capture,
                                  model=pipeline.model_info, rule_version=RULE_VERSION, duration_ms=duration_ms)
            db.add(chk)
            db.flush()
            faces = self._store_faces(db, chk, st, cams, mid, people, summary)
            ctx = rules.Context(settings=s, settlement=st, check=chk, cameras=cams, faces=faces,
                                verification=db.get(Verification, v.id) if v is not None else None,
                                uses_face_pay=uses_face_pay, threshold=thr, template_refs=template_refs,
                                capture_embedding=capture, model=pipeline.model_info, legal=self.legal)
            flags = rules.apply(db, ctx)
            st.status, st.outcome, st.checked_at, st.next_check_at = "done", outcome, utcnow(), None
            st.last_error = None
            return Result(st.id, outcome, reason, chk.id, [f.id for f in flags], duration_ms)

    @staticmethod
    def _people(cams: list[CameraResult], settled_at: datetime) -> list[Person]:
        out = []
        for c in cams:
            for t in c.tracks:
                member, score = c.staff.get(t.id, (None, c.best_staff.get(t.id, (None, None))[1]))
                side = [d for d in t.dets if zones_mod.customer_side(c.zone(d))]
                dets = side or t.dets
                near = _near(dets, settled_at)
                # face size around the settlement second (a median: one detection's box is noisy)
                around = [d.box[2] for d in dets if abs((d.at - settled_at).total_seconds()) <= SIZE_AROUND_S]
                out.append(Person(t, c, member, score, bool(side), c.zone(near), _dt(dets, settled_at),
                                  float(np.median(around)) if around else float(near.box[2])))
        return out

    @staticmethod
    def _payer(customers: list[Person], thr: float) -> tuple[Person | None, list[Person]]:
        """(the payer or None, the customers as near the settlement second as the nearest one)."""
        if not customers:
            return None, []
        nearest = min(p.dt for p in customers)
        near = sorted((p for p in customers if p.dt <= nearest + PAYER_TIE_S), key=lambda p: -p.width)
        # one person seen by two cameras (or in two broken tracks) is one candidate, not a tie
        distinct: list[Person] = []
        for p in near:
            m = p.track.mean_embedding()
            if m is not None and any(q.track.mean_embedding() is not None and
                                     float(m @ q.track.mean_embedding()) >= thr for q in distinct):
                continue
            distinct.append(p)
        if len(distinct) == 1 or distinct[0].width >= PAYER_SIZE_RATIO * distinct[1].width:
            return distinct[0], distinct
        return None, distinct

    def _decide(self, st: Settlement, wins: list[CameraWindow], cams: list[CameraResult], templates: np.ndarray,
                thr: float, people: list[Person], staff: StaffGallery) -> tuple[str, str, dict]:
        s = self.s
        tracks = [t for c in cams for t in c.tracks]
        frames = sum(c.frames for c in cams)
        people_frames = sum(c.people_frames for c in cams)
        coverage = max((c.coverage for c in cams), default=0.0)
        staff_ids = {t for c in cams for t in c.staff}
        # the match decision: each face against its own size band's thresholds (vision/decision.py)
        judge = Thresholds.of(s, self.pipeline)
        insured = [t for t in tracks if _verdict(t, judge, MATCH) and t.id not in staff_ids]
        usable_faces = sum(len(t.embedded) for t in tracks)
        customers = [p for p in people if not p.is_staff and p.customer_side]
        staff_people = [p for p in people if p.is_staff]
        payer, near = self._payer(customers, thr)
        summary = {"frames": frames, "frames_with_people": people_frames, "people_tracked": len(tracks),
                   "usable_faces": usable_faces, "coverage": round(coverage, 3), "threshold": thr,
                   "sample_interval_s": s.correlate_sample_interval_s,
                   "people": {"staff": len(staff_people), "customers": len(customers),
                              "elsewhere": len(people) - len(staff_people) - len(customers)},
                   "frames_with_customers": sum(c.customer_frames for c in cams),
                   "zones": sum(len(c.zones) for c in cams),
                   "staff_at_settlement": [self._staff_view(p, staff) for p in self._staff_at(staff_people)],
                   "payer": None if payer is None else self._payer_view(payer, thr),
                   "at_counter": [{"track": p.track.id, "camera_id": p.camera.window.camera_id, "zone": p.zone,
                                   "face_px": round(p.width, 1), "seconds_from_settlement": round(p.dt, 1)}
                                  for p in near]}
        outcome, reason = self._reason(st, wins, cams, templates, thr, tracks, insured, summary, customers,
                                       payer, near)
        summary["reason_parts"] = reason.to_json()
        return outcome, str(reason), summary

    @staticmethod
    def _staff_at(staff_people: list[Person]) -> list[Person]:
        """Staff seen at the settlement second (the nearest one at least): who may have swiped the card."""
        if not staff_people:
            return []
        nearest = min(p.dt for p in staff_people)
        return sorted((p for p in staff_people if p.dt <= max(nearest, STAFF_AT_SETTLEMENT_S)), key=lambda p: p.dt)

    @staticmethod
    def _staff_view(p: Person, staff: StaffGallery) -> dict:
        return {"member_id": p.staff_member, "staff_id": staff.staff_ids.get(p.staff_member),
                "name": staff.names.get(p.staff_member), "track": p.track.id, "camera_id": p.camera.window.camera_id,
                "score": None if p.staff_score is None else round(p.staff_score, 4), "zone": p.zone,
                "seconds_from_settlement": round(p.dt, 1)}

    @staticmethod
    def _payer_view(p: Person, thr: float) -> dict:
        best = p.track.best_insured()
        usable = len(p.track.usable)
        return {"track": p.track.id, "camera_id": p.camera.window.camera_id, "zone": p.zone,
                "seconds_from_settlement": round(p.dt, 1), "face_px": round(p.width, 1),
                "best_insured": None if best is None else round(best, 4), "usable_faces": usable,
                "compared_faces": len(p.track.embedded), "usable": bool(p.track.embedded),
                "is_insured": best is not None and best >= thr,
                "best_staff": None if p.staff_score is None else round(p.staff_score, 4)}

    def _reason(self, st: Settlement, wins, cams, templates, thr: float, tracks, insured, summary: dict,
                customers: list[Person], payer: Person | None, near: list[Person]) -> tuple[str, Reason]:
        s = self.s
        frames, people_frames = summary["frames"], summary["frames_with_people"]
        coverage = max((c.coverage for c in cams), default=0.0)
        if not wins:
            summary["no_camera"] = True
            return "footage_missing", Reason.of("no_camera", org=st.org_id, counter=repr(st.terminal_id or st.counter))
        if frames == 0 or all(c.frames == c.blind for c in cams):
            return "footage_missing", Reason.of("no_footage")
        judge = Thresholds.of(s, self.pipeline)
        if insured:  # a staff member whose templates are the insured's is not among staff here
            v = max((_verdict(t, judge, MATCH) for t in insured), key=lambda v: v.score)
            summary["match_decision"] = {"decision": v.decision, "score": round(v.score, 4), **v.to_dict()}
            return "verified_present", Reason.of("seen", best=v.score, thr=v.upper)
        if coverage < s.correlate_min_coverage:
            return "footage_missing", Reason.of("low_coverage", coverage=coverage)
        start, end = iso_z(wins[0].start), iso_z(wins[0].end)
        if not customers and summary["frames_with_customers"] == 0:
            if people_frames == 0:
                return "ghost_visit", Reason.of("nobody", frames=frames, start=start, end=end)
            named = [x["name"] or x["staff_id"] or x["member_id"] for x in summary["staff_at_settlement"]]
            who = ", ".join(str(n) for n in named) if named else "-"
            return "ghost_visit", Reason.of("nobody_but_staff", frames=frames, start=start, end=end, people=who)
        if templates.size == 0:
            return "inconclusive", Reason.of("not_enrolled")
        if not customers:  # somebody on the customer side, never a face (back turned, hidden)
            return "inconclusive", Reason.of("no_usable_face", people_frames=summary["frames_with_customers"],
                                             frames=frames)
        if any(c.faceless_at_settlement for c in cams):  # the payer may be the one showing no face
            summary["faceless_at_settlement"] = True
            return "inconclusive", Reason.of("payer_unusable")
        near_s = PAYER_NEAR_SAMPLES * s.correlate_sample_interval_s
        if min(p.dt for p in customers) > near_s:  # faces only long before or after: not the payer's
            summary["payer"] = None
            return "inconclusive", Reason.of("payer_not_seen", seconds=near_s)
        if payer is None:
            return "inconclusive", Reason.of("no_clear_payer", count=len(near))
        faces = len(payer.track.embedded)
        if faces == 0:  # never replaced by the faces of the queue or the staff
            return "inconclusive", Reason.of("payer_unusable")
        if faces < MIN_IMPOSTOR_FACES:
            return "inconclusive", Reason.of("too_few_faces", people_frames=people_frames, frames=frames)
        # a score in a band's uncertain range (the payer's or another customer's) accuses nobody
        unsure = [v for v in (_verdict(p.track, judge, UNCERTAIN) for p in [payer, *customers]) if v is not None]
        if unsure:
            v = max(unsure, key=lambda v: v.score)
            summary["match_decision"] = {"decision": v.decision, "score": round(v.score, 4), **v.to_dict()}
            return "inconclusive", Reason.of("cannot_tell", best=v.score, lower=v.lower, thr=v.upper)
        best = max(d.insured_score for d in payer.track.embedded if d.insured_score is not None)
        v = _verdict(payer.track, judge, None)
        summary["match_decision"] = {"decision": v.decision, "score": round(v.score, 4), **v.to_dict()}
        return "impersonation", Reason.of("payer_not_insured", faces=faces, best=best, thr=v.lower)

    def _store_faces(self, db, chk: SettlementCheck, st: Settlement, cams: list[CameraResult],
                     mid: str, people: list[Person], summary: dict) -> list[FaceEvidence]:
        out: list[FaceEvidence] = []
        who = {p.track.id: p for p in people}
        payer_track = (summary.get("payer") or {}).get("track")
        staff_at = {x["track"] for x in summary.get("staff_at_settlement") or []}
        reps = []
        for c in cams:
            for t in c.tracks:
                d = t.representative()
                img = c.images.get(d.image_index)
                if img is not None:
                    reps.append((t, d, img, c))
        thr = float(self.pipeline.threshold)
        # the most telling first: insured matches, the payer, the staff at the settlement second (who
        # swiped the card when nobody else was there), then usable faces, then the rest
        staff_ids = {t for c in cams for t in c.staff}
        reps.sort(key=lambda r: (-((r[0].best_insured() or -1) >= thr and r[0].id not in staff_ids), r[0].id != payer_track,
                                 r[0].id not in staff_at, -(r[1].insured_score or -1), -r[1].rank))
        for t, d, img, c in reps[:MAX_EVIDENCE_FACES]:
            crop = _crop(img, d.box)
            ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                continue
            key = f"evidence/{st.org_id}/{st.settled_at:%Y/%m/%d}/{chk.id}/t{t.id}.jpg"
            obj = self.store.put_bytes(self.s.bucket_biometrics, key, jpg.tobytes(), "image/jpeg")
            emb = t.mean_embedding()
            p = who.get(t.id)
            fe = FaceEvidence(check_id=chk.id, settlement_id=st.id, org_id=st.org_id, camera_id=c.window.camera_id,
                              seen_at=d.at, track=t.id, box=[round(v, 1) for v in d.box], crop_key=key,
                              crop_sha256=obj.sha256, insured_score=t.best_insured(), capture_score=t.best_capture(),
                              is_insured=(t.best_insured() or -1) >= thr and t.id not in staff_ids,
                              staff_member_id=p.staff_member if p else None,
                              staff_score=p.staff_score if p else None, zone=c.zone(d), is_payer=t.id == payer_track,
                              quality=d.face.quality.to_dict(), model=mid,
                              dim=None if emb is None else int(emb.shape[0]),
                              embedding=None if emb is None else emb.astype(np.float32).tobytes())
            db.add(fe)
            out.append(fe)
        db.flush()
        return out


def detect_wide(pipeline, img: np.ndarray, max_side: int) -> list:
    """Faces of a wide camera frame, with quality and aligned crops (no embeddings yet), largest first.

    ``wide=True``: a counter camera never shows a close-up, so the detector skips its bordered retry of
    an empty frame, which would double the cost of every frame with nobody in it."""
    return pipeline.analyze(img, max_embed=0, detect_max_side=max_side, wide=True)


def _crop(img: np.ndarray, box, margin: float = 0.35) -> np.ndarray:
    x, y, w, h = box
    H, W = img.shape[:2]
    x0, y0 = int(max(0, x - w * margin)), int(max(0, y - h * margin))
    x1, y1 = int(min(W, x + w * (1 + margin))), int(min(H, y + h * (1 + margin)))
    return img[y0:y1, x0:x1]


def _verdict(track: Track, judge: Thresholds, decision: str | None) -> Verdict | None:
    """The track's best-scoring verdict of kind ``decision`` (any kind when None): each embedded face
    judged against its own size band (a face's width, as the detector boxed it)."""
    vs = [judge.judge(d.insured_score, d.box[2]) for d in track.embedded if d.insured_score is not None]
    vs = [v for v in vs if decision is None or v.decision == decision]
    return max(vs, key=lambda v: v.score, default=None)
