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

from facepay.capture_templates import enrolled_score, keep_capture
from facepay.templates import load_templates
from kernel.admission import Ticket
from kernel.ids import check_insured_id
from kernel.settings import Settings
from storage.audit import audit
from storage.db import session_scope
from storage.models import Verification, new_id, utcnow
from storage.objects import ObjectStore
from vision.decision import Thresholds
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

    def verify(self, caller: Caller, insured_id: str, image: bytes, settlement_ref: str | None, *,
               admission: Ticket | None = None) -> dict:
        """Decide and record. Raises ImageRejected / InvalidInsuredId before anything is stored, and
        Overloaded when ``admission`` (the API's ticket) runs out of its latency budget before the analysis."""
        t0 = time.perf_counter()
        s = self.settings
        check_insured_id(insured_id)
        img = decode_image(image, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels,
                           max_decoded_bytes=s.max_decoded_bytes, decode_memory_bytes=s.decode_memory_bytes,
                           max_side=s.max_decoded_side)
        pipeline = self.pipeline
        mid = pipeline.model_id
        threshold = pipeline.threshold
        with session_scope(self.sessions) as db:
            tpl = load_templates(db, insured_id, mid)
            templates = tpl.embeddings
        # Only the largest face can be the subject: embed one.
        with admission.slot() if admission is not None else self.inference_slots:
            faces = pipeline.analyze_closeup(img, max_embed=1, small_side=s.verify_detect_max_side)
        verdict = None
        if templates.shape[0] == 0:
            decision, score, reason, subject = "not_enrolled", None, "no enrolled photo for this insured id " \
                "with the current model", (faces[0] if faces else None)
        else:
            d = decide_verification(faces, templates, threshold, s.verify_dominance_ratio)
            decision, score, reason, subject = d.decision, d.score, d.reason, d.face
            if score is not None:  # the match decision: per pack and face-size band, with an uncertain band
                verdict = Thresholds.of(s, pipeline).judge(score, subject.face.width)
                decision, reason, threshold = verdict.decision, verdict.reason, verdict.upper
        quality = subject.quality.to_dict() if subject is not None else None

        vid = new_id()
        now = utcnow()
        ext, ctype = image_kind(image)
        key = f"captures/{caller.org_id}/{now:%Y/%m/%d}/{vid}{ext}"
        stored = self.store.put_bytes(s.bucket_biometrics, key, image, ctype)
        latency_ms = (time.perf_counter() - t0) * 1000
        with session_scope(self.sessions) as db:
            db.add(Verification(
                id=vid, created_at=now, org_id=caller.org_id, terminal_id=caller.terminal_id,
                insured_id=insured_id, settlement_ref=settlement_ref, decision=decision,
                score=None if score is None else float(score), threshold=float(threshold), model=mid,
                band=verdict.band if verdict else None, threshold_lower=verdict.lower if verdict else None,
                quality=quality, faces_found=len(faces), capture_key=stored.key, capture_sha256=stored.sha256,
                capture_expires_at=now + timedelta(days=s.capture_retention_days), latency_ms=latency_ms))
            audit(db, actor=caller.actor, action="verify", outcome=decision, org_id=caller.org_id,
                  subject=f"verification:{vid}", request_id=caller.request_id,
                  detail={"terminal_id": caller.terminal_id, "insured_id": insured_id,
                          "settlement_ref": settlement_ref})
        if verdict is not None and verdict.decision == "match":  # several photos per person (policy there)
            keep_capture(settings=s, sessions=self.sessions, store=self.store, insured_id=insured_id, model=mid,
                         verdict=verdict, enrolled=enrolled_score(subject.embedding, templates, tpl.refs),
                         embedding=subject.embedding, quality=quality, image=image, ext=ext, content_type=ctype,
                         verification_id=vid, actor=caller.actor)
        return {
            "verification_id": vid,
            "decision": decision,
            "score": None if score is None else round(float(score), 4),
            "threshold": float(threshold),
            # the band and lower threshold of the decision: an ``uncertain`` answer lies between the two
            "band": verdict.band if verdict else None,
            "threshold_lower": verdict.lower if verdict else None,
            "reason": reason,
            "faces_found": len(faces),
            "quality": quality,
            "model": pipeline.model_info,
            "settlement_ref": settlement_ref,
            "created_at": now.isoformat(),
        }
