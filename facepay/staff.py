"""The staff gallery of an organisation (医保医师, 药师, cashiers...): enrolment of their photos,
listing, erasure, and the operators' decision on suggested regulars (correlate/regulars.py).

Staff are recognised in the footage so that the cashier in view all day is never taken for a
customer, an impostor or one face with many cards. Photos pass the same gate as insured people's
(facepay/enrollment.py) and live in the biometrics bucket under ``staff/<org>/<member>/``; every
read and change is scoped to one organisation and audited (ids and counts, never biometrics).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from facepay.enrollment import (
    AcceptedPhoto,
    PhotoResult,
    count_results,
    delete_objects,
    enroll_each,
    template_fields,
)
from kernel.errors import Refusal
from kernel.ids import is_staff_id
from kernel.settings import Settings
from storage.audit import audit
from storage.db import session_scope
from storage.models import (
    STAFF_ROLES,
    FaceEvidence,
    Organisation,
    StaffMember,
    StaffSuggestion,
    StaffTemplate,
    new_id,
    utcnow,
)
from storage.objects import ObjectStore
from vision.image import image_kind
from vision.pipeline import FacePipeline

STAFF_ID_RULE = "1-64 characters: letters, digits, '_' or '-', starting with a letter or digit"
SUGGESTION_STATES = ("pending", "confirmed", "dismissed")
MAX_NAME = 200


class StaffRefusal(Refusal):
    pass


def check_staff_id(staff_id: str) -> str:
    # the same plain characters as insured ids: staff ids end up in object keys, URLs and audit lines
    if not is_staff_id(staff_id):
        raise StaffRefusal(400, "invalid_staff_id", f"staff id must be {STAFF_ID_RULE}")
    return staff_id


def check_role(role: str | None) -> str | None:
    if role is not None and role not in STAFF_ROLES:
        raise StaffRefusal(400, "invalid_role", f"role must be one of {', '.join(STAFF_ROLES)}")
    return role


def check_name(name: str | None) -> str | None:
    name = (name or "").strip() or None
    if name is not None and len(name) > MAX_NAME:
        raise StaffRefusal(400, "invalid_name", f"name may be at most {MAX_NAME} characters")
    return name


def prefix(org_id: str, member_id: str) -> str:
    return f"staff/{org_id}/{member_id}/"


def member_view(m: StaffMember, templates: list[StaffTemplate]) -> dict:
    return {"org_id": m.org_id, "staff_id": m.staff_id, "name": m.name, "role": m.role,
            "created_at": m.created_at.isoformat(),
            "photos": [{"template_id": t.id, "photo_sha256": t.photo_sha256, "model": t.model, "source": t.source,
                        "quality": t.quality, "created_at": t.created_at.isoformat()} for t in templates]}


def suggestion_view(s: StaffSuggestion) -> dict:
    return {"id": s.id, "org_id": s.org_id, "camera_id": s.camera_id, "status": s.status,
            "first_seen": s.first_seen.isoformat(), "last_seen": s.last_seen.isoformat(), "checks": s.checks,
            "checks_total": s.checks_total, "share": round(s.checks / s.checks_total, 3) if s.checks_total else None,
            "days": s.days, "evidence_ids": list(s.evidence_ids or []), "model": s.model,
            "decided_by": s.decided_by, "decided_at": s.decided_at.isoformat() if s.decided_at else None,
            "member_id": s.member_id}


@dataclass
class Enrolment:
    member: dict | None  # None when every photo was refused (nothing stored)
    results: list[PhotoResult]

    @property
    def ok(self) -> bool:
        return any(r.status in ("enrolled", "duplicate") for r in self.results)

    def to_dict(self) -> dict:
        c = count_results(self.results)
        return {"staff": self.member, "enrolled": c["enrolled"], "duplicates": c["duplicate"],
                "refused": c["refused"], "results": [r.to_dict() for r in self.results]}


class StaffRoster:
    """Staff of organisations. ``pipeline`` is needed only to enrol photos."""

    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore,
                 pipeline: FacePipeline | None = None):
        self.settings, self.sessions, self.store, self.pipeline = settings, sessions, store, pipeline

    # --- lookups ------------------------------------------------------------------------------
    @staticmethod
    def _org(db: Session, org_id: str) -> Organisation:
        org = db.get(Organisation, org_id[:64])
        if org is None:
            raise StaffRefusal(404, "not_found", f"no organisation {org_id!r}")
        return org

    @staticmethod
    def _member(db: Session, org_id: str, staff_id: str) -> StaffMember | None:
        return db.scalar(select(StaffMember).where(StaffMember.org_id == org_id, StaffMember.staff_id == staff_id))

    def _found(self, db: Session, org_id: str, staff_id: str) -> StaffMember:
        self._org(db, org_id)
        m = self._member(db, org_id, check_staff_id(staff_id))
        if m is None:
            raise StaffRefusal(404, "not_found", f"no staff member {staff_id!r} at {org_id}")
        return m

    @staticmethod
    def _templates(db: Session, member_id: str) -> list[StaffTemplate]:
        return list(db.scalars(select(StaffTemplate).where(StaffTemplate.member_id == member_id)
                               .order_by(StaffTemplate.created_at, StaffTemplate.id)))

    # --- enrolment ----------------------------------------------------------------------------
    def enroll(self, org_id: str, staff_id: str, photos: list[tuple[str, bytes]], *, name: str | None = None,
               role: str | None = None, actor: str, request_id: str | None = None, source: str = "api") -> Enrolment:
        """Enrol photos of a staff member (created with the first accepted photo). Each photo is judged
        alone by the enrolment gate; when all are refused nothing is stored."""
        check_staff_id(staff_id)
        role, name = check_role(role), check_name(name)
        with session_scope(self.sessions) as db:
            self._org(db, org_id)
            m = self._member(db, org_id, staff_id)
            member_id = m.id if m is not None else new_id()
        mid = self.pipeline.model_id

        def row(db: Session, p: AcceptedPhoto, key: str) -> StaffTemplate:
            if db.get(StaffMember, member_id) is None:
                db.add(StaffMember(id=member_id, org_id=org_id, staff_id=staff_id, name=name, role=role or "other"))
                db.flush()
            return StaffTemplate(member_id=member_id, org_id=org_id, **template_fields(p, key, mid, source))

        results = enroll_each(
            photos, settings=self.settings, pipeline=self.pipeline, store=self.store, sessions=self.sessions,
            duplicate=lambda sha: select(StaffTemplate.id, StaffTemplate.quality).where(
                StaffTemplate.member_id == member_id, StaffTemplate.photo_sha256 == sha),
            key_for=lambda sha, ext: f"{prefix(org_id, member_id)}{sha}{ext}", row=row)
        counts = count_results(results)
        with session_scope(self.sessions) as db:
            m = db.get(StaffMember, member_id)
            if m is not None and (counts["enrolled"] or counts["duplicate"]):
                m.name = name if name is not None else m.name
                m.role = role or m.role
            audit(db, actor=actor, action="staff.enroll", outcome="ok" if counts["refused"] == 0 else
                  ("partial" if m is not None else "refused"), org_id=org_id, subject=f"staff:{org_id}/{staff_id}",
                  request_id=request_id, detail={**counts, "source": source,
                                                 "refusals": [r.code for r in results if r.status == "refused"]})
            view = member_view(m, self._templates(db, m.id)) if m is not None else None
        return Enrolment(view, results)

    # --- reads (audited: who saw whose biometric data) ---------------------------------------------
    def members(self, org_id: str, *, actor: str, request_id: str | None = None) -> list[dict]:
        with session_scope(self.sessions) as db:
            self._org(db, org_id)
            members = list(db.scalars(select(StaffMember).where(StaffMember.org_id == org_id)
                                      .order_by(StaffMember.staff_id)))
            out = [member_view(m, self._templates(db, m.id)) for m in members]
            audit(db, actor=actor, action="staff.list", outcome="ok", org_id=org_id, request_id=request_id,
                  detail={"members": len(out)})
        return out

    def get(self, org_id: str, staff_id: str, *, actor: str, request_id: str | None = None) -> dict:
        with session_scope(self.sessions) as db:
            m = self._found(db, org_id, staff_id)
            audit(db, actor=actor, action="staff.view", outcome="ok", org_id=org_id,
                  subject=f"staff:{org_id}/{staff_id}", request_id=request_id)
            return member_view(m, self._templates(db, m.id))

    def photo(self, org_id: str, staff_id: str, template_id: str, *, actor: str,
              request_id: str | None = None) -> str:
        """The object key of one enrolled staff photo (the caller streams it); audited."""
        with session_scope(self.sessions) as db:
            m = self._found(db, org_id, staff_id)
            tpl = db.get(StaffTemplate, template_id[:32])
            if tpl is None or tpl.member_id != m.id:
                raise StaffRefusal(404, "not_found", "no such photo of this staff member")
            audit(db, actor=actor, action="staff.photo.view", outcome="ok", org_id=org_id,
                  subject=f"staff_template:{tpl.id}", request_id=request_id, detail={"staff_id": staff_id})
            return tpl.photo_key

    # --- erasure ------------------------------------------------------------------------------
    def erase(self, org_id: str, staff_id: str, *, actor: str, request_id: str | None = None) -> dict:
        """Every photo and template of a staff member, then the member. Objects go first: if the store
        fails, the rows stay and the call can be repeated. A suggestion confirmed as this member goes
        too (it holds the face's embedding)."""
        with session_scope(self.sessions) as db:
            m = self._found(db, org_id, staff_id)
            member_id = m.id
            keys = {k for k in db.scalars(select(StaffTemplate.photo_key).where(StaffTemplate.member_id == m.id))
                    if k.startswith(prefix(org_id, member_id))}  # only the gallery's own objects, never evidence
        n_photos = delete_objects(self.store, self.settings.bucket_biometrics, keys, prefix(org_id, member_id))
        with session_scope(self.sessions) as db:
            n_templates = db.execute(delete(StaffTemplate).where(StaffTemplate.member_id == member_id)).rowcount
            n_sugg = db.execute(delete(StaffSuggestion).where(StaffSuggestion.org_id == org_id,
                                                              StaffSuggestion.member_id == member_id)).rowcount
            db.execute(delete(StaffMember).where(StaffMember.id == member_id))
            audit(db, actor=actor, action="staff.erase", outcome="ok", org_id=org_id,
                  subject=f"staff:{org_id}/{staff_id}", request_id=request_id,
                  detail={"photos_deleted": n_photos, "templates_deleted": n_templates,
                          "suggestions_deleted": n_sugg, "erased_at": utcnow().isoformat()})
        return {"org_id": org_id, "staff_id": staff_id, "photos_deleted": n_photos, "templates_deleted": n_templates}

    # --- suggested regulars (found by correlate/regulars.py) ------------------------------------
    def _suggestion(self, db: Session, org_id: str, suggestion_id: str) -> StaffSuggestion:
        self._org(db, org_id)
        sg = db.get(StaffSuggestion, suggestion_id[:32])
        if sg is None or sg.org_id != org_id:
            raise StaffRefusal(404, "not_found", f"no staff suggestion {suggestion_id!r} at {org_id}")
        return sg

    def suggestions(self, org_id: str, status: str = "pending", *, actor: str,
                    request_id: str | None = None) -> list[dict]:
        if status not in SUGGESTION_STATES + ("all",):
            raise StaffRefusal(400, "invalid_status", f"status must be one of {', '.join(SUGGESTION_STATES)}, all")
        with session_scope(self.sessions) as db:
            self._org(db, org_id)
            q = select(StaffSuggestion).where(StaffSuggestion.org_id == org_id)
            if status != "all":
                q = q.where(StaffSuggestion.status == status)
            out = [suggestion_view(s) for s in db.scalars(q.order_by(StaffSuggestion.last_seen.desc()))]
            audit(db, actor=actor, action="staff.suggestions.list", outcome="ok", org_id=org_id,
                  request_id=request_id, detail={"status": status, "suggestions": len(out)})
        return out

    def suggestion_face(self, org_id: str, suggestion_id: str, evidence_id: str, *, actor: str,
                        request_id: str | None = None) -> str:
        """The object key of one face crop behind a suggestion (the caller streams it); audited."""
        with session_scope(self.sessions) as db:
            sg = self._suggestion(db, org_id, suggestion_id)
            fe = db.get(FaceEvidence, evidence_id[:32])
            if fe is None or evidence_id not in (sg.evidence_ids or []) or fe.org_id != org_id:
                raise StaffRefusal(404, "not_found", "no such face behind this suggestion")
            audit(db, actor=actor, action="evidence.face.view", outcome="ok", org_id=org_id,
                  subject=f"face_evidence:{fe.id}", request_id=request_id, detail={"staff_suggestion": sg.id})
            return fe.crop_key

    def confirm(self, org_id: str, suggestion_id: str, *, staff_id: str, name: str | None = None,
                role: str | None = None, actor: str, request_id: str | None = None) -> dict:
        """The suggested face is this staff member: the member (new, or an existing one of that id) gets a
        template from the suggestion's mean embedding, with a copy of a representative crop as its photo
        (a copy: evidence crops follow their own retention, and erasing the member must not touch them)."""
        check_staff_id(staff_id)
        role, name = check_role(role), check_name(name)
        with session_scope(self.sessions) as db:
            sg = self._suggestion(db, org_id, suggestion_id)
            if sg.status != "pending":
                raise StaffRefusal(409, "already_decided", f"the suggestion was already {sg.status}")
            crops = [db.get(FaceEvidence, e) for e in sg.evidence_ids or []]
            crop_key = next((fe.crop_key for fe in crops if fe is not None), None)
            m = self._member(db, org_id, staff_id)
            member_id = m.id if m is not None else new_id()
        data = self.store.get_bytes(self.settings.bucket_biometrics, crop_key) if crop_key else None
        if data is None:
            raise StaffRefusal(409, "no_crop", "the faces behind this suggestion are no longer stored")
        sha = hashlib.sha256(data).hexdigest()
        ext, ctype = image_kind(data)
        key = f"{prefix(org_id, member_id)}{sha}{ext}"
        self.store.put_bytes(self.settings.bucket_biometrics, key, data, ctype)  # object first, as in enrolment
        with session_scope(self.sessions) as db:
            sg = self._suggestion(db, org_id, suggestion_id)
            m = db.get(StaffMember, member_id)
            if m is None:
                m = StaffMember(id=member_id, org_id=org_id, staff_id=staff_id, name=name, role=role or "other")
                db.add(m)
                db.flush()
            else:
                m.name = name if name is not None else m.name
                m.role = role or m.role
            tpl = db.scalar(select(StaffTemplate).where(StaffTemplate.member_id == member_id,
                                                        StaffTemplate.photo_sha256 == sha))
            if tpl is None:
                tpl = StaffTemplate(member_id=member_id, org_id=org_id, photo_key=key, photo_sha256=sha, model=sg.model,
                                    dim=sg.dim, embedding=sg.embedding, quality={}, source="suggestion")
                db.add(tpl)
            sg.status, sg.decided_by, sg.decided_at, sg.member_id = "confirmed", actor, utcnow(), member_id
            db.flush()
            audit(db, actor=actor, action="staff.suggestion.confirm", outcome="ok", org_id=org_id,
                  subject=f"staff_suggestion:{sg.id}", request_id=request_id,
                  detail={"staff_id": staff_id, "template_id": tpl.id})
            return {"suggestion": suggestion_view(sg), "staff": member_view(m, self._templates(db, m.id))}

    def dismiss(self, org_id: str, suggestion_id: str, *, actor: str, request_id: str | None = None) -> dict:
        """Not staff: the face is a customer again for every rule (one-face-many-cards included)."""
        with session_scope(self.sessions) as db:
            sg = self._suggestion(db, org_id, suggestion_id)
            if sg.status != "pending":
                raise StaffRefusal(409, "already_decided", f"the suggestion was already {sg.status}")
            sg.status, sg.decided_by, sg.decided_at = "dismissed", actor, utcnow()
            audit(db, actor=actor, action="staff.suggestion.dismiss", outcome="ok", org_id=org_id,
                  subject=f"staff_suggestion:{sg.id}", request_id=request_id)
            return suggestion_view(sg)
