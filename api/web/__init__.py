"""The inspector web UI: server-rendered pages (Jinja2) over the same data and scope rules as the JSON API.

``install(app, settings)`` adds the pages, the biometric image endpoints, static files, security
headers, friendly error pages and the login rate limiter to the API app.
"""
from __future__ import annotations


def install(app, settings) -> None:
    from api.web import common, pages
    from api.web.auth import LoginLimiter

    app.state.login_limiter = LoginLimiter(settings.web_login_max_failures, settings.web_login_window_s)
    common.install(app)
    app.include_router(pages.router)
