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


async def request_context(request: Request, call_next):
    given = request.headers.get("x-request-id", "")
    rid = given if is_request_id(given) else uuid.uuid4().hex
    request.state.request_id = rid
    token = logs.request_id.set(rid)
    t0 = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers["X-Request-ID"] = rid
        return response
    finally:
        took = time.perf_counter() - t0
        route = route_template(request)
        metrics.HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
        metrics.HTTP_DURATION.labels(request.method, route).observe(took)
        log.log(logging.DEBUG if route in _QUIET else logging.INFO, "%s %s %d %.1f ms", request.method, route,
                status, took * 1000, extra={"method": request.method, "route": route, "status": status,
                                            "duration_ms": round(took * 1000, 1)})
        logs.request_id.reset(token)
