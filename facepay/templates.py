"""An insured person's enrolled templates as one matrix, for the terminal and the cross-check alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import FaceTemplate


@dataclass
class Templates:
    embeddings: np.ndarray  # (n, dim) float32; (0, 0) when the person has none of this model
    refs: list[dict]  # per row: template_id and photo_sha256 (evidence shows which photo matched)

    @property
    def empty(self) -> bool:
        return self.embeddings.size == 0


def load_templates(db: Session, insured_id: str, model: str) -> Templates:
    """Only templates of ``model`` (``FacePipeline.model_id``): embeddings of other models do not compare."""
    rows = db.execute(select(FaceTemplate.id, FaceTemplate.embedding, FaceTemplate.dim, FaceTemplate.photo_sha256)
                      .where(FaceTemplate.insured_id == insured_id, FaceTemplate.model == model)).all()
    if not rows:
        return Templates(np.zeros((0, 0), np.float32), [])
    embs = np.stack([np.frombuffer(e, dtype=np.float32, count=d) for _, e, d, _ in rows])
    return Templates(embs, [{"template_id": i, "photo_sha256": sha} for i, _, _, sha in rows])
