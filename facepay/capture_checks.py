"""What a terminal says about its capture, checked around the face work of one verification.

``TerminalChecks.admit`` runs before the image is decoded: the liveness fields, the device attestation
(facepay/attestation.py) and a byte-identical replay (facepay/replay.py); ``Gate.judge`` after the face
analysis: a near-identical replay, then the decision the terminal's own liveness verdict and the
attestation rule leave; ``Gate.recording`` is the transaction of the Verification row and its attempt
(where two copies of one capture sent at once are told apart). A refusal is
recorded as an attempt (outcome = its code, no capture stored) and raised as ``CaptureRefused``.

Decisions added to the face decision (docs/verification.md):
* ``liveness_failed``: the terminal says its liveness check failed (attested or not): the capture is
  a presentation attack or a failed attempt, whatever the face match says;
* ``liveness_unverified``: the terminal (or its organisation) requires attestation and the capture has
  no valid one, or no signed liveness result; the face match alone does not make a ``match``.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
from cachetools import TTLCache
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from facepay import replay
from facepay.attestation import (
    KEY_ID_RE,
    Attestation,
    CaptureRefused,
    Claims,
    Liveness,
    attestation_given,
    attestation_required,
    check_signature,
    parse_liveness,
)
from kernel.settings import Settings
from storage.db import session_scope
from storage.models import CaptureAttempt, new_id, utcnow
from storage.objects import ObjectStore
from vision import phash as ph

LIVENESS_FAILED, LIVENESS_UNVERIFIED = "liveness_failed", "liveness_unverified"
T = TypeVar("T")
# one Core statement, built once: no ORM flush, and SQLAlchemy's statement cache key is computed once
INSERT_ATTEMPT = insert(CaptureAttempt.__table__)


@dataclass
class Gate:
    """One capture's terminal-side facts, from admission to its record."""

    checks: "TerminalChecks"
    org_id: str
    terminal_id: str
    insured_id: str
    settlement_ref: str | None
    sha256: str
    now: datetime
    liveness: Liveness | None = None
    attestation: Attestation = field(default_factory=lambda: Attestation("absent"))
    required: bool = False
    prints: list = field(default_factory=list)
    phash: int | None = None
    model: str | None = None
    embedding: np.ndarray | None = None
    face_decision: str | None = None
    image: bytes | None = None  # the capture, for the grey-zone replay check only

    def judge(self, image_phash: int, embedding: np.ndarray | None, model: str, decision: str,
              reason: str) -> tuple[str, str]:
        """After the face analysis: refuse a near-identical replay; else the decision to answer. ``image_phash``:
        vision/phash.py's hash of the decoded capture (computed by the face work, vision/workers.py)."""
        s = self.checks.settings
        self.phash, self.model, self.embedding = image_phash, model, embedding
        r = replay.near(self.prints, self.phash, embedding, model, max_distance=s.verify_replay_max_phash_distance,
                        min_similarity=s.verify_replay_min_similarity) or self.checks.registered(self)
        if r is not None:
            raise self.checks.refuse(self, replayed(r), replay=r)
        self.face_decision = decision
        if self.liveness is not None and not self.liveness.passed:
            return LIVENESS_FAILED, f"the terminal's liveness check ({self.liveness.method}) failed; face check: " \
                                    f"{decision} ({reason})"
        if self.required and (self.attestation.status != "valid" or self.liveness is None):
            missing = "no signed liveness result" if self.attestation.status == "valid" else "no device attestation"
            return LIVENESS_UNVERIFIED, f"terminal {self.terminal_id} requires attested liveness and the capture " \
                                        f"has {missing}; face check: {decision} ({reason})"
        return decision, reason

    @contextmanager
    def recording(self, sessions: sessionmaker[Session], verification_id: str,
                  undo: Callable[[], object]) -> Iterator[Session]:
        """The transaction of the accepted capture's Verification row, with its attempt row. Two copies of
        one capture arriving together both passed ``admit``: here they are taken one at a time per insured
        person, and the second one, seeing the first, is refused as a replay; ``undo`` then removes the
        capture already stored for it."""
        s = self.checks.settings
        raced: replay.Replay | None = None
        try:
            with session_scope(sessions) as db:
                db.execute(INSERT_ATTEMPT, self._accepted(verification_id))
                if s.verify_replay_window_s > 0:
                    replay.serialize(db, self.insured_id)
                    seen = {f.verification_id for f in self.prints}
                    newer = [f for f in replay.recent(db, self.insured_id, self.now, s.verify_replay_window_s)
                             if f.verification_id not in seen and f.verification_id != verification_id]
                    raced = replay.exact(newer, self.sha256) or replay.near(
                        newer, self.phash, self.embedding, self.model, max_distance=s.verify_replay_max_phash_distance,
                        min_similarity=s.verify_replay_min_similarity)
                    if raced is not None:
                        raise _Raced()
                yield db
        except _Raced:
            undo()
            raise self.checks.refuse(self, replayed(raced), replay=raced) from None

    def _accepted(self, verification_id: str) -> dict:
        window = self.checks.settings.verify_replay_window_s
        return self._row("accepted", verification_id=verification_id, phash=ph.to_hex(self.phash)
                         if self.phash is not None else None, model=self.model,
                         dim=None if self.embedding is None else int(self.embedding.shape[0]),
                         embedding=None if self.embedding is None else
                         np.asarray(self.embedding, np.float32).tobytes(),
                         fingerprint_expires_at=self.now + timedelta(seconds=window))

    def answer(self) -> dict:
        """Keys added to the verification answer."""
        a = self.attestation
        return {"face_decision": self.face_decision,
                "liveness": self.liveness.to_dict() if self.liveness else None,
                "attestation": {"status": a.status, "required": self.required, "key_id": a.key_id,
                                "signed_at": a.signed_at.isoformat() if a.signed_at else None}}

    def _row(self, outcome: str, **kw) -> dict:
        """The values of this capture's attempt row."""
        lv, a = self.liveness, self.attestation
        return dict(id=new_id(), created_at=self.now, org_id=self.org_id, terminal_id=self.terminal_id,
                    insured_id=self.insured_id, settlement_ref=self.settlement_ref, outcome=outcome,
                    capture_sha256=self.sha256, liveness_method=lv.method if lv else None,
                    liveness_passed=lv.passed if lv else None, liveness_score=lv.score if lv else None,
                    attestation=kw.pop("attestation", a.status), device_key_id=kw.pop("device_key_id", a.key_id),
                    signed_at=a.signed_at, **kw)


class _Raced(Exception):
    """Another copy of the capture was accepted meanwhile (rolls the transaction back)."""


def replayed(r: replay.Replay) -> CaptureRefused:
    what = "the same bytes as" if r.kind == "exact" else \
        f"a near copy of (perceptual hash {r.phash_distance} bits apart, face similarity {r.similarity:.3f})" \
        if r.kind == "near" else \
        f"an edited copy of (the same picture once moved and retoned: {r.residual:.1f} grey levels apart; " \
        f"face similarity {r.similarity:.3f})"
    return CaptureRefused(409, "replayed_capture", f"this capture is {what} one accepted earlier for this insured "
                          "person: a replay is not a live capture")


class AttestationRules:
    """Whether a terminal requires attestation (its own rule, else its organisation's), kept ``ttl_s`` seconds
    per terminal: a capture then costs no index read for it. A change through this process clears it at once
    (:meth:`forget`); a change elsewhere acts within ``ttl_s``."""

    def __init__(self, ttl_s: float, max_terminals: int = 100_000):
        self._cache = TTLCache(max_terminals, ttl_s) if ttl_s > 0 else None
        self._lock = threading.Lock()  # TTLCache is not thread-safe; verifications run in threads

    def required(self, db: Session | None, terminal_id: str) -> bool | None:
        """The rule; None when it is not cached and ``db`` is None (the caller reads it with a session)."""
        if self._cache is not None:
            with self._lock:
                hit = self._cache.get(terminal_id)
            if hit is not None:
                return hit
        if db is None:
            return None
        rule = attestation_required(db, terminal_id)
        if self._cache is not None:
            with self._lock:
                self._cache[terminal_id] = rule
        return rule

    def forget(self) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache.clear()


class TerminalChecks:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], store: ObjectStore | None = None):
        self.settings, self.sessions, self.store = settings, sessions, store  # store: earlier captures (grey zone)
        self.rules = AttestationRules(settings.verify_attestation_rule_cache_s)

    def registered(self, gate: Gate) -> replay.Replay | None:
        """A light edit of an earlier accepted capture (the grey zone of facepay/replay.py): its picture is
        read and registered only when the hash and face say it may be one."""
        s = self.settings
        cands = replay.grey(gate.prints, gate.phash, gate.embedding, gate.model,
                            max_distance=s.verify_replay_grey_max_phash_distance,
                            min_similarity=s.verify_replay_grey_min_similarity)
        if not cands or self.store is None or gate.image is None:
            return None
        limits = dict(max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)

        def earlier(vid: str) -> np.ndarray | None:
            with session_scope(self.sessions) as db:
                return replay.stored_picture(db, self.store, s.bucket_biometrics, vid, **limits)

        return replay.registered(cands, lambda: replay.decoded(gate.image, **limits), earlier,
                                 max_residual=s.verify_replay_max_residual)

    def admit(self, *, org_id: str, terminal_id: str, insured_id: str, settlement_ref: str | None, image: bytes,
              claims: Claims | None, read: Callable[[Session], T]) -> tuple[Gate, T]:
        """Before the face work; raises CaptureRefused (recorded). ``read(db)`` runs in the same read transaction
        (the verifier's templates): one index round trip for both, none for the rule while it is cached."""
        s = self.settings
        claims = claims or Claims()
        gate = Gate(self, org_id, terminal_id, insured_id, settlement_ref, hashlib.sha256(image).hexdigest(),
                    utcnow(), image=image)
        try:
            gate.liveness = parse_liveness(claims)
            with session_scope(self.sessions) as db:
                gate.required = self.rules.required(db, terminal_id)
                if attestation_given(claims):
                    gate.attestation = check_signature(db, claims, terminal_id=terminal_id, capture_sha256=gate.sha256,
                                                       now=gate.now, max_age_s=s.verify_attestation_max_age_s)
                gate.prints = replay.recent(db, insured_id, gate.now, s.verify_replay_window_s)
                got = read(db)
        except CaptureRefused as e:
            claimed = claims.attestation_key_id
            raise self.refuse(gate, e, attestation=e.code if e.code != "invalid_liveness" else "absent",
                              device_key_id=claimed if claimed and KEY_ID_RE.fullmatch(claimed) else None) from None
        r = replay.exact(gate.prints, gate.sha256)
        if r is not None:
            raise self.refuse(gate, replayed(r), replay=r)
        return gate, got

    def refuse(self, gate: Gate, e: CaptureRefused, *, replay: replay.Replay | None = None,
               attestation: str | None = None, device_key_id: str | None = None) -> CaptureRefused:
        """Record a refused attempt (nothing of the capture but its hash) and return the refusal to raise."""
        kw = {"attestation": attestation} if attestation else {}
        if device_key_id:
            kw["device_key_id"] = device_key_id
        if replay is not None:
            kw.update(replay_of=replay.verification_id, replay=replay.to_dict())
        with session_scope(self.sessions) as db:
            db.execute(INSERT_ATTEMPT, gate._row(e.code, **kw))
        return e


def recorded_view(db: Session, verification_id: str) -> dict:
    """The terminal-side facts of a recorded verification (empty for one made before they were kept)."""
    a = db.scalar(select(CaptureAttempt).where(CaptureAttempt.verification_id == verification_id))
    if a is None:
        return {}
    return {"liveness": None if a.liveness_method is None else
            {"method": a.liveness_method, "passed": a.liveness_passed, "score": a.liveness_score},
            "attestation": {"status": a.attestation, "key_id": a.device_key_id,
                            "signed_at": a.signed_at.isoformat() if a.signed_at else None}}
