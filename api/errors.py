"""One error shape for every refusal: {"error": {"code": ..., "reason": ...}} with a 4xx status.

Every refusal also leaves one audit line (who, which route, which code) and nothing else: a
refused request stores no image, capture or template.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage.audit import audit
from storage.db import session_scope

log = logging.getLogger("dualcheck.api")

_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          413: "too_large"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, reason: str, **extra):
        super().__init__(reason)
        self.status, self.code, self.reason, self.extra = status, code, reason, extra


def error_body(code: str, reason: str, **extra) -> dict:
    return {"error": {"code": code, "reason": reason, **extra}}


def audit_refusal(app, request_id: str | None, actor: str, path: str, method: str, status: int, code: str) -> None:
    rt = getattr(app.state, "runtime", None)
    if rt is None:
        return
    try:
        with session_scope(rt.sessions) as db:
            audit(db, actor=actor, action=f"{method} {path}"[:64], outcome=f"refused:{code}"[:32],
                  request_id=request_id, detail={"status": status, "code": code, "path": path})
    except Exception:  # the refusal itself must still reach the caller
        log.exception("could not write the audit line for a refused request")


async def _respond(request: Request, status: int, code: str, reason: str, headers=None, **extra) -> JSONResponse:
    if status != 404 or request.url.path.startswith("/v1/"):
        await run_in_threadpool(
            audit_refusal, request.app, getattr(request.state, "request_id", None),
            getattr(request.state, "actor", "anonymous"), request.url.path, request.method, status, code)
    log.info("refused %s %s: %s %s", request.method, request.url.path, status, code)
    return JSONResponse(error_body(code, reason, **extra), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return await _respond(request, exc.status, exc.code, exc.reason, **exc.extra)

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
        return await _respond(request, exc.status_code, _CODES.get(exc.status_code, "http_error"),
                              str(exc.detail), headers=getattr(exc, "headers", None))
