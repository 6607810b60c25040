"""Enrollment of insured persons' photos and their erasure (right to erasure).

Photos go to object storage, templates to the index. Re-sending a photo already enrolled for the
same person is recognised by its SHA-256 and skipped, so bulk imports can be rerun safely.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kernel.ids import check_insured_id
from kernel.settings import Settings
from storage.audit import audit
from storage.db import session_scope
from storage.models import FaceTemplate, InsuredPerson, utcnow
from storage.objects import ObjectStore
from vision.image import ImageRejected, decode_image, image_kind
from vision.matching import EnrollmentRefused, select_enrollment_face
from vision.pipeline import FacePipeline


@dataclass
class PhotoResult:
    name: str
    status: str  # enrolled | duplicate | refused
    code: str | None = None
    reason: str | None = None
    template_id: str | None = None
    quality: dict | None = field(default=None)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Enroller:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore,
                 pipeline: FacePipeline):
        self.settings, self.sessions, self.store, self.pipeline = settings, sessions, store, pipeline

    def enroll(self, insured_id: str, photos: list[tuple[str, bytes]], *, actor: str,
               request_id: str | None = None, source: str = "api") -> list[PhotoResult]:
        check_insured_id(insured_id)
        s = self.settings
        pipeline = self.pipeline
        mid = pipeline.model_id
        results: list[PhotoResult] = []
        for name, data in photos:
            try:
                img = decode_image(data, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
                face = select_enrollment_face(pipeline.analyze(img))
            except (ImageRejected, EnrollmentRefused) as e:
                results.append(PhotoResult(name, "refused", e.code, e.reason))
                continue
            sha = hashlib.sha256(data).hexdigest()
            with session_scope(self.sessions) as db:
                existing = db.scalar(select(FaceTemplate).where(
                    FaceTemplate.insured_id == insured_id, FaceTemplate.photo_sha256 == sha))
                if existing is not None:
                    results.append(PhotoResult(name, "duplicate", "already_enrolled",
                                               "this photo is already enrolled for this person",
                                               existing.id, existing.quality))
                    continue
            ext, ctype = image_kind(data)
            key = f"photos/{insured_id}/{sha}{ext}"
            # Object first, row second: a crash in between leaves an orphan object under the
            # person's prefix, which erasure removes by prefix too, never a row without its photo.
            self.store.put_bytes(s.bucket_biometrics, key, data, ctype)
            emb = np.asarray(face.embedding, dtype=np.float32)
            quality = face.quality.to_dict()
            with session_scope(self.sessions) as db:
                if db.get(InsuredPerson, insured_id) is None:
                    db.add(InsuredPerson(id=insured_id))
                    db.flush()
                tpl = FaceTemplate(insured_id=insured_id, photo_key=key, photo_sha256=sha, model=mid,
                                   dim=int(emb.shape[0]), embedding=emb.tobytes(), quality=quality,
                                   source=source)
                db.add(tpl)
                db.flush()
                results.append(PhotoResult(name, "enrolled", template_id=tpl.id, quality=quality))
        with session_scope(self.sessions) as db:
            counts = {st: sum(r.status == st for r in results) for st in ("enrolled", "duplicate", "refused")}
            audit(db, actor=actor, action="enroll", outcome="ok" if counts["refused"] == 0 else "partial",
                  subject=f"insured:{insured_id}", request_id=request_id,
                  detail={**counts, "refusals": [r.code for r in results if r.status == "refused"],
                          "source": source})
        return results

    def erase(self, insured_id: str, *, actor: str, request_id: str | None = None) -> dict:
        """Delete every photo and template of a person. Objects go first: if the store fails,
        the rows stay and the call can be repeated; nothing biometric is left half-erased."""
        check_insured_id(insured_id)
        s = self.settings
        with session_scope(self.sessions) as db:
            keys = set(db.scalars(select(FaceTemplate.photo_key).where(FaceTemplate.insured_id == insured_id)))
            known = db.get(InsuredPerson, insured_id) is not None
        keys |= set(self.store.list_keys(s.bucket_biometrics, prefix=f"photos/{insured_id}/"))
        failures = self.store.delete_many(s.bucket_biometrics, sorted(keys))
        if failures:
            raise RuntimeError(f"object store refused to delete {len(failures)} photo(s); nothing was erased "
                               "from the index, retry")
        with session_scope(self.sessions) as db:
            n_templates = len(db.scalars(select(FaceTemplate.id).where(
                FaceTemplate.insured_id == insured_id)).all())
            person = db.get(InsuredPerson, insured_id)
            if person is not None:
                db.delete(person)
            audit(db, actor=actor, action="erase", outcome="ok" if known else "not_found",
                  subject=f"insured:{insured_id}", request_id=request_id,
                  detail={"photos_deleted": len(keys), "templates_deleted": n_templates,
                          "erased_at": utcnow().isoformat()})
        return {"insured_id": insured_id, "found": known, "photos_deleted": len(keys),
                "templates_deleted": n_templates}
