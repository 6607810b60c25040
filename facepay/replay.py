"""Replayed captures: a capture that repeats one accepted earlier for the same insured person.

A photo of a photo re-encoded, or a captured request sent again, repeats an earlier capture: the same
bytes (SHA-256), or the same picture (64-bit DCT pHash within ``verify_replay_max_phash_distance``
bits) showing the same face (cosine >= ``verify_replay_min_similarity`` between the subjects'
embeddings). A new capture of the same person differs in both: measured on the shared portraits, a
JPEG re-encode or a 5-10 % resize moves 0-2 pHash bits at cosine 0.989-0.998; another photo of the same
person is 28-34 bits away at cosine about 0.75 (docs/verification.md).

Light edits move the embedding more than a re-encode does: a 2 % crop, a brightness or gamma change, a
1-3 degree rotation leave cosine 0.88-0.98 and up to 16 pHash bits, where two live captures of one
person seconds apart at one place also reach 0.97. Such a capture (the grey zone:
``verify_replay_grey_max_phash_distance``, ``verify_replay_grey_min_similarity``) is compared with the
earlier capture's picture itself, read from the object store only then: :func:`registered` (vision/
registration.py) calls it the same picture when one similarity transform and one tone curve map it onto
the earlier one within ``verify_replay_max_residual`` grey levels. Nothing more is kept for it.

Compared with the accepted captures of the same insured id (any terminal, any organisation) of the
last ``verify_replay_window_s``, read once before the face work (:func:`recent`); their hashes and
embeddings are kept that long only (``CaptureAttempt.fingerprint_expires_at``, erased by the
retention run).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from storage.models import CaptureAttempt, Verification
from storage.objects import ObjectStore
from vision import phash as ph
from vision.image import ImageRejected, decode_image
from vision.registration import DECODE_SIDE, register

log = logging.getLogger("dualcheck.facepay")
RECENT_MAX = 500  # newest accepted captures of one insured person compared (a few a week is usual)
GREY_MAX = 3  # earlier pictures read and registered at most per capture (the most similar faces first)


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
    kind: str  # exact | near | registered
    phash_distance: int
    similarity: float
    residual: float | None = None  # registered: grey levels left once the pictures are superposed

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "phash_distance": self.phash_distance, "similarity": round(self.similarity, 4)}
        if self.residual is not None:
            out["residual"] = round(self.residual, 2)
        return out


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


def grey(prints: list[Fingerprint], phash: int | None, embedding: np.ndarray | None, model: str, *,
         max_distance: int, min_similarity: float) -> list[tuple[Fingerprint, int, float]]:
    """The earlier captures whose picture hash is within ``max_distance`` and face similarity at least
    ``min_similarity`` (the grey zone's bounds; :func:`near` has already said no), most similar first, at most
    ``GREY_MAX``: (fingerprint, pHash distance, similarity)."""
    if embedding is None or phash is None:
        return []
    out = []
    for f in prints:
        if f.phash is None or f.embedding is None or f.model != model:
            continue
        d = ph.distance(phash, f.phash)
        if d <= max_distance:
            sim = float(f.embedding @ embedding)
            if sim >= min_similarity:
                out.append((f, d, sim))
    return sorted(out, key=lambda c: -c[2])[:GREY_MAX]


def registered(candidates: list[tuple[Fingerprint, int, float]], picture: Callable[[], np.ndarray | None],
               earlier: Callable[[str], np.ndarray | None], *, max_residual: float) -> Replay | None:
    """The first grey-zone candidate whose picture (``earlier(verification_id)``, None when it is gone) the
    capture (``picture()``, decoded once, when needed) registers onto as the same picture."""
    if not candidates:
        return None
    now = picture()
    if now is None:
        return None
    for f, d, sim in candidates:
        then = earlier(f.verification_id)
        if then is None:
            continue
        r = register(then, now)
        if r.same_picture(max_residual):
            return Replay(f.verification_id, "registered", d, sim, r.residual)
    return None


def decoded(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray | None:
    """A capture's picture for :func:`registered`; None when it cannot be decoded within the limits."""
    try:
        return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, max_side=DECODE_SIDE)
    except ImageRejected:
        return None


def stored_picture(db: Session, store: ObjectStore, bucket: str, verification_id: str, *, max_bytes: int,
                   max_pixels: int) -> np.ndarray | None:
    """The stored capture of an earlier verification, decoded; None when it is gone (retention) or unreadable."""
    key = db.scalar(select(Verification.capture_key).where(Verification.id == verification_id))
    if key is None:
        return None
    try:
        data = store.get_bytes(bucket, key)
    except Exception:  # gone or unreachable: no evidence either way, the capture is judged without it
        log.warning("the capture of an earlier verification could not be read for the replay check", exc_info=True)
        return None
    return decoded(data, max_bytes=max_bytes, max_pixels=max_pixels)


def refused_for(db: Session, org_id: str, settlement_ref: str) -> list[dict]:
    """The replayed captures a terminal of ``org_id`` sent for one settlement: a face-pay signal for the
    correlation rules (correlate/rules.py, ``face_pay_replayed``)."""
    rows = db.scalars(select(CaptureAttempt).where(CaptureAttempt.settlement_ref == settlement_ref,
                                                   CaptureAttempt.org_id == org_id,
                                                   CaptureAttempt.outcome == "replayed_capture")
                      .order_by(CaptureAttempt.created_at)).all()
    return [{"attempt_id": a.id, "at": a.created_at.isoformat(), "terminal_id": a.terminal_id,
             "replay_of": a.replay_of, "capture_sha256": a.capture_sha256, **(a.replay or {})} for a in rows]
