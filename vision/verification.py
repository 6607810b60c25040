"""Face verification at payment (刷脸支付): one capture against the insured person's templates.

Every accepted request becomes a Verification row and its capture an object with its own
retention: later cross-checks of settlements read both as evidence.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy import select

from dualcheck.runtime import Runtime
from storage.audit import audit
from storage.db import session_scope
from storage.models import FaceTemplate, Verification, new_id, utcnow
from vision.enrollment import check_insured_id, model_id
from vision.image import decode_image, image_kind
from vision.matching import decide_verification


@dataclass(frozen=True)
class Caller:
    org_id: str
    terminal_id: str
    actor: str
    request_id: str | None = None


class Verifier:
    def __init__(self, rt: Runtime):
        self.rt = rt

    def templates(self, insured_id: str, model: str) -> np.ndarray:
        with session_scope(self.rt.sessions) as db:
            rows = db.execute(select(FaceTemplate.embedding, FaceTemplate.dim).where(
                FaceTemplate.insured_id == insured_id, FaceTemplate.model == model)).all()
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(e, dtype=np.float32, count=d) for e, d in rows])

    def verify(self, caller: Caller, insured_id: str, image: bytes, settlement_ref: str | None) -> dict:
        """Decide and record. Raises ImageRejected / InvalidInsuredId before anything is stored."""
        t0 = time.perf_counter()
        s = self.rt.settings
        check_insured_id(insured_id)
        img = decode_image(image, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
        pipeline = self.rt.pipeline
        mid = model_id(pipeline)
        threshold = pipeline.threshold
        templates = self.templates(insured_id, mid)
        # Only the largest face can be the subject: embed one. Terminals send close-ups, so detect
        # on a small copy first and search at full working size only when that finds nothing.
        with self.rt.inference_slots:
            faces = pipeline.analyze(img, max_embed=1, detect_max_side=s.verify_detect_max_side)
            if not faces:
                faces = pipeline.analyze(img, max_embed=1)
        if templates.shape[0] == 0:
            decision, score, reason, subject = "not_enrolled", None, "no enrolled photo for this insured id " \
                "with the current model", (faces[0] if faces else None)
        else:
            d = decide_verification(faces, templates, threshold, s.verify_dominance_ratio)
            decision, score, reason, subject = d.decision, d.score, d.reason, d.face
        quality = subject.quality.to_dict() if subject is not None else None

        vid = new_id()
        now = utcnow()
        ext, ctype = image_kind(image)
        key = f"captures/{caller.org_id}/{now:%Y/%m/%d}/{vid}{ext}"
        stored = self.rt.store.put_bytes(s.bucket_biometrics, key, image, ctype)
        latency_ms = (time.perf_counter() - t0) * 1000
        with session_scope(self.rt.sessions) as db:
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
        }
