"""Admission of face work at the door: the routes that run the models are admitted or refused before
their upload is read, so a refusal costs neither the upload's memory nor a thread (kernel/admission.py
decides; docs/operations.md explains the settings).

A refused request is answered at once: 503, ``Retry-After`` and ``{"error": {"code": "overloaded", ...}}``,
so a face-pay terminal can fall back. An admitted one carries its ticket in ``request.state.admission``
(the verification waits for its analysis through it, within the latency budget) until it is answered.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
from starlette.routing import compile_path

from api.errors import error_body, refusal_detail, write_refusal
from kernel.admission import Overloaded

# (method, route template) -> kind of work. tests/api/test_overload.py checks every one is a route of the app.
GATED = {
    ("POST", "/v1/verify"): "verify",
    ("PUT", "/v1/insured/{insured_id}/photos"): "enrol",
    ("PUT", "/v1/orgs/{org_id}/staff/{staff_id}/photos"): "enrol",
    ("POST", "/staff/{org_id}/photos"): "enrol",  # the web UI's staff upload form
}


@dataclass(frozen=True)
class _Route:
    """What api/access.py's route_template reads (``scope["route"].path``) for a request refused here,
    before routing: its access line and HTTP metrics name the template, never the raw path."""
    path: str


_PATTERNS = [(method, compile_path(template)[0], work, _Route(template)) for (method, template), work in GATED.items()]


def gated(method: str, path: str) -> tuple[str, _Route] | None:
    for m, regex, work, route in _PATTERNS:
        if m == method and regex.match(path):
            return work, route
    return None


class FaceAdmission:
    """Pure ASGI middleware (a BaseHTTPMiddleware would not let it answer without touching the body)."""

    def __init__(self, app, services):
        self.app, self.services = app, services

    async def __call__(self, scope, receive, send):
        found = gated(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            return await self.app(scope, receive, send)
        work, route = found
        try:
            ticket = self.services.admission.try_admit(work)
        except Overloaded as e:
            scope["route"] = route
            return await _refuse(scope, send, e)
        scope.setdefault("state", {})["admission"] = ticket
        try:
            await self.app(scope, receive, send)
        finally:
            ticket.leave()


async def _refuse(scope, send, e: Overloaded) -> None:
    route = scope["route"].path
    client = (scope.get("client") or (None,))[0]
    detail = refusal_detail(scope["app"], "anonymous", scope["path"], 503, e.code, route=route, client=client)
    if detail is not None:  # sampled: one line a minute per source and route
        rid = (scope.get("state") or {}).get("request_id")
        detail["cause"] = e.cause
        await anyio.to_thread.run_sync(write_refusal, scope["app"], rid, "anonymous", scope["path"], scope["method"],
                                       e.code, detail)
    body = json.dumps(error_body(e.code, e.reason, retry_after_s=e.retry_after_s)).encode()
    # the body is left unread: uvicorn discards it and keeps the connection
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                            (b"retry-after", str(e.retry_after_s).encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
