"""The refusals of the API as the OpenAPI document states them, so that generated clients know them.

Every refusal has one body (api/errors.py): ``{"error": {"code": ..., "reason": ...}}``, sometimes with
more fields beside code and reason (``errors`` of a refused settlement import, ``retry_after_s``...).
Each router names the statuses its routes can answer with (``responses=errors(...)``); ``AUTHENTICATED``
are those of any route behind an API key or a session.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # some refusals add fields (e.g. the rows of an import)

    code: str = Field(..., description="A stable code for programs, e.g. not_found, invalid_time, rate_limited.")
    reason: str = Field(..., description="What was wrong, for people. Never echoes an uploaded image.")


class ErrorBody(BaseModel):
    """The body of every 4xx (and of a 503) of the API."""

    error: ErrorDetail


_WHAT = {
    400: "Bad request: a parameter or body field is malformed or out of range (see error.reason)",
    401: "Missing, malformed, unknown or revoked API key, or an expired session",
    403: "The caller's role may not do this (or a cookie-authenticated change lacks its CSRF token)",
    404: "Not found, or not visible to the caller (the two are not told apart)",
    405: "The path exists but not with this method (Allow lists its methods)",
    409: "Conflicts with the current state (already decided, already exists, held)",
    410: "Gone: the object existed but its retention ended",
    413: "The request body, an image or a list is larger than allowed",
    415: "The upload is not a supported image type (JPEG or PNG)",
    416: "The requested byte range is outside the clip",
    422: "The request does not match the documented schema (type or required field)",
    429: "Rate limited: wait Retry-After seconds",
    503: "Temporarily unable to serve (busy or a dependency is down): retry after Retry-After seconds",
}

# what any route behind a key or session can answer: bad input, auth, role, not visible, body too large
# (the body limit applies to every path), schema mismatch, rate limit
AUTHENTICATED = (400, 401, 403, 404, 413, 422, 429)
# the largest row id a path or query may name: PostgreSQL's BIGINT; one more overflowed there into a 500
ROW_ID_MAX = 2**63 - 1


def errors(*statuses: int) -> dict:
    """``responses=`` for a router or route: each status with the error body and what it means."""
    return {s: {"model": ErrorBody, "description": _WHAT[s]} for s in sorted(set(statuses))}


def path_methods(request) -> str:
    """The ``Allow`` of a 405: every method of every route of the request's path. Starlette names only the
    methods of the first route that matched the path, and one path often has several (GET and POST of
    /v1/cameras are two routes). Asked of the routes by trying each method: included routers answer
    ``matches`` for the routes they hold."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    if "GET" in allowed:
        allowed.append("HEAD")
    return ", ".join(sorted(allowed))


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
