"""People who log in: users (argon2 password hashes), browser sessions, CSRF tokens, login rate limit.

A session cookie holds a random token; the index keeps only its SHA-256, the expiry and the session's
CSRF secret. A browser session yields the same kind of :class:`~api.keys.Principal` as an API key
(role, regions, organisation), so :func:`api.scope.can_see_org` decides visibility for both.
Passwords are never logged, stored in clear or echoed.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.keys import Principal
from kernel.ids import is_username
from storage.models import USER_ROLES, Organisation, User, WebSession, utcnow

SESSION_COOKIE = "dualcheck_session"
LANG_COOKIE = "dualcheck_lang"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MIN_PASSWORD = 8

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))  # unknown users cost the same time as known ones


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class UserPrincipal(Principal):
    """A person logged in through the browser: a Principal whose actor is ``user:<username>``."""

    username: str = ""
    display_name: str = ""

    @property
    def actor(self) -> str:
        return f"user:{self.username}"


def principal_for(db: Session, user: User) -> UserPrincipal:
    """The Principal of a user, with the same fields an API key of that role gets (api/keys.py), so
    api/scope.py decides for both: inspector and operator - the organisations of their regions
    (``*``: every region); institution - its one organisation; admin - everything."""
    regions = tuple(user.regions or ())
    region_orgs = None
    if regions:
        q = select(Organisation.id)
        if "*" not in regions:
            q = q.where(Organisation.region.in_(regions))
        region_orgs = frozenset(db.scalars(q))
    return UserPrincipal(key_id=f"user-{user.id}", role=user.role, org_id=user.org_id, terminal_id=None,
                         regions=regions, region_orgs=region_orgs, username=user.username,
                         display_name=user.display_name or user.username)


# --- passwords and users --------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """Constant-ish time whether the user exists or not; upgrades an outdated hash in place."""
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def add_user(db: Session, username: str, password: str, role: str, *, regions: list[str] | None = None,
             org_id: str | None = None, display_name: str | None = None) -> User:
    if not is_username(username):
        raise UserError(f"username {username!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in USER_ROLES:
        raise UserError(f"role must be one of {', '.join(USER_ROLES)}, not {role!r}")
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    regions = [r.strip() for r in (regions or []) if r.strip()]
    if role == "institution":
        if not org_id:
            raise UserError("an institution user needs --org (the organisation it answers for)")
        if regions:
            raise UserError("an institution user is scoped by --org, not --region")
    elif org_id:
        raise UserError(f"--org is only for institution users, not {role}")
    if role in ("inspector", "operator") and not regions:
        raise UserError(f"an {role} needs at least one --region (or --region '*' for every region)")
    if role in ("admin", "auditor") and regions:
        raise UserError(f"an {role} sees every region; leave out --region")
    if org_id and db.get(Organisation, org_id) is None:
        raise UserError(f"unknown organisation {org_id!r}")
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} exists already")
    user = User(username=username, display_name=display_name or username, password_hash=hash_password(password),
                role=role, regions=regions, org_id=org_id, disabled=False)
    db.add(user)
    db.flush()
    return user


def set_disabled(db: Session, username: str, disabled: bool = True) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r}")
    user.disabled = disabled
    if disabled:  # a disabled user is logged out everywhere at once
        db.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


# --- sessions ---------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Session, user: User, hours: float, ip: str | None = None) -> tuple[str, WebSession]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    ws = WebSession(token_hash=_token_hash(token), user_id=user.id, csrf_secret=secrets.token_urlsafe(32),
                    created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=hours), ip=(ip or "")[:64])
    db.add(ws)
    user.last_login_at = now
    # expired sessions of everyone are swept at each login: the table never grows without bound
    db.execute(delete(WebSession).where(WebSession.expires_at < now))
    return token, ws


def find_session(db: Session, token: str | None) -> tuple[WebSession, User] | None:
    """The live session of a cookie token with its (enabled) user, or None."""
    if not token or len(token) > 200:
        return None
    ws = db.get(WebSession, _token_hash(token))
    if ws is None:
        return None
    now = utcnow()
    if ws.expires_at <= now:
        db.delete(ws)
        return None
    user = db.get(User, ws.user_id)
    if user is None or user.disabled:
        return None
    if (now - ws.last_seen_at).total_seconds() > 60:
        ws.last_seen_at = now
    return ws, user


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def csrf_ok(ws: WebSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(ws.csrf_secret.encode(), presented.encode())


# --- login rate limit ---------------------------------------------------------------------------------


DEVICE_COOKIE = "dualcheck_device"
DEVICE_DAYS = 180


def device_token(user: User) -> str:
    """The device cookie of a browser that logged in as ``user``: the user name and an HMAC keyed by the
    user's password hash (a secret of the server; a new password voids every device cookie)."""
    mac = hmac.new(user.password_hash.encode(), f"device:{user.username}".encode(), hashlib.sha256).hexdigest()
    return f"{user.username}:{mac}"


def device_trusted(user: User | None, token: str | None) -> bool:
    """Has this browser logged in as ``user`` before (its device cookie)?"""
    if user is None or not token or user.disabled:
        return False
    return hmac.compare_digest(device_token(user), token)


class LoginLimiter:
    """Failed logins in a sliding window, in this process's memory. Three counts:

    * per (username, address): ``max_failures`` - one client guessing one password;
    * per address: ``max_per_address`` - one client guessing across accounts;
    * per username from browsers that never logged in as it (no device cookie): ``max_per_account`` -
      guessing one account from many addresses.

    A browser holding the account's device cookie (it logged in as the user before) is counted apart
    (``max_failures`` per account) and none of the three counts refuses it, so an attacker who uses
    them up - even from the user's own address, e.g. behind one ingress - cannot lock the user out
    (OWASP's device cookies); a new browser of the user waits like the attacker, for the window.

    The address is the peer's, or X-Forwarded-For from a proxy of ``api_forwarded_allow_ips`` only.
    With several workers each counts its own, which still bounds guessing to workers x the limits."""

    def __init__(self, max_failures: int, window_s: float, clock=time.monotonic, *,
                 max_per_address: int | None = None, max_per_account: int | None = None):
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self.max_per_address = max_per_address or max_failures * 4
        self.max_per_account = max_per_account or max_failures * 4
        self._fails: dict[tuple, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key) -> deque:
        q = self._fails.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def _keys(self, username: str, ip: str, trusted: bool) -> list[tuple[tuple, int]]:
        if trusted:  # only the user's own browsers: counted apart, so nobody else can use them up
            return [(("device", username.lower()), self.max_failures)]
        return [(("user-ip", username.lower(), ip), self.max_failures), (("ip", ip), self.max_per_address),
                (("user", username.lower()), self.max_per_account)]

    def retry_after(self, username: str, ip: str, trusted: bool = False) -> float:
        """Seconds until another attempt is allowed (0: allowed now). ``trusted``: the browser holds the
        account's device cookie."""
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(username, ip, trusted):
                q = self._recent(key)
                if len(q) >= limit:
                    wait = max(wait, q[-limit] + self.window_s - self.clock(), 1.0)
        return wait

    def failed(self, username: str, ip: str, trusted: bool = False) -> None:
        with self._lock:
            now = self.clock()
            for key, _ in self._keys(username, ip, trusted):
                self._recent(key).append(now)
            if len(self._fails) > 100_000:  # bound memory under a spray of usernames
                self._fails.clear()

    def succeeded(self, username: str, ip: str) -> None:
        # the account's count stays: a login of the user must not reopen guessing from elsewhere
        with self._lock:
            self._fails.pop(("user-ip", username.lower(), ip), None)
            self._fails.pop(("device", username.lower()), None)
