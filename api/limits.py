"""Request body limit enforced while the body streams in, so an oversize upload is never buffered."""
from __future__ import annotations

import json

import anyio
from starlette.exceptions import HTTPException

from api.errors import audit_refusal


def _message(limit: int, hint: str) -> str:
    return f"request body over the limit of {limit} bytes" + (f" ({hint})" if hint else "")


def _too_large(limit: int, hint: str) -> HTTPException:
    # An HTTPException passes through FastAPI's body parsing untouched (other errors become 400).
    return HTTPException(413, detail=_message(limit, hint))


class BodySizeLimit:
    """Pure ASGI middleware: 413 when Content-Length says too much, or when the stream exceeds it."""

    def __init__(self, app, limit_for):
        self.app = app
        self.limit_for = limit_for  # path -> (max bytes, what the caller should know about it)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, hint = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _reject(scope, send, limit, hint)

        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit, hint)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _reject(scope, send, limit, hint)


async def _reject(scope, send, limit: int, hint: str) -> None:

    if "app" in scope:
        rid = (scope.get("state") or {}).get("request_id")
        await anyio.to_thread.run_sync(audit_refusal, scope["app"], rid, "anonymous", scope.get("path", ""),
                                       scope.get("method", ""), 413, "too_large")
    body = json.dumps({"error": {"code": "too_large", "reason": _message(limit, hint)}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
