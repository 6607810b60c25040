"""``install(app, settings)``: the inspector web UI mounted on the API app."""
from __future__ import annotations

from api.web import (
    audit_pages,
    beds_pages,
    camera_pages,
    case_pages,
    common,
    orgs_pages,
    overview_pages,
    pages,
    rules_pages,
    staff_pages,
    watch_pages,
    zones_pages,
)
from api.web.auth import LoginLimiter


def install(app, settings) -> None:
    app.state.login_limiter = LoginLimiter(
        settings.web_login_max_failures, settings.web_login_window_s,
        max_per_address=settings.web_login_max_failures_per_address,
        max_per_account=settings.web_login_max_account_failures)
    common.install(app)
    app.include_router(case_pages.router)
    app.include_router(pages.router)
    app.include_router(camera_pages.router)
    app.include_router(orgs_pages.router)
    app.include_router(overview_pages.router)
    app.include_router(staff_pages.router)
    app.include_router(zones_pages.router)
    app.include_router(beds_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(watch_pages.router)
    app.include_router(rules_pages.router)
