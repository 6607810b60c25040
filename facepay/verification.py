"""Face verification at payment (刷脸支付): one capture against the insured person's templates.

Every accepted request becomes a Verification row and its capture an object with its own
retention: later cross-checks of settlements read both as evidence.
"""
from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from facepay.attestation import Claims
from facepay.capture_checks import TerminalChecks
from facepay.templates import load_templates
from kernel.admission import Ticket
from kernel.ids import check_insured_id
from kernel.settings import Settings
from storage.audit import audit
from storage.db import session_scope
from storage.models import Verification, new_id, utcnow
from storage.objects import ObjectStore
from vision.image import decode_image, image_kind
from vision.matching import decide_verification
from vision.pipeline import FacePipeline


@dataclass(frozen=True)
class Caller:
    org_id: str
    terminal_id: str
    actor: str
    request_id: str | None = None


class Verifier:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore,
                 pipeline: FacePipeline, inference_slots: threading.BoundedSemaphore | None = None):
        self.settings, self.sessions, self.store, self.pipeline = settings, sessions, store, pipeline
        # at most this many analyses at once across a process's request threads (more only thrash caches)
        self.inference_slots = inference_slots or nullcontext()
        self.terminal_checks = TerminalChecks(settings=settings, sessions=sessions)  # attestation, replays

    def verify(self, caller: Caller, insured_id: str, image: bytes, settlement_ref: str | None, *,
               admission: Ticket | None = None, claims: Claims | None = None) -> dict:
        """Decide and record. Raises ImageRejected / InvalidInsuredId before anything is stored,
        Overloaded when ``admission`` (the API's ticket) runs out of its latency budget before the analysis,
        and CaptureRefused (recorded, no capture stored) for what the terminal said about the capture
        (``claims``: liveness, attestation) or a replayed capture (facepay/capture_checks.py)."""
        t0 = time.perf_counter()
        s = self.settings
        check_insured_id(insured_id)
        gate = self.terminal_checks.admit(org_id=caller.org_id, terminal_id=caller.terminal_id, insured_id=insured_id,
                                          settlement_ref=settlement_ref, image=image, claims=claims)
        img = decode_image(image, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels,
                           max_decoded_bytes=s.max_decoded_bytes, decode_memory_bytes=s.decode_memory_bytes,
                           max_side=s.max_decoded_side)
        pipeline = self.pipeline
        mid = pipeline.model_id
        threshold = pipeline.threshold
        with session_scope(self.sessions) as db:
            templates = load_templates(db, insured_id, mid).embeddings
        # Only the largest face can be the subject: embed one.
        with admission.slot() if admission is not None else self.inference_slots:
            faces = pipeline.analyze_closeup(img, max_embed=1, small_side=s.verify_detect_max_side)
        if templates.shape[0] == 0:
            decision, score, reason, subject = "not_enrolled", None, "no enrolled photo for this insured id " \
                "with the current model", (faces[0] if faces else None)
        else:
            d = decide_verification(faces, templates, threshold, s.verify_dominance_ratio)
            decision, score, reason, subject = d.decision, d.score, d.reason, d.face
        quality = subject.quality.to_dict() if subject is not None else None
        decision, reason = gate.judge(img, subject.embedding if subject is not None else None, mid, decision, reason)

        vid = new_id()
        now = utcnow()
        ext, ctype = image_kind(image)
        key = f"captures/{caller.org_id}/{now:%Y/%m/%d}/{vid}{ext}"
        stored = self.store.put_bytes(s.bucket_biometrics, key, image, ctype)
        latency_ms = (time.perf_counter() - t0) * 1000
        with gate.recording(self.sessions, vid, undo=lambda: self.store.delete_many(s.bucket_biometrics, [stored.key])) \
                as db:  # the attempt row too; a copy of this capture accepted meanwhile is a replay
            db.add(Verification(
                id=vid, created_at=now, org_id=caller.org_id, terminal_id=caller.terminal_id,
                insured_id=insured_id, settlement_ref=settlement_ref, decision=decision,
                score=None if score is None else float(score), threshold=float(threshold), model=mid,
                quality=quality, faces_found=len(faces), capture_key=stored.key, capture_sha256=stored.sha256,
                capture_expires_at=now + timedelta(days=s.capture_retention_days), latency_ms=latency_ms))
            audit(db, actor=caller.actor, action="verify", outcome=decision, org_id=caller.org_id,
                  subject=f"verification:{vid}", request_id=caller.request_id,
                  detail={"terminal_id": caller.terminal_id, "insured_id": insured_id,
                          "settlement_ref": settlement_ref})
        return {
            "verification_id": vid,
            "decision": decision,
            "score": None if score is None else round(float(score), 4),
            "threshold": float(threshold),
            "reason": reason,
            "faces_found": len(faces),
            "quality": quality,
            "model": pipeline.model_info,
            "settlement_ref": settlement_ref,
            "created_at": now.isoformat(),
            **gate.answer(),
        }
