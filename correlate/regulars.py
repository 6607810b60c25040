"""Unknown regulars: a face at one counter in most checks over several days is probably staff
nobody enrolled yet (a new cashier), not a customer settling for many cards.

After each check (``note_regulars``, called at the end of ``rules.apply``) every face of the check
that is neither the insured person nor a known staff member is compared with the faces of the same
camera over the last ``correlate_regulars_days``: the faces with cosine >= the match threshold to the
mean of its neighbours form its cluster. A cluster seen in at least ``correlate_regulars_min_share`` of
the camera's checks (those with footage), in at least ``correlate_regulars_min_checks`` checks, on at
least ``correlate_regulars_min_days`` distinct days (in ``web_timezone``) becomes a pending
``StaffSuggestion``, or updates the one it matches. Operators confirm it as staff or dismiss it
(facepay/staff.py). While a suggestion is pending or confirmed, ``known_regular`` tells the
one-face-many-cards rule to leave that face alone; a dismissed face is a customer again.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facepay.templates import load_staff
from storage.models import FaceEvidence, Settlement, SettlementCheck, StaffSuggestion
from vision.matching import cosine_scores

MAX_CROPS = 6  # crops an operator sees per suggestion


def _emb(raw: bytes, dim: int) -> np.ndarray:
    e = np.frombuffer(raw, np.float32, count=dim)
    return e / max(float(np.linalg.norm(e)), 1e-12)


def _candidate(f: FaceEvidence) -> bool:
    return f.embedding is not None and bool(f.dim) and not f.is_insured and f.staff_member_id is None


def known_regular(db: Session, org_id: str, model: str, embedding: np.ndarray, threshold: float) -> bool:
    """Is ``embedding`` a face operators were told about (a pending suggestion) or confirmed as staff?"""
    rows = db.execute(select(StaffSuggestion.embedding, StaffSuggestion.dim)
                      .where(StaffSuggestion.org_id == org_id, StaffSuggestion.model == model,
                             StaffSuggestion.status.in_(("pending", "confirmed")))).all()
    if not rows:
        return False
    sims = cosine_scores(embedding, np.stack([_emb(e, d) for e, d in rows]))
    return bool((sims >= threshold).any())


def _checks_with_footage(db: Session, org_id: str, camera_id: str, since: datetime) -> int:
    """Checks of the organisation since ``since`` whose window had footage of ``camera_id``."""
    rows = db.scalars(select(SettlementCheck.cameras).where(SettlementCheck.org_id == org_id,
                                                           SettlementCheck.window_start >= since)).all()
    return sum(any(c.get("camera_id") == camera_id and (c.get("frames") or 0) > (c.get("blind_frames") or 0)
                   for c in cams or []) for cams in rows)


def note_regulars(db: Session, settings, settlement: Settlement, faces: list[FaceEvidence],
                  threshold: float) -> list[StaffSuggestion]:
    """Create or update the pending suggestions the faces of this check make (see the module's doc)."""
    mine = [f for f in faces if _candidate(f)]
    if not mine:
        return []
    org_id, model = settlement.org_id, mine[0].model
    since = settlement.settled_at - timedelta(days=settings.correlate_regulars_days)
    tz = ZoneInfo(settings.web_timezone)
    staff = load_staff(db, org_id, model)
    out: list[StaffSuggestion] = []
    for camera_id in sorted({f.camera_id for f in mine}):
        rows = [fe for fe in db.scalars(
            select(FaceEvidence).where(FaceEvidence.org_id == org_id, FaceEvidence.camera_id == camera_id,
                                       FaceEvidence.model == model, FaceEvidence.seen_at >= since,
                                       FaceEvidence.embedding.is_not(None), FaceEvidence.is_insured.is_(False),
                                       FaceEvidence.staff_member_id.is_(None))) if fe.dim]
        if not rows:
            continue
        embs = np.stack([_emb(fe.embedding, fe.dim) for fe in rows])
        if not staff.empty:  # staff enrolled since those checks ran are not unknown
            keep = (embs @ staff.embeddings.T).max(axis=1) < threshold
            rows, embs = [r for r, k in zip(rows, keep) if k], embs[keep]
        if not rows:
            continue
        total = _checks_with_footage(db, org_id, camera_id, since)
        for f in (f for f in mine if f.camera_id == camera_id):
            me = _emb(f.embedding, f.dim)
            near = embs @ me >= threshold
            if not near.any():
                continue
            mean = embs[near].mean(axis=0)
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
            sims = embs @ mean
            members = list(np.nonzero(sims >= threshold)[0])
            checks = {rows[i].check_id for i in members}
            days = {rows[i].seen_at.astimezone(tz).date() for i in members}
            if (len(checks) < settings.correlate_regulars_min_checks or len(days) < settings.correlate_regulars_min_days
                    or not total or len(checks) / total < settings.correlate_regulars_min_share):
                continue
            crops = [rows[i].id for i in sorted(members, key=lambda i: -sims[i])[:MAX_CROPS]]
            seen = [rows[i].seen_at for i in members]
            sg = _upsert(db, org_id=org_id, camera_id=camera_id, model=model, mean=mean, threshold=threshold,
                         first=min(seen), last=max(seen), checks=len(checks), total=total, days=len(days),
                         crops=crops)
            if sg is not None and sg not in out:
                out.append(sg)
    return out


def _upsert(db: Session, *, org_id: str, camera_id: str, model: str, mean: np.ndarray, threshold: float,
            first: datetime, last: datetime, checks: int, total: int, days: int, crops: list[str]
            ) -> StaffSuggestion | None:
    existing = list(db.scalars(select(StaffSuggestion).where(StaffSuggestion.org_id == org_id,
                                                             StaffSuggestion.camera_id == camera_id,
                                                             StaffSuggestion.model == model)))
    if existing:
        sims = cosine_scores(mean, np.stack([_emb(s.embedding, s.dim) for s in existing]))
        best = int(np.argmax(sims))
        if sims[best] >= threshold:
            sg = existing[best]
            if sg.status != "pending":
                return None  # an operator decided about this face; it is not suggested again
            sg.first_seen, sg.last_seen = min(sg.first_seen, first), max(sg.last_seen, last)
            sg.checks, sg.checks_total, sg.days, sg.evidence_ids = checks, total, days, crops
            sg.embedding = mean.astype(np.float32).tobytes()
            return sg
    sg = StaffSuggestion(org_id=org_id, camera_id=camera_id, status="pending", first_seen=first, last_seen=last,
                         checks=checks, checks_total=total, days=days, evidence_ids=crops, model=model,
                         dim=int(mean.shape[0]), embedding=mean.astype(np.float32).tobytes())
    db.add(sg)
    db.flush()
    return sg
