"""One error shape for every refusal: {"error": {"code": ..., "reason": ...}} with a 4xx status.

Every refusal also leaves one audit line (who, which route, which code) and nothing else: a
refused request stores no image, capture or template. Refusals that come in floods (429s, anonymous
requests, 503 overloaded) are audited by sample: one line a minute per caller or per source and route,
counting the refusals it stands for (``_AuditSampler``).
"""
from __future__ import annotations

import logging
import threading
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.access import route_template
from api.responses import path_methods
from api.security import SECURITY_HEADERS
from kernel import metrics
from kernel.errors import Refusal
from storage.audit import audit
from storage.db import session_scope

log = logging.getLogger("dualcheck.api")

_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          413: "too_large", 429: "rate_limited"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, reason: str, headers: dict | None = None, **extra):
        super().__init__(reason)
        self.status, self.code, self.reason, self.extra = status, code, reason, extra
        self.headers = headers  # e.g. Retry-After of a 429


def error_body(code: str, reason: str, **extra) -> dict:
    return {"error": {"code": code, "reason": reason, **extra}}


class _AuditSampler:
    """At most one audit line a minute per key, for refusals that come in floods: a terminal stuck in a
    retry loop (429, keyed by caller), anonymous requests and overload refusals (keyed by source address
    and route template) must not turn the audit table into a log of the flood, nor compete on SQLite with
    face-pay writes. The line says how many refusals it stands for; every refusal is still counted in the
    metrics (dualcheck_http_requests_total, dualcheck_anonymous_refusals_total)."""

    PERIOD_S = 60.0

    def __init__(self):
        self._lock = threading.Lock()
        self._last: dict[tuple, tuple[float, int]] = {}  # key -> (time of its last line, refusals since)

    def admit(self, key: tuple) -> int | None:
        """None: skip the line; else the number of refusals it stands for (this one included)."""
        now = time.monotonic()
        with self._lock:
            last, since = self._last.get(key, (-self.PERIOD_S, 0))
            if now - last < self.PERIOD_S:
                self._last[key] = (last, since + 1)
                return None
            if len(self._last) > 10_000:  # bounded: forget sources that went quiet
                self._last = {a: v for a, v in self._last.items() if now - v[0] < self.PERIOD_S}
            self._last[key] = (now, 0)
            return since + 1


_ANONYMOUS = ("anonymous", "key:none", "session:invalid")  # no credential, or none was checked yet


def refusal_detail(app, actor: str, path: str, status: int, code: str, *, route: str | None = None,
                   client: str | None = None) -> dict | None:
    """The detail of the audit line a refusal gets, or None when it is not written (a sampled refusal
    whose key already had its line this minute). Cheap: called on the event loop before any thread hop."""
    if getattr(app.state, "runtime", None) is None:
        return None
    detail = {"status": status, "code": code, "path": path}
    where = route or path  # sampled per route template; a caller that cannot tell it gives the path
    if status == 429:
        key = ("rate_limited", actor)
    elif code == "overloaded":
        key = ("overloaded", client, where)
    elif status == 401 or actor in _ANONYMOUS:
        metrics.ANONYMOUS_REFUSALS.labels(route or "<unmatched>", code).inc()
        key = ("anonymous", client, where)
    else:
        return detail
    sampler = getattr(app.state, "refusal_audit", None)
    if sampler is None:
        sampler = app.state.refusal_audit = _AuditSampler()
    n = sampler.admit(key)
    if n is None:
        return None
    detail["refusals"] = n  # this one and those not written since the key's previous line
    return detail


def write_refusal(app, request_id: str | None, actor: str, path: str, method: str, code: str, detail: dict) -> None:
    try:
        with session_scope(app.state.runtime.sessions) as db:
            audit(db, actor=actor, action=f"{method} {path}"[:64], outcome=f"refused:{code}"[:32],
                  request_id=request_id, detail=detail)
    except Exception:  # the refusal itself must still reach the caller
        log.exception("could not write the audit line for a refused request")


def audit_refusal(app, request_id: str | None, actor: str, path: str, method: str, status: int, code: str, *,
                  route: str | None = None, client: str | None = None) -> None:
    detail = refusal_detail(app, actor, path, status, code, route=route, client=client)
    if detail is not None:
        write_refusal(app, request_id, actor, path, method, code, detail)


async def _respond(request: Request, status: int, code: str, reason: str, headers=None, **extra) -> JSONResponse:
    if status != 404 or request.url.path.startswith("/v1/"):
        actor = getattr(request.state, "actor", "anonymous")
        detail = refusal_detail(request.app, actor, request.url.path, status, code, route=route_template(request),
                                client=request.client.host if request.client else None)
        if detail is not None:  # the thread hop only for a line that is written
            await run_in_threadpool(write_refusal, request.app, getattr(request.state, "request_id", None), actor,
                                    request.url.path, request.method, code, detail)
    # the route template, not the path: paths carry insured ids (the logs promise none); the method
    # is the caller's text, escaped with the rest of the line by kernel/logs.py
    log.info("refused %s %s: %s %s", request.method, route_template(request), status, code)
    return JSONResponse(error_body(code, reason, **extra), status_code=status, headers=headers)


async def refusal_response(request: Request, exc: Refusal):
    """A stage's refusal (kernel/errors.py) as the API's JSON error."""
    return await _respond(request, exc.status, exc.code, exc.reason)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return await _respond(request, exc.status, exc.code, exc.reason, headers=exc.headers, **exc.extra)

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal):
        return await refusal_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
            problems.append(f"{where}: {err.get('msg')}")
        # never echo the input back: it may be an image
        return await _respond(request, 422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette's Allow names one route's methods, not the path's
            headers = {**(headers or {}), "Allow": path_methods(request)}
        return await _respond(request, exc.status_code, _CODES.get(exc.status_code, "http_error"),
                              str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # A bug or an outage nobody turned into a refusal. Starlette sends this from its outermost
        # middleware, outside SecurityHeaders and the request-id middleware, so the headers are set
        # here; the body names the request id (to find the traceback in the log) and nothing else.

        rid = getattr(request.state, "request_id", None)
        # the route template, not the path: paths carry insured ids
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, route_template(request), exc_info=exc)
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        if rid:
            headers["X-Request-ID"] = rid
        return JSONResponse(error_body("internal_error", f"internal error; request id {rid or '-'}"),
                            status_code=500, headers=headers)
