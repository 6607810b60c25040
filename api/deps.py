"""Request-scoped dependencies: the runtime and the caller's identity."""
from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.keys import KeyCache, Principal, authenticate, key_id_of
from api.ratelimit import check_rate
from api.services import Services
from api.web.auth import CSRF_HEADER, SESSION_COOKIE, csrf_ok, find_session, principal_for
from storage.db import session_scope
from storage.models import ApiKey, utcnow

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer dck_<id>_<secret>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def runtime(request: Request) -> Services:
    # async: a sync dependency costs a hop to the thread pool and back on every request
    return request.app.state.runtime


def principal(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> Principal:
    rt: Services = request.app.state.runtime
    presented = (bearer.credentials if bearer else None) or header
    if not presented and request.cookies.get(SESSION_COOKIE):
        return browser_principal(request)  # a logged-in browser (a <video> element sends no API key)
    cache: KeyCache = request.app.state.key_cache
    who = cache.get(presented) if presented else None
    if who is None and presented:
        with session_scope(rt.sessions) as db:
            who = authenticate(db, presented)
            if who is not None:
                key = db.get(ApiKey, who.key_id)
                now = utcnow()
                # at most one write a minute per key: a busy terminal must not turn every call into two writes
                if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                    key.last_used_at = now
        if who is not None:
            cache.put(presented, who)
    # refused attempts are audited by key id only: a secret never reaches a log or the index
    request.state.actor = who.actor if who else f"key:{key_id_of(presented) or 'none'}"
    if who is None:
        raise ApiError(401, "unauthenticated",
                       "missing API key" if not presented else "unknown, malformed or revoked API key")
    check_rate(request, who)
    return who


def require(*roles: str):
    async def check(who: Principal = Depends(principal)) -> Principal:  # async: no thread hop
        if who.role not in roles:
            raise ApiError(403, "forbidden", f"a {who.role} key may not call this endpoint")
        return who

    return check


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def browser_principal(request: Request, *, check_csrf: bool = True) -> Principal:
    """The Principal of the session cookie (api/web/auth.py). A state-changing request authenticated by
    the cookie must carry the session's CSRF token in ``X-CSRF-Token`` (forms of the web UI send it as a
    field; their routes check it themselves and call this with ``check_csrf=False``)."""

    rt: Services = request.app.state.runtime
    with session_scope(rt.sessions) as db:  # commits the removal of an expired session
        found = find_session(db, request.cookies.get(SESSION_COOKIE))
        who = principal_for(db, found[1]) if found else None
    if found is None:
        request.state.actor = "session:invalid"
        raise ApiError(401, "unauthenticated", "the session expired or is unknown: log in again")
    ws = found[0]
    request.state.actor = who.actor
    if check_csrf and request.method not in _SAFE_METHODS and not csrf_ok(ws, request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "csrf", f"a request authenticated by the session cookie needs the {CSRF_HEADER} "
                       "header with the session's CSRF token")
    check_rate(request, who)
    return who
