"""Enrollment of insured persons' photos and their erasure (right to erasure).

Photos go to object storage, templates to the index. Re-sending a photo already enrolled for the
same person is recognised by its SHA-256 and skipped, so bulk imports can be rerun safely.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import Select, select
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


@dataclass
class AcceptedPhoto:
    """A photo that passed the enrolment gate: exactly one usable face, its embedding and quality."""
    name: str
    data: bytes
    sha256: str
    ext: str
    content_type: str
    embedding: np.ndarray
    quality: dict


def template_fields(p: AcceptedPhoto, key: str, model: str, source: str) -> dict:
    """The columns every template table shares (FaceTemplate, StaffTemplate)."""
    return dict(photo_key=key, photo_sha256=p.sha256, model=model, dim=int(p.embedding.shape[0]),
                embedding=p.embedding.tobytes(), quality=p.quality, source=source)


def enroll_each(photos: list[tuple[str, bytes]], *, settings: Settings, pipeline: FacePipeline,
                store: ObjectStore, sessions: sessionmaker[Session], duplicate: Callable[[str], Select],
                key_for: Callable[[str, str], str], row: Callable[[Session, AcceptedPhoto, str], object]
                ) -> list[PhotoResult]:
    """The enrolment of photos, whoever they are of (insured people, staff): each photo is decoded
    within the upload limits and judged alone by the enrolment gate; a photo already enrolled
    (``duplicate(sha256)``: a select of (template id, quality)) is a duplicate; the others go to the
    biometrics bucket under ``key_for(sha256, ext)``, then ``row(db, photo, key)`` makes the template
    row (and its owner if new), which is written in its own transaction."""
    results: list[PhotoResult] = []
    for name, data in photos:
        try:
            img = decode_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
                               max_decoded_bytes=settings.max_decoded_bytes,
                               decode_memory_bytes=settings.decode_memory_bytes,
                               max_side=settings.max_decoded_side)
            face = select_enrollment_face(pipeline.analyze(img))
        except (ImageRejected, EnrollmentRefused) as e:
            results.append(PhotoResult(name, "refused", e.code, e.reason))
            continue
        sha = hashlib.sha256(data).hexdigest()
        with session_scope(sessions) as db:
            dup = db.execute(duplicate(sha)).first()
        if dup is not None:
            results.append(PhotoResult(name, "duplicate", "already_enrolled",
                                       "this photo is already enrolled for this person", dup[0], dup[1]))
            continue
        ext, ctype = image_kind(data)
        key = key_for(sha, ext)
        # Object first, row second: a crash in between leaves an orphan object under the
        # person's prefix, which erasure removes by prefix too, never a row without its photo.
        store.put_bytes(settings.bucket_biometrics, key, data, ctype)
        photo = AcceptedPhoto(name, data, sha, ext, ctype, np.asarray(face.embedding, dtype=np.float32),
                              face.quality.to_dict())
        with session_scope(sessions) as db:
            tpl = row(db, photo, key)
            db.add(tpl)
            db.flush()
            results.append(PhotoResult(name, "enrolled", template_id=tpl.id, quality=photo.quality))
    return results


def count_results(results: list[PhotoResult]) -> dict:
    return {st: sum(r.status == st for r in results) for st in ("enrolled", "duplicate", "refused")}


def delete_objects(store: ObjectStore, bucket: str, keys: set[str], prefix: str) -> int:
    """Delete ``keys`` and anything else under ``prefix`` (orphans of an interrupted enrolment);
    raises when the store refuses, so the caller keeps its rows and the erasure can be repeated."""
    keys = set(keys) | set(store.list_keys(bucket, prefix=prefix))
    failures = store.delete_many(bucket, sorted(keys))
    if failures:
        raise RuntimeError(f"object store refused to delete {len(failures)} photo(s); nothing was erased "
                           "from the index, retry")
    return len(keys)


class Enroller:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore,
                 pipeline: FacePipeline):
        self.settings, self.sessions, self.store, self.pipeline = settings, sessions, store, pipeline

    def enroll(self, insured_id: str, photos: list[tuple[str, bytes]], *, actor: str,
               request_id: str | None = None, source: str = "api") -> list[PhotoResult]:
        check_insured_id(insured_id)
        mid = self.pipeline.model_id

        def row(db: Session, p: AcceptedPhoto, key: str) -> FaceTemplate:
            if db.get(InsuredPerson, insured_id) is None:
                db.add(InsuredPerson(id=insured_id))
                db.flush()
            return FaceTemplate(insured_id=insured_id, **template_fields(p, key, mid, source))

        results = enroll_each(
            photos, settings=self.settings, pipeline=self.pipeline, store=self.store, sessions=self.sessions,
            duplicate=lambda sha: select(FaceTemplate.id, FaceTemplate.quality).where(
                FaceTemplate.insured_id == insured_id, FaceTemplate.photo_sha256 == sha),
            key_for=lambda sha, ext: f"photos/{insured_id}/{sha}{ext}", row=row)
        with session_scope(self.sessions) as db:
            counts = count_results(results)
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
        n_photos = delete_objects(self.store, s.bucket_biometrics, keys, f"photos/{insured_id}/")
        with session_scope(self.sessions) as db:
            n_templates = len(db.scalars(select(FaceTemplate.id).where(
                FaceTemplate.insured_id == insured_id)).all())
            person = db.get(InsuredPerson, insured_id)
            if person is not None:
                db.delete(person)
            audit(db, actor=actor, action="erase", outcome="ok" if known else "not_found",
                  subject=f"insured:{insured_id}", request_id=request_id,
                  detail={"photos_deleted": n_photos, "templates_deleted": n_templates,
                          "erased_at": utcnow().isoformat()})
        return {"insured_id": insured_id, "found": known, "photos_deleted": n_photos,
                "templates_deleted": n_templates}
