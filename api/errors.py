"""One error shape for every refusal: {"error": {"code": ..., "reason": ...}} with a 4xx status.

Every refusal also leaves one audit line (who, which route, which code) and nothing else: a
refused request stores no image, capture or template.
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


class _RateLimitAuditThrottle:
    """One audit line a minute per caller for 429s: a terminal stuck in a retry loop must not turn
    the audit table into a log of its loop. The line says how many refusals it stands for; every
    refusal is still counted in the metrics (dualcheck_http_requests_total)."""

    PERIOD_S = 60.0

    def __init__(self):
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # actor -> (time of its last line, refusals since)

    def admit(self, actor: str) -> int | None:
        """None: skip the line; else the number of refusals it stands for (this one included)."""
        now = time.monotonic()
        with self._lock:
            last, since = self._last.get(actor, (-self.PERIOD_S, 0))
            if now - last < self.PERIOD_S:
                self._last[actor] = (last, since + 1)
                return None
            if len(self._last) > 10_000:  # bounded: forget callers that went quiet
                self._last = {a: v for a, v in self._last.items() if now - v[0] < self.PERIOD_S}
            self._last[actor] = (now, 0)
            return since + 1


def audit_refusal(app, request_id: str | None, actor: str, path: str, method: str, status: int, code: str) -> None:
    rt = getattr(app.state, "runtime", None)
    if rt is None:
        return
    detail = {"status": status, "code": code, "path": path}
    if status == 429:
        throttle = getattr(app.state, "rate_limit_audit", None)
        if throttle is None:
            throttle = app.state.rate_limit_audit = _RateLimitAuditThrottle()
        n = throttle.admit(actor)
        if n is None:
            return
        detail["refusals"] = n  # this one and those not written since the caller's previous line
    try:
        with session_scope(rt.sessions) as db:
            audit(db, actor=actor, action=f"{method} {path}"[:64], outcome=f"refused:{code}"[:32],
                  request_id=request_id, detail=detail)
    except Exception:  # the refusal itself must still reach the caller
        log.exception("could not write the audit line for a refused request")


async def _respond(request: Request, status: int, code: str, reason: str, headers=None, **extra) -> JSONResponse:
    if status != 404 or request.url.path.startswith("/v1/"):
        await run_in_threadpool(
            audit_refusal, request.app, getattr(request.state, "request_id", None),
            getattr(request.state, "actor", "anonymous"), request.url.path, request.method, status, code)
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
