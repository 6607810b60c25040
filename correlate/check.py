"""Check one settlement against the footage of the cameras covering its counter.

Outcome (first that applies):

1. ``footage_missing`` - no camera covers the counter (``no_camera``, not flagged: nothing to compare),
   or there is no footage at all for the window;
2. ``verified_present`` - a face in the window matches the insured person's templates;
3. ``footage_missing`` - less than ``correlate_min_coverage`` of the window is recorded (black frames
   count as not recorded) and the insured person was not seen in what there is;
4. ``ghost_visit`` - nobody in any frame of the window: no face of any quality, no background
   difference, no motion (correlate/presence.py);
5. ``impersonation`` - at least two usable faces were embedded and none matches the insured person;
6. ``inconclusive`` - people present but too few usable faces (back turned, blurred, too small), or
   the insured person has no template of the current model.

Faces are followed across frames (correlate/tracking.py); of each tracked person the best
``correlate_embed_per_track`` faces are embedded and compared with the templates and with the
face-pay capture. The best face of each person is kept as evidence (a JPEG crop in the biometrics
bucket + a ``face_evidence`` row with its scores and embedding); flags and holds follow
(correlate/rules.py). A re-check replaces the previous result and never duplicates a flag.
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
from correlate import rules
from correlate.levels import RULE_VERSION
from correlate.reasons import Reason
from correlate.tracking import Detection, Track, Tracker, box_of
from correlate.window import CameraWindow, span, windows
from facepay.templates import load_templates
from kernel.settings import Settings
from kernel.timefmt import iso_z
from storage.db import session_scope
from storage.holds import LegalHolds
from storage.models import FaceEvidence, Organisation, Settlement, SettlementCheck, Verification, utcnow
from storage.objects import ObjectStore
from vision.image import decode_image
from vision.matching import cosine_scores
from vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

MIN_IMPOSTOR_FACES = 2
DETECT_EVERY = 4  # faces are searched in every other sample with change, and every 4th sample regardless
MAX_EVIDENCE_FACES = 8


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

    @property
    def coverage(self) -> float:
        if self.span_s <= 0:
            return 0.0
        lost = self.blind * min(self.span_s / max(self.frames, 1), 1e9) if self.frames else 0.0
        return max(0.0, (self.covered_s - lost) / self.span_s)

    def to_dict(self) -> dict:
        return {**self.window.to_dict(), "coverage": round(self.coverage, 3), "frames": self.frames,
                "blind_frames": self.blind, "frames_with_people": self.people_frames,
                "frames_with_faces": self.face_frames, "people_tracked": len(self.tracks),
                "footage": self.ready_reason}


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
            img = decode_image(data, max_bytes=self.s.max_upload_bytes * 2, max_pixels=self.s.max_image_pixels)
        except Exception as e:  # a capture past its retention, or unreadable: no comparison
            log.info("face-pay capture of verification %s not usable: %s", v.id, type(e).__name__)
            return None
        faces = self.pipeline.analyze_closeup(img, max_embed=1, small_side=self.s.verify_detect_max_side)
        faces = [f for f in faces if f.embedding is not None]
        return faces[0].embedding if faces else None

    # --- one camera -------------------------------------------------------------------------------
    def _camera(self, cw: CameraWindow, rd: footage_mod.Readiness, templates: np.ndarray,
                capture: np.ndarray | None, settled_at: datetime, thr: float, first_track: int) -> CameraResult:
        res = CameraResult(cw, rd.covered_s, rd.span_s, ready_reason=rd.reason)
        frames = footage_mod.sample_frames(self.store, self.s.bucket_footage, cw.camera_id, rd.segments,
                                           cw.start, cw.end, self.s.correlate_sample_interval_s)
        res.frames = len(frames)
        res.blind = sum(f.blind for f in frames)
        if not frames:
            return res
        pres = presence_mod.analyze([f.image for f in frames], [f.blind for f in frames])
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
        keep = {d.image_index for t in res.tracks for d in [t.representative()]}
        res.images = {k: v for k, v in res.images.items() if k in keep}
        return res

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
                rd = footage_mod.readiness(db, s, w.camera_id, w.start, w.end, now)
                if not rd.ready:
                    return Waiting(settlement_id, now + timedelta(seconds=s.correlate_recheck_s), rd.reason)
                ready[w.camera_id] = rd
            db.expunge_all()
            pipeline = self.pipeline
            mid = pipeline.model_id
            tpl = load_templates(db, st.insured_id, mid)
            templates, template_refs = tpl.embeddings, tpl.refs
            v = self._verification(db, st)
            org = db.get(Organisation, st.org_id)
            uses_face_pay = bool(org.uses_face_pay) if org else False
        thr = float(pipeline.threshold)
        capture = self._capture_embedding(v)

        cams: list[CameraResult] = []
        for w in wins:
            first = sum(len(c.tracks) for c in cams) + 1000 * len(cams)
            cams.append(self._camera(w, ready[w.camera_id], templates, capture, st.settled_at, thr, first))

        outcome, reason, summary = self._decide(st, wins, cams, templates, thr)
        tracks = [t for c in cams for t in c.tracks]
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
            faces = self._store_faces(db, chk, st, cams, mid)
            ctx = rules.Context(settings=s, settlement=st, check=chk, cameras=cams, faces=faces,
                                verification=db.get(Verification, v.id) if v is not None else None,
                                uses_face_pay=uses_face_pay, threshold=thr, template_refs=template_refs,
                                capture_embedding=capture, model=pipeline.model_info, legal=self.legal)
            flags = rules.apply(db, ctx)
            st.status, st.outcome, st.checked_at, st.next_check_at = "done", outcome, utcnow(), None
            st.last_error = None
            return Result(st.id, outcome, reason, chk.id, [f.id for f in flags], duration_ms)

    def _decide(self, st: Settlement, wins: list[CameraWindow], cams: list[CameraResult], templates: np.ndarray,
                thr: float) -> tuple[str, str, dict]:
        s = self.s
        tracks = [t for c in cams for t in c.tracks]
        frames = sum(c.frames for c in cams)
        people_frames = sum(c.people_frames for c in cams)
        coverage = max((c.coverage for c in cams), default=0.0)
        insured = [t for t in tracks if (t.best_insured() or -1) >= thr]
        usable_faces = sum(len(t.embedded) for t in tracks)
        summary = {"frames": frames, "frames_with_people": people_frames, "people_tracked": len(tracks),
                   "usable_faces": usable_faces, "coverage": round(coverage, 3), "threshold": thr,
                   "sample_interval_s": s.correlate_sample_interval_s}
        outcome, reason = self._reason(st, wins, cams, templates, thr, tracks, insured, summary)
        summary["reason_parts"] = reason.to_json()
        return outcome, str(reason), summary

    def _reason(self, st: Settlement, wins, cams, templates, thr: float, tracks, insured,
                summary: dict) -> tuple[str, Reason]:
        s = self.s
        frames, people_frames = summary["frames"], summary["frames_with_people"]
        usable_faces, coverage = summary["usable_faces"], max((c.coverage for c in cams), default=0.0)
        if not wins:
            summary["no_camera"] = True
            return "footage_missing", Reason.of("no_camera", org=st.org_id, counter=repr(st.terminal_id or st.counter))
        if frames == 0 or all(c.frames == c.blind for c in cams):
            return "footage_missing", Reason.of("no_footage")
        if insured:
            best = max(t.best_insured() for t in insured)
            return "verified_present", Reason.of("seen", best=best, thr=thr)
        if coverage < s.correlate_min_coverage:
            return "footage_missing", Reason.of("low_coverage", coverage=coverage)
        if people_frames == 0:
            return "ghost_visit", Reason.of("nobody", frames=frames, start=iso_z(wins[0].start), end=iso_z(wins[0].end))
        if templates.size == 0:
            return "inconclusive", Reason.of("not_enrolled")
        if usable_faces >= MIN_IMPOSTOR_FACES:
            best = max((t.best_insured() for t in tracks if t.best_insured() is not None), default=0.0)
            return "impersonation", Reason.of("strangers", faces=usable_faces, people=len(tracks), best=best, thr=thr)
        return "inconclusive", Reason.of("no_usable_face" if usable_faces == 0 else "too_few_faces",
                                         people_frames=people_frames, frames=frames)

    def _store_faces(self, db, chk: SettlementCheck, st: Settlement, cams: list[CameraResult],
                     mid: str) -> list[FaceEvidence]:
        out: list[FaceEvidence] = []
        reps = []
        for c in cams:
            for t in c.tracks:
                d = t.representative()
                img = c.images.get(d.image_index)
                if img is not None:
                    reps.append((t, d, img, c))
        # the most telling first: insured matches, then usable faces, then the rest
        reps.sort(key=lambda r: (-(r[1].insured_score or -1), -r[1].rank))
        for t, d, img, c in reps[:MAX_EVIDENCE_FACES]:
            crop = _crop(img, d.box)
            ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                continue
            key = f"evidence/{st.org_id}/{st.settled_at:%Y/%m/%d}/{chk.id}/t{t.id}.jpg"
            obj = self.store.put_bytes(self.s.bucket_biometrics, key, jpg.tobytes(), "image/jpeg")
            emb = t.mean_embedding()
            fe = FaceEvidence(check_id=chk.id, settlement_id=st.id, org_id=st.org_id, camera_id=c.window.camera_id,
                              seen_at=d.at, track=t.id, box=[round(v, 1) for v in d.box], crop_key=key,
                              crop_sha256=obj.sha256, insured_score=t.best_insured(), capture_score=t.best_capture(),
                              is_insured=(t.best_insured() or -1) >= float(self.pipeline.threshold),
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
