"""Face-pay captures kept as further templates of the insured person (several photos per person).

Measured on East Asian faces (docs/face-accuracy.md): a second enrolled photo, scored best-of, raised
close-up TAR at FAR <= 0.1 % from 97.7 % to 99.4 %. The ID photo is often the only one a fund has, so
a terminal capture may become the second one, under this policy:

- off unless ``settings.template_captures_max`` > 0;
- only a ``match`` in the terminal band (a close-up), and only when its similarity to the person's
  *enrolled* photos (never to earlier captures) reaches the band's upper threshold plus
  ``settings.template_capture_margin``: a template made from a capture never admits the next one alone;
- at most ``template_captures_max`` per person and model: the oldest capture template is replaced;
- provenance: ``source = "facepay_capture"``, the verification id and score in the template's quality,
  an audit row ``template.capture``;
- the capture is copied to ``photos/<insured_id>/`` and is then enrolment data: kept until replaced or
  until the person is erased (erasure deletes it with the ID photos); the original capture keeps its
  own retention.
"""
from __future__ import annotations

import hashlib

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kernel.settings import Settings
from storage.audit import audit
from storage.db import session_scope
from storage.models import FaceTemplate
from storage.objects import ObjectStore
from vision.decision import MATCH, TERMINAL, Verdict
from vision.matching import cosine_scores

CAPTURE_SOURCE = "facepay_capture"


def enrolled_score(embedding: np.ndarray, templates: np.ndarray, refs: list[dict]) -> float | None:
    """Best similarity to the templates that did not come from captures."""
    rows = [i for i, r in enumerate(refs) if r.get("source") != CAPTURE_SOURCE]
    if not rows:
        return None
    return float(np.max(cosine_scores(embedding, templates[rows])))


def keep_capture(*, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore, insured_id: str,
                 model: str, verdict: Verdict, enrolled: float | None, embedding: np.ndarray, quality: dict,
                 image: bytes, ext: str, content_type: str, verification_id: str, actor: str) -> str | None:
    """The new template's id when the policy keeps this capture, else None."""
    s = settings
    if (s.template_captures_max <= 0 or verdict.decision != MATCH or verdict.band != TERMINAL
            or enrolled is None or enrolled < verdict.upper + s.template_capture_margin):
        return None
    sha = hashlib.sha256(image).hexdigest()
    key = f"photos/{insured_id}/{sha}{ext}"
    store.put_bytes(s.bucket_biometrics, key, image, content_type)  # the object first: erasure finds it by prefix
    with session_scope(sessions) as db:
        if db.scalar(select(FaceTemplate.id).where(FaceTemplate.insured_id == insured_id,
                                                   FaceTemplate.photo_sha256 == sha)) is not None:
            return None  # the same bytes already enrolled
        old = db.scalars(select(FaceTemplate).where(
            FaceTemplate.insured_id == insured_id, FaceTemplate.model == model,
            FaceTemplate.source == CAPTURE_SOURCE).order_by(FaceTemplate.created_at, FaceTemplate.id)).all()
        replaced = old[:max(0, len(old) - s.template_captures_max + 1)]
        for t in replaced:
            db.delete(t)
        emb = np.asarray(embedding, np.float32)
        row = FaceTemplate(insured_id=insured_id, photo_key=key, photo_sha256=sha, model=model, dim=int(emb.shape[0]),
                           embedding=emb.tobytes(), source=CAPTURE_SOURCE,
                           quality={**quality, "verification_id": verification_id, "score": round(verdict.score, 4),
                                    "enrolled_score": round(enrolled, 4)})
        db.add(row)
        db.flush()
        audit(db, actor=actor, action="template.capture", outcome="ok", subject=f"insured:{insured_id}",
              detail={"verification_id": verification_id, "template_id": row.id,
                      "replaced": [t.id for t in replaced]})
        keys = [t.photo_key for t in replaced]
        new_id = row.id
    if keys:  # after the rows are gone: a failure here leaves an orphan that erasure's prefix sweep removes
        store.delete_many(s.bucket_biometrics, keys)
    return new_id
