"""An insured person's enrolled templates as one matrix, for the terminal and the cross-check alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from storage.models import FaceTemplate, StaffMember, StaffTemplate

# built once: every verification reads templates, and SQLAlchemy then computes this statement's cache key once
_TEMPLATES = select(FaceTemplate.id, FaceTemplate.embedding, FaceTemplate.dim, FaceTemplate.photo_sha256,
                    FaceTemplate.source).where(FaceTemplate.insured_id == bindparam("insured_id"),
                                               FaceTemplate.model == bindparam("model"))


@dataclass
class Templates:
    embeddings: np.ndarray  # (n, dim) float32; (0, 0) when the person has none of this model
    refs: list[dict]  # per row: template_id and photo_sha256 (evidence shows which photo matched)

    @property
    def empty(self) -> bool:
        return self.embeddings.size == 0


def load_templates(db: Session, insured_id: str, model: str) -> Templates:
    """Only templates of ``model`` (``FacePipeline.model_id``): embeddings of other models do not compare."""
    rows = db.execute(_TEMPLATES, {"insured_id": insured_id, "model": model}).all()
    if not rows:
        return Templates(np.zeros((0, 0), np.float32), [])
    embs = np.stack([np.frombuffer(e, dtype=np.float32, count=d) for _, e, d, _, _ in rows])
    return Templates(embs, [{"template_id": i, "photo_sha256": sha, "source": src} for i, _, _, sha, src in rows])


@dataclass
class StaffGallery:
    """An organisation's staff templates of one model: who works at the counter."""
    embeddings: np.ndarray  # (n, dim) float32; (0, 0) when none
    member_ids: list[str]  # per row: StaffMember.id
    staff_ids: dict[str, str]  # StaffMember.id -> the organisation's staff id (工号)
    names: dict[str, str | None]  # StaffMember.id -> name

    @property
    def empty(self) -> bool:
        return self.embeddings.size == 0

    def best(self, embedding: np.ndarray) -> tuple[str | None, float | None]:
        """(member id, similarity) of the staff member most like ``embedding``; (None, None) if no staff."""
        if self.empty:
            return None, None
        sims = self.embeddings @ embedding.astype(np.float32)
        i = int(np.argmax(sims))
        return self.member_ids[i], float(sims[i])


def load_staff(db: Session, org_id: str, model: str) -> StaffGallery:
    """The staff templates of ``org_id`` made with ``model`` (never another organisation's)."""
    rows = db.execute(select(StaffTemplate.member_id, StaffTemplate.embedding, StaffTemplate.dim,
                             StaffMember.staff_id, StaffMember.name)
                      .join(StaffMember, StaffMember.id == StaffTemplate.member_id)
                      .where(StaffTemplate.org_id == org_id, StaffMember.org_id == org_id,
                             StaffTemplate.model == model)).all()
    if not rows:
        return StaffGallery(np.zeros((0, 0), np.float32), [], {}, {})
    embs = np.stack([np.frombuffer(e, dtype=np.float32, count=d) for _, e, d, _, _ in rows])
    return StaffGallery(embs, [m for m, *_ in rows], {m: sid for m, _, _, sid, _ in rows},
                        {m: name for m, _, _, _, name in rows})
