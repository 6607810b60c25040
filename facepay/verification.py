"""Face verification at payment (刷脸支付): one capture against the insured person's templates.

Every accepted request becomes a Verification row and its capture an object with its own
retention: later cross-checks of settlements read both as evidence.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from facepay.attestation import Claims
from facepay.capture_checks import Gate, TerminalChecks
from facepay.capture_templates import enrolled_score, keep_capture
from facepay.templates import load_templates
from kernel.admission import Ticket
from kernel.ids import check_insured_id
from kernel.settings import Settings
from storage.audit import audit_insert
from storage.models import Verification, new_id, utcnow
from storage.objects import ObjectStore, StoredObject
from vision.decision import Thresholds, Verdict
from vision.image import image_kind
from vision.matching import decide_verification
from vision.pipeline import AnalyzedFace, FacePipeline
from vision.workers import CaptureLimits, InProcessFaces, Later, Pending

log = logging.getLogger("dualcheck.facepay")
_INSERT_VERIFICATION = insert(Verification.__table__)  # built once (SQLAlchemy's cache key with it)
_PICTURE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG: what decode_image may accept


@dataclass(frozen=True)
class Caller:
    org_id: str
    terminal_id: str
    actor: str
    request_id: str | None = None


class FaceWork(Protocol):
    """Decodes and analyses a capture (vision/workers.py: in this thread or in model processes)."""

    def submit(self, data: bytes) -> Pending | Later: ...


@dataclass(frozen=True)
class Outcome:
    """The decision about one capture: what is answered and recorded."""
    decision: str
    score: float | None
    reason: str
    subject: AnalyzedFace | None  # the face the decision is about (its quality is recorded)
    verdict: Verdict | None = None  # the size band and thresholds of a scored decision (vision/decision.py)


class Verifier:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore,
                 pipeline: FacePipeline, inference_slots: threading.BoundedSemaphore | None = None,
                 faces: FaceWork | None = None):
        self.settings, self.sessions, self.store, self.pipeline = settings, sessions, store, pipeline
        # at most this many analyses at once across a process's request threads (more only thrash caches)
        self.inference_slots = inference_slots or nullcontext()
        self.faces = faces or InProcessFaces(pipeline, CaptureLimits.from_settings(settings))
        self.terminal_checks = TerminalChecks(settings=settings, sessions=sessions, store=store)  # attestation, replays

    def verify(self, caller: Caller, insured_id: str, image: bytes, settlement_ref: str | None, *,
               admission: Ticket | None = None, claims: Claims | None = None) -> dict:
        """Decide and record. Raises ImageRejected / InvalidInsuredId with nothing kept, Overloaded when
        ``admission`` (the API's ticket) runs out of its latency budget before the analysis, WorkerLost when a
        model process died during it, and CaptureRefused (recorded, no capture stored) for what the terminal
        said about the capture (``claims``: liveness, attestation) or a replayed capture
        (facepay/capture_checks.py).

        The steps, in order (checks of the request belong before the face work, rules on the embedding in
        ``decide``): request checks -> templates -> face work -> decision -> evidence and record."""
        t0 = time.perf_counter()
        check_insured_id(insured_id)  # request checks: nothing below runs for a refused request
        mid = self.pipeline.model_id
        gate, tpl = self.terminal_checks.admit(org_id=caller.org_id, terminal_id=caller.terminal_id,
                                               insured_id=insured_id, settlement_ref=settlement_ref, image=image,
                                               claims=claims, read=lambda db: load_templates(db, insured_id, mid))
        templates = tpl.embeddings
        vid = new_id()
        with admission.slot() if admission is not None else self.inference_slots:
            # the capture goes to the store from this thread while the model process analyses it (the answer
            # waits for both); only bytes that look like a picture, and only once the analysis surely runs
            pending = self.faces.submit(image)
            try:
                stored = self._put_early(caller, vid, image, gate.sha256)
            except BaseException:
                pending.abandon()
                raise
            try:
                faces = pending.result()
            except BaseException:
                self._discard(stored)
                raise
        try:
            outcome = self.decide(faces, templates)
            subject = outcome.subject
            decision, reason = gate.judge(faces.phash, subject.embedding if subject is not None else None, mid,
                                          outcome.decision, outcome.reason)
            outcome = replace(outcome, decision=decision, reason=reason)
        except BaseException:  # a near replay (refused, recorded without its capture)
            self._discard(stored)
            raise
        answer = self.record(caller, insured_id, settlement_ref, image, faces, outcome, t0, gate, vid, stored)
        v = outcome.verdict
        if v is not None and outcome.decision == "match":  # several photos per person (policy there)
            keep_capture(settings=self.settings, sessions=self.sessions, store=self.store, insured_id=insured_id,
                         model=mid, verdict=v, enrolled=enrolled_score(subject.embedding, templates, tpl.refs),
                         embedding=subject.embedding, quality=answer["quality"], image=image,
                         ext=image_kind(image)[0], content_type=image_kind(image)[1],
                         verification_id=answer["verification_id"], actor=caller.actor)
        return answer

    def _capture_key(self, caller: Caller, vid: str, image: bytes) -> tuple[str, str]:
        ext, ctype = image_kind(image)
        return f"captures/{caller.org_id}/{utcnow():%Y/%m/%d}/{vid}{ext}", ctype

    def _put_early(self, caller: Caller, vid: str, image: bytes, sha256: str) -> StoredObject | None:
        if not image.startswith(_PICTURE_MAGIC):
            return None  # the decoder will refuse it: it never reaches the store
        key, ctype = self._capture_key(caller, vid, image)
        return self.store.put_bytes(self.settings.bucket_biometrics, key, image, ctype, sha256=sha256)

    def _discard(self, stored: StoredObject | None) -> None:
        """Remove a capture stored during the analysis of a verification that got no decision (refused, failed)."""
        if stored is None:
            return
        try:
            self.store.delete_many(self.settings.bucket_biometrics, [stored.key])
        except Exception:
            # left in the store without a row, as a crash between the store write and the commit leaves one
            log.warning("could not remove the capture of a verification that got no decision", exc_info=True)

    def decide(self, faces: list[AnalyzedFace], templates: np.ndarray) -> Outcome:
        """The decision from the analysed faces and the person's templates of the current model."""
        if templates.shape[0] == 0:
            return Outcome("not_enrolled", None, "no enrolled photo for this insured id with the current model",
                           faces[0] if faces else None)
        d = decide_verification(faces, templates, self.pipeline.threshold, self.settings.verify_dominance_ratio)
        if d.score is None:
            return Outcome(d.decision, d.score, d.reason, d.face)
        # the match decision: per pack and face-size band, with an uncertain band between two thresholds
        v = Thresholds.of(self.settings, self.pipeline).judge(d.score, d.face.face.width)
        return Outcome(v.decision, d.score, v.reason, d.face, v)

    def record(self, caller: Caller, insured_id: str, settlement_ref: str | None, image: bytes,
               faces: list[AnalyzedFace], outcome: Outcome, t0: float, gate: Gate, vid: str,
               stored: StoredObject | None = None) -> dict:
        """The capture in the store (``stored``: stored already during the analysis), then the verification, its attempt and
        its audit line in one transaction: nothing is answered before both are durable."""
        s, pipeline = self.settings, self.pipeline
        v = outcome.verdict
        threshold = float(v.upper if v is not None else pipeline.threshold)
        score = None if outcome.score is None else float(outcome.score)
        quality = outcome.subject.quality.to_dict() if outcome.subject is not None else None
        if stored is None:
            key, ctype = self._capture_key(caller, vid, image)
            stored = self.store.put_bytes(s.bucket_biometrics, key, image, ctype, sha256=gate.sha256)
        now = utcnow()
        latency_ms = (time.perf_counter() - t0) * 1000
        with gate.recording(self.sessions, vid, undo=lambda: self.store.delete_many(s.bucket_biometrics, [stored.key])) \
                as db:  # the attempt row too; a copy of this capture accepted meanwhile is a replay
            db.execute(_INSERT_VERIFICATION, dict(
                id=vid, created_at=now, org_id=caller.org_id, terminal_id=caller.terminal_id,
                insured_id=insured_id, settlement_ref=settlement_ref, decision=outcome.decision,
                score=score, threshold=threshold, model=pipeline.model_id,
                band=v.band if v else None, threshold_lower=v.lower if v else None,
                quality=quality, faces_found=len(faces), capture_key=stored.key, capture_sha256=stored.sha256,
                capture_expires_at=now + timedelta(days=s.capture_retention_days), latency_ms=latency_ms))
            audit_insert(db, actor=caller.actor, action="verify", outcome=outcome.decision, org_id=caller.org_id,
                         subject=f"verification:{vid}", request_id=caller.request_id,
                         detail={"terminal_id": caller.terminal_id, "insured_id": insured_id,
                                 "settlement_ref": settlement_ref})
        return {
            "verification_id": vid,
            "decision": outcome.decision,
            "score": None if score is None else round(score, 4),
            "threshold": threshold,
            # the band and lower threshold of the decision: an ``uncertain`` answer lies between the two
            "band": v.band if v else None,
            "threshold_lower": v.lower if v else None,
            "reason": outcome.reason,
            "faces_found": len(faces),
            "quality": quality,
            "model": pipeline.model_info,
            "settlement_ref": settlement_ref,
            "created_at": now.isoformat(),
            **gate.answer(),
        }
