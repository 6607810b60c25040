"""Security headers on every response: pages, JSON, media, errors (also those of outer middleware).

The CSP allows only the app's own scripts, styles and media: the UI has no inline script or style
(player data travels as a JSON <script type="application/json">, which is not executed). Responses
that carry biometric or evidence data, and every other dynamic response, are ``no-store`` unless the
route chose its own caching; static files keep theirs.
"""
from __future__ import annotations

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
_STATIC_PREFIX = "/static/"
# FastAPI's own API docs are inline scripts from a CDN: a developer tool, outside the UI's policy
_NO_CSP = ("/docs", "/redoc")


def _is_https(scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    # behind the TLS proxy or ingress; HSTS on a response that in truth went over plain HTTP is ignored
    # by browsers (RFC 6797 8.1), so trusting this header costs nothing
    for k, v in scope.get("headers") or ():
        if k == b"x-forwarded-proto":
            return v.split(b",")[0].strip().lower() == b"https"
    return False


class SecurityHeaders:
    """Pure ASGI middleware; add it last so it wraps every other middleware's responses too."""

    def __init__(self, app, hsts_max_age_s: int = 0):
        self.app = app
        self.hsts = f"max-age={hsts_max_age_s}; includeSubDomains".encode() if hsts_max_age_s > 0 else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        static = path.startswith(_STATIC_PREFIX)
        csp = path not in _NO_CSP and not path.startswith("/docs/")
        hsts = self.hsts if self.hsts and _is_https(scope) else None

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if csp or k != "Content-Security-Policy"]
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                if hsts:
                    extra.append((b"strict-transport-security", hsts))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
