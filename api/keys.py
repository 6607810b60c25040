"""Machine credentials: terminal keys bound to one organisation, service keys with a role.

A key reads `dck_<id>_<secret>`. Only SHA-256(secret) is stored: API keys are long random
strings, so a fast hash is enough (unlike passwords) and keeps every request cheap.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.ids import is_entity_id
from storage.models import ApiKey, Organisation, Terminal, utcnow

ROLES = ("terminal", "ingest", "admin", "inspector", "institution", "auditor")
KEY_RE = re.compile(r"\Adck_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})\Z")


class KeyError_(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    org_id: str | None
    terminal_id: str | None
    regions: tuple[str, ...] = ()
    # organisations in the key's regions (inspector; ingest with regions), resolved when authenticated;
    # None: not region-scoped. Visibility itself is decided in api/scope.py only.
    region_orgs: frozenset[str] | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_key(session: Session, role: str, *, org_id=None, terminal_id=None, label="") -> str:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(id=key_id, role=role, org_id=org_id, terminal_id=terminal_id, label=label,
                       secret_hash=_hash(secret)))
    return f"dck_{key_id}_{secret}"


def add_organisation(session: Session, org_id: str, name: str | None = None, region: str = "default",
                     uses_face_pay: bool = True) -> Organisation:
    if not is_entity_id(org_id):
        raise KeyError_(f"organisation id {org_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    org = session.get(Organisation, org_id)
    if org is None:
        org = Organisation(id=org_id, name=name or org_id, region=region, uses_face_pay=uses_face_pay)
        session.add(org)
    return org


def add_terminal(session: Session, org_id: str, terminal_id: str | None = None,
                 counter: str | None = None) -> tuple[Terminal, str]:
    """Register a terminal and return it with its first key (shown once, never stored)."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise KeyError_(f"unknown organisation {org_id!r}: add it first (dualcheck orgs add {org_id})")
    terminal_id = terminal_id or f"{org_id}-T{secrets.token_hex(3)}"
    if not is_entity_id(terminal_id):
        raise KeyError_(f"terminal id {terminal_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if session.get(Terminal, terminal_id) is not None:
        raise KeyError_(f"terminal {terminal_id!r} exists already; use 'dualcheck terminals rotate' for a new key")
    term = Terminal(id=terminal_id, org_id=org_id, counter=counter)
    session.add(term)
    session.flush()
    key = _new_key(session, "terminal", org_id=org_id, terminal_id=terminal_id, label=counter or "")
    return term, key


def rotate_terminal_key(session: Session, terminal_id: str) -> str:
    """A new key beside the old ones, so a terminal can switch over without downtime."""
    term = session.get(Terminal, terminal_id)
    if term is None or term.revoked_at is not None:
        raise KeyError_(f"no active terminal {terminal_id!r}")
    return _new_key(session, "terminal", org_id=term.org_id, terminal_id=terminal_id)


def add_service_key(session: Session, role: str, label: str, org_id: str | None = None,
                    regions: list[str] | None = None) -> str:
    """ingest: all organisations, or only ``org_id`` / the organisations of ``regions``;
    admin: everything; inspector: the organisations of ``regions`` (required);
    institution: one organisation ``org_id`` (required); auditor: reads the audit trail of everything
    and nothing else (api/routes/audit.py)."""
    if role not in ("ingest", "admin", "inspector", "institution", "auditor"):
        raise KeyError_(f"role must be 'ingest', 'admin', 'inspector', 'institution' or 'auditor', not {role!r}")
    if role == "inspector" and not regions:
        raise KeyError_("an inspector key needs at least one region")
    if role == "institution" and not org_id:
        raise KeyError_("an institution key needs its organisation")
    if role in ("admin", "institution", "auditor") and regions:
        raise KeyError_(f"a {role} key has no regions")
    if role == "auditor" and org_id:
        raise KeyError_("an auditor key reads the whole trail; it has no organisation")
    if org_id is not None and session.get(Organisation, org_id) is None:
        raise KeyError_(f"unknown organisation {org_id!r}")
    key = _new_key(session, role, org_id=org_id, label=label)
    if regions:
        session.flush()
        session.get(ApiKey, key.split("_")[1]).regions = sorted({r.strip() for r in regions if r.strip()})
    return key


def revoke_terminal(session: Session, terminal_id: str) -> int:
    term = session.get(Terminal, terminal_id)
    if term is None:
        raise KeyError_(f"no terminal {terminal_id!r}")
    now = utcnow()
    term.revoked_at = term.revoked_at or now
    keys = session.scalars(select(ApiKey).where(ApiKey.terminal_id == terminal_id, ApiKey.revoked_at.is_(None)))
    n = 0
    for k in keys:
        k.revoked_at = now
        n += 1
    return n


def revoke_key(session: Session, key_id: str) -> None:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise KeyError_(f"no key {key_id!r}")
    key.revoked_at = key.revoked_at or utcnow()


def authenticate(session: Session, presented: str) -> Principal | None:
    """The principal for a presented key, or None when unknown, malformed or revoked."""
    m = KEY_RE.match(presented or "")
    if not m:
        return None
    key = session.get(ApiKey, m.group(1))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _hash(m.group(2))):
        return None
    if key.terminal_id:
        term = session.get(Terminal, key.terminal_id)
        if term is None or term.revoked_at is not None:
            return None
    regions = tuple(key.regions or ())
    region_orgs = None
    if regions:
        region_orgs = frozenset(session.scalars(select(Organisation.id).where(Organisation.region.in_(regions))))
    return Principal(key_id=key.id, role=key.role, org_id=key.org_id, terminal_id=key.terminal_id,
                     regions=regions, region_orgs=region_orgs)


class KeyCache:
    """Principals of keys checked within the last ``ttl_s`` seconds, by the hash of the presented key (no
    secret is kept): a terminal's calls then cost no index round trip for authentication. Revocation acts
    once an entry expires; only accepted keys are kept, so a new key works at once."""

    def __init__(self, ttl_s: float, max_keys: int = 10_000):
        self._cache = TTLCache(max_keys, ttl_s) if ttl_s > 0 else None
        self._lock = threading.Lock()  # TTLCache is not thread-safe; sync dependencies run in threads

    def get(self, presented: str) -> Principal | None:
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(_hash(presented))

    def put(self, presented: str, who: Principal) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache[_hash(presented)] = who


def key_id_of(presented: str) -> str | None:
    """The public part of a presented key, for audit lines about refused attempts."""
    m = KEY_RE.match(presented or "")
    return m.group(1) if m else None
