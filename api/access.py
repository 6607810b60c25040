"""Per request: the request id (header ``X-Request-ID`` in and out, and in every log line of the
request), one access log line and the HTTP metrics.

The access line names the route *template* (``/v1/insured/{insured_id}/photos``), never the raw path or
the query string: those can carry insured ids.
"""
from __future__ import annotations

import logging
import time
import uuid

from fastapi import Request

from kernel import logs, metrics
from kernel.ids import is_request_id

log = logging.getLogger("dualcheck.api.access")

_QUIET = {"/metrics", "/healthz", "/readyz"}  # scraped every few seconds: access lines at DEBUG only


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "<unmatched>"


class RequestContext:
    """Pure ASGI middleware (a BaseHTTPMiddleware runs the app in a second task with its own streams, about a
    tenth of a face check's CPU in the API process: bench/verify.py)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = ""
        for k, v in scope.get("headers") or ():
            if k == b"x-request-id":
                given = v.decode("latin-1")
                break
        rid = given if is_request_id(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = logs.request_id.set(rid)
        t0 = time.perf_counter()
        status, took = 500, None
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message):
            nonlocal status, took
            if message["type"] == "http.response.start":
                status, took = message["status"], time.perf_counter() - t0  # timed to the headers, as before
                message = {**message, "headers": [*(h for h in message.get("headers") or ()
                                                    if h[0].lower() != b"x-request-id"), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = took if took is not None else time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(took)
            log.log(logging.DEBUG if route in _QUIET else logging.INFO, "%s %s %d %.1f ms", method, route,
                    status, took * 1000, extra={"method": method, "route": route, "status": status,
                                                "duration_ms": round(took * 1000, 1)})
            logs.request_id.reset(token)
