"""Device attestation of face-pay captures: a terminal's signing keys, and the check of one signature.

A certified face-pay terminal judges liveness itself (structured light, infrared or binocular) and
signs what it sends with an Ed25519 key whose private half stays in the device. dualcheck keeps the
public half (``device_keys``, registered by an admin: ``dualcheck terminals device-key add`` or
``POST /v1/terminals/{id}/device-keys``) and checks each signature over

    dualcheck-capture-v1\\n<terminal id>\\n<capture SHA-256, hex>\\n<signed_at>\\n<method>\\n<passed>\\n<score>

the last three being the liveness fields exactly as sent (empty when not sent): the liveness verdict
is signed with the capture, so it cannot be changed on the way. docs/verification.md shows a client.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import Refusal
from kernel.ids import is_entity_id
from kernel.timefmt import TimeInvalid, parse_instant
from storage.models import DeviceKey, Organisation, Terminal, utcnow

MESSAGE_PREFIX = "dualcheck-capture-v1"
LIVENESS_METHODS = ("structured_light", "infrared", "binocular")
KEY_ID_RE = re.compile(r"\A[0-9a-f]{16}\Z")
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
ATTESTATION_FIELDS = ("attestation_key_id", "attestation_signed_at", "attestation_signature", "capture_sha256")
LIVENESS_FIELDS = ("liveness_method", "liveness_passed", "liveness_score")


class DeviceKeyError(Refusal):
    """A device key that cannot be registered, found or revoked (CLI message or API 4xx)."""


class CaptureRefused(Refusal):
    """A capture refused for what its terminal said about it (attestation, liveness fields, replay).
    The attempt is recorded (``capture_attempts``) before this is raised; the capture is not stored."""


@dataclass(frozen=True)
class Claims:
    """The terminal's own fields of POST /v1/verify, as sent (strings; None when absent)."""

    liveness_method: str | None = None
    liveness_passed: str | None = None
    liveness_score: str | None = None
    attestation_key_id: str | None = None
    attestation_signed_at: str | None = None
    attestation_signature: str | None = None
    capture_sha256: str | None = None


@dataclass(frozen=True)
class Liveness:
    method: str
    passed: bool
    score: float | None

    def to_dict(self) -> dict:
        return {"method": self.method, "passed": self.passed, "score": self.score}


@dataclass(frozen=True)
class Attestation:
    status: str  # valid | absent
    key_id: str | None = None
    signed_at: datetime | None = None


def message(terminal_id: str, capture_sha256: str, signed_at: str, liveness_method: str | None = None,
            liveness_passed: str | None = None, liveness_score: str | None = None) -> bytes:
    """The bytes a terminal signs (and dualcheck verifies)."""
    parts = [MESSAGE_PREFIX, terminal_id, capture_sha256, signed_at,
             liveness_method or "", liveness_passed or "", liveness_score or ""]
    return "\n".join(parts).encode()


def parse_liveness(c: Claims) -> Liveness | None:
    """The liveness result, None when the terminal sent none; CaptureRefused 400 when malformed."""
    given = [getattr(c, f) for f in LIVENESS_FIELDS]
    if all(v is None for v in given):
        return None
    if c.liveness_method is None or c.liveness_passed is None:
        raise CaptureRefused(400, "invalid_liveness", "a liveness result needs liveness_method and liveness_passed "
                             "(liveness_score is optional)")
    if c.liveness_method not in LIVENESS_METHODS:
        raise CaptureRefused(400, "invalid_liveness", f"liveness_method must be one of {', '.join(LIVENESS_METHODS)}")
    if c.liveness_passed not in ("true", "false"):
        raise CaptureRefused(400, "invalid_liveness", "liveness_passed must be 'true' or 'false'")
    score = None
    if c.liveness_score is not None:
        try:
            score = float(c.liveness_score)
        except ValueError:
            score = math.nan
        if not 0.0 <= score <= 1.0:  # also refuses nan and inf
            raise CaptureRefused(400, "invalid_liveness", "liveness_score must be a number from 0 to 1")
    return Liveness(c.liveness_method, c.liveness_passed == "true", score)


def attestation_given(c: Claims) -> bool:
    return any(getattr(c, f) is not None for f in ATTESTATION_FIELDS)


def attestation_required(db: Session, terminal_id: str) -> bool:
    """The terminal's own rule, else its organisation's."""
    row = db.execute(select(Terminal.require_attestation, Organisation.require_attestation)
                     .join(Organisation, Organisation.id == Terminal.org_id)
                     .where(Terminal.id == terminal_id)).first()
    if row is None:
        return False
    return bool(row[0]) if row[0] is not None else bool(row[1])


def check_signature(db: Session, c: Claims, *, terminal_id: str, capture_sha256: str, now: datetime,
                    max_age_s: float) -> Attestation:
    """Check the attestation fields of ``c`` (some were sent) against the capture's real hash.
    Raises CaptureRefused with the reason; on success notes the key's last use (at most once a minute)."""
    missing = [f for f in ATTESTATION_FIELDS if getattr(c, f) is None]
    if missing:
        raise CaptureRefused(400, "invalid_attestation", f"an attestation needs {', '.join(ATTESTATION_FIELDS)}; "
                             f"missing: {', '.join(missing)}")
    if not KEY_ID_RE.fullmatch(c.attestation_key_id):
        raise CaptureRefused(400, "invalid_attestation", "attestation_key_id must be 16 hex digits")
    if not SHA256_RE.fullmatch(c.capture_sha256):
        raise CaptureRefused(400, "invalid_attestation", "capture_sha256 must be 64 lower-case hex digits")
    try:
        signature = base64.b64decode(c.attestation_signature, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise CaptureRefused(400, "invalid_attestation", "attestation_signature must be a base64 Ed25519 "
                             "signature (64 bytes)")
    try:
        signed_at = parse_instant(c.attestation_signed_at, "attestation_signed_at")
    except TimeInvalid as e:
        raise CaptureRefused(400, "invalid_attestation", e.reason) from None
    key = db.get(DeviceKey, c.attestation_key_id)
    if key is None or key.terminal_id != terminal_id:
        # another terminal's key is unknown here: a key attests one device only
        raise CaptureRefused(403, "device_key_unknown",
                             f"device key {c.attestation_key_id} is not registered for terminal {terminal_id}")
    if key.revoked_at is not None:
        raise CaptureRefused(403, "device_key_revoked", f"device key {key.id} was revoked")
    if c.capture_sha256 != capture_sha256:
        raise CaptureRefused(403, "signed_other_capture", "the signed capture_sha256 is not the SHA-256 "
                             "of the uploaded image: the signature is for another capture")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(
            signature, message(terminal_id, c.capture_sha256, c.attestation_signed_at, c.liveness_method,
                               c.liveness_passed, c.liveness_score))
    except InvalidSignature:
        raise CaptureRefused(403, "signature_invalid", f"the signature does not verify with device key "
                             f"{key.id} (signed: {MESSAGE_PREFIX}, terminal id, capture_sha256, "
                             "attestation_signed_at and the liveness fields as sent)") from None
    skew = (now - signed_at).total_seconds()
    if abs(skew) > max_age_s:
        when = f"{skew:.0f} s ago" if skew > 0 else f"{-skew:.0f} s in the future"
        raise CaptureRefused(403, "signature_stale", f"attestation_signed_at is {when}; it must be within "
                             f"{max_age_s:.0f} s of the server's time (check the terminal's clock)")
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now
    return Attestation("valid", key.id, signed_at)


# --- the keys -------------------------------------------------------------------------------------

def parse_public_key(text: str) -> bytes:
    """An Ed25519 public key as PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes -> raw bytes."""
    text = (text or "").strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise DeviceKeyError(400, "invalid_public_key", "the PEM key is not an Ed25519 key")
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        raw = base64.b64decode(text, validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
        return raw
    except DeviceKeyError:
        raise
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        raise DeviceKeyError(400, "invalid_public_key", "public_key must be an Ed25519 public key: PEM "
                             "(-----BEGIN PUBLIC KEY-----) or base64 of its 32 raw bytes") from None


def key_view(k: DeviceKey) -> dict:
    return {"key_id": k.id, "terminal_id": k.terminal_id, "org_id": k.org_id, "algorithm": k.algorithm,
            "fingerprint": k.fingerprint, "public_key": base64.b64encode(k.public_key).decode(), "label": k.label,
            "created_at": k.created_at.isoformat(), "last_used_at": k.last_used_at.isoformat() if k.last_used_at
            else None, "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            "state": "revoked" if k.revoked_at else "active"}


def _terminal(db: Session, terminal_id: str) -> Terminal:
    term = db.get(Terminal, terminal_id) if is_entity_id(terminal_id) else None
    if term is None:
        raise DeviceKeyError(404, "not_found", f"no terminal {terminal_id!r}")
    return term


def add_device_key(db: Session, terminal_id: str, public_key: str, label: str = "") -> DeviceKey:
    term = _terminal(db, terminal_id)
    if term.revoked_at is not None:
        raise DeviceKeyError(409, "terminal_revoked", f"terminal {terminal_id} is revoked")
    raw = parse_public_key(public_key)
    fp = hashlib.sha256(raw).hexdigest()
    if db.scalar(select(DeviceKey).where(DeviceKey.fingerprint == fp)) is not None:
        raise DeviceKeyError(409, "duplicate_key", "this public key is registered already (one key, one device)")
    label = label or ""
    if len(label) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise DeviceKeyError(400, "invalid_label", "label must be at most 200 characters, without control characters")
    key = DeviceKey(id=secrets.token_hex(8), terminal_id=terminal_id, org_id=term.org_id, public_key=raw,
                    fingerprint=fp, label=label)
    db.add(key)
    db.flush()
    return key


def list_device_keys(db: Session, terminal_id: str) -> list[DeviceKey]:
    _terminal(db, terminal_id)
    return list(db.scalars(select(DeviceKey).where(DeviceKey.terminal_id == terminal_id)
                           .order_by(DeviceKey.created_at, DeviceKey.id)))


def revoke_device_key(db: Session, terminal_id: str, key_id: str) -> DeviceKey:
    key = db.get(DeviceKey, key_id) if KEY_ID_RE.fullmatch(key_id or "") else None
    if key is None or key.terminal_id != terminal_id:
        raise DeviceKeyError(404, "not_found", f"terminal {terminal_id} has no device key {key_id!r}")
    key.revoked_at = key.revoked_at or utcnow()
    return key


def set_terminal_requirement(db: Session, terminal_id: str, required: bool | None) -> None:
    """True/False: the terminal's own rule; None: as its organisation."""
    _terminal(db, terminal_id).require_attestation = required


def set_org_requirement(db: Session, org_id: str, required: bool) -> None:
    org = db.get(Organisation, org_id) if is_entity_id(org_id) else None
    if org is None:
        raise DeviceKeyError(404, "not_found", f"no organisation {org_id!r}")
    org.require_attestation = bool(required)
