"""Replayed captures: a capture that repeats one accepted earlier for the same insured person.

A photo of a photo re-encoded, or a captured request sent again, repeats an earlier capture: the same
bytes (SHA-256), or the same picture (64-bit DCT pHash within ``verify_replay_max_phash_distance``
bits) showing the same face (cosine >= ``verify_replay_min_similarity`` between the subjects'
embeddings). A new capture of the same person differs in both: measured on the shared portraits, a
JPEG re-encode or a 5-10 % resize moves 0-2 pHash bits at cosine 0.989-0.998; another photo of the same
person is 28-34 bits away at cosine about 0.75 (docs/verification.md).

Compared with the accepted captures of the same insured id (any terminal, any organisation) of the
last ``verify_replay_window_s``, read once before the face work (:func:`recent`); their hashes and
embeddings are kept that long only (``CaptureAttempt.fingerprint_expires_at``, erased by the
retention run).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from storage.models import CaptureAttempt
from vision import phash as ph

RECENT_MAX = 500  # newest accepted captures of one insured person compared (a few a week is usual)


@dataclass(frozen=True)
class Fingerprint:
    verification_id: str
    sha256: str
    phash: int | None
    model: str | None
    embedding: np.ndarray | None


@dataclass(frozen=True)
class Replay:
    verification_id: str  # the earlier capture's verification
    kind: str  # exact | near
    phash_distance: int
    similarity: float

    def to_dict(self) -> dict:
        return {"kind": self.kind, "phash_distance": self.phash_distance, "similarity": round(self.similarity, 4)}


def recent(db: Session, insured_id: str, now: datetime, window_s: float) -> list[Fingerprint]:
    """The accepted captures of this insured person within the window, newest first."""
    if window_s <= 0:
        return []
    rows = db.execute(select(CaptureAttempt.verification_id, CaptureAttempt.capture_sha256, CaptureAttempt.phash,
                             CaptureAttempt.model, CaptureAttempt.dim, CaptureAttempt.embedding)
                      .where(CaptureAttempt.insured_id == insured_id, CaptureAttempt.outcome == "accepted",
                             CaptureAttempt.created_at >= now - timedelta(seconds=window_s))
                      .order_by(CaptureAttempt.created_at.desc()).limit(RECENT_MAX)).all()
    return [Fingerprint(vid, sha, ph.from_hex(h) if h else None, model,
                        np.frombuffer(emb, np.float32, count=dim) if emb is not None and dim else None)
            for vid, sha, h, model, dim, emb in rows]


def serialize(db: Session, insured_id: str) -> None:
    """Hold, until the transaction ends, the right to accept a capture of this insured person, so the
    reads that follow see every capture accepted before. PostgreSQL: a transaction advisory lock on the
    id. SQLite: the caller's transaction has already written (it holds SQLite's one write lock)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"replay:{insured_id}"})
    else:
        db.flush()


def exact(prints: list[Fingerprint], sha256: str) -> Replay | None:
    """The same bytes."""
    return next((Replay(f.verification_id, "exact", 0, 1.0) for f in prints if f.sha256 == sha256), None)


def near(prints: list[Fingerprint], phash: int | None, embedding: np.ndarray | None, model: str, *,
         max_distance: int, min_similarity: float) -> Replay | None:
    """The same picture of the same face: the closest such earlier capture."""
    if embedding is None or phash is None:
        return None
    best: Replay | None = None
    for f in prints:
        if f.phash is None or f.embedding is None or f.model != model:
            continue
        d = ph.distance(phash, f.phash)
        if d > max_distance:
            continue
        sim = float(f.embedding @ embedding)
        if sim >= min_similarity and (best is None or sim > best.similarity):
            best = Replay(f.verification_id, "near", d, sim)
    return best


def refused_for(db: Session, org_id: str, settlement_ref: str) -> list[dict]:
    """The replayed captures a terminal of ``org_id`` sent for one settlement: a face-pay signal for the
    correlation rules (correlate/rules.py, ``face_pay_replayed``)."""
    rows = db.scalars(select(CaptureAttempt).where(CaptureAttempt.settlement_ref == settlement_ref,
                                                   CaptureAttempt.org_id == org_id,
                                                   CaptureAttempt.outcome == "replayed_capture")
                      .order_by(CaptureAttempt.created_at)).all()
    return [{"attempt_id": a.id, "at": a.created_at.isoformat(), "terminal_id": a.terminal_id,
             "replay_of": a.replay_of, "capture_sha256": a.capture_sha256, **(a.replay or {})} for a in rows]
