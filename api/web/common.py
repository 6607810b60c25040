"""What every page needs: the logged-in user, the language, templates, CSRF, friendly errors, headers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from api.errors import audit_refusal, refusal_response
from api.keys import Principal
from api.ratelimit import check_rate
from api.scope import can_see_camera_health, visible_orgs
from api.web.auth import CSRF_FIELD, LANG_COOKIE, SESSION_COOKIE, csrf_ok, find_session, principal_for
from api.web.i18n import LANGS, Translator
from api.web.nav import unread_counts
from kernel.errors import Refusal
from kernel.timefmt import TimeInvalid, parse_day
from storage.db import session_scope
from storage.models import Camera, Organisation, User, WebSession

HERE = Path(__file__).parent
env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["todt"] = lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v

# The security headers (CSP and the rest) are added to every response by api/security.py.


class WebError(Exception):
    """Shown to the person as a friendly page (never JSON) with the status."""

    def __init__(self, status: int, message_key: str, detail: str | None = None):
        super().__init__(message_key)
        self.status, self.message_key, self.detail = status, message_key, detail


class LoginRequired(Exception):
    def __init__(self, expired: bool = False):
        self.expired = expired


@dataclass
class Ctx:
    """The request's person and language."""

    request: Request
    who: Principal
    session: WebSession
    t: Translator

    @property
    def rt(self):
        return self.request.app.state.runtime

    @property
    def csrf(self) -> str:
        return self.session.csrf_secret


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE)
    return lang if lang in LANGS else request.app.state.runtime.settings.web_default_lang


def translator(request: Request) -> Translator:
    return Translator(lang_of(request), request.app.state.runtime.settings.web_timezone)


def web_ctx(request: Request) -> Ctx:
    """Dependency of every page: the logged-in person (else a redirect to the login page)."""
    rt = request.app.state.runtime
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    with session_scope(rt.sessions) as db:  # commits the removal of an expired session
        found = find_session(db, token)
        who = principal_for(db, found[1]) if found else None
    if found is None:
        raise LoginRequired(expired=True)
    ws = found[0]
    request.state.actor = who.actor
    check_rate(request, who)
    return Ctx(request, who, ws, translator(request))


def need_role(ctx: Ctx, *roles: str) -> None:
    if ctx.who.role not in roles:
        raise WebError(403, "forbidden")


async def form_checked(ctx: Ctx) -> dict:
    """The posted form, after its CSRF token is checked against the session's."""
    form = await ctx.request.form()
    if not csrf_ok(ctx.session, form.get(CSRF_FIELD) or ctx.request.headers.get("x-csrf-token")):
        raise WebError(403, "csrf_failed")
    return {k: v for k, v in form.items()}


class ActorNames:
    """Who did something, as a person reads it: a user's display name (looked up once per page), else
    the kind of caller (system, interface key, command line)."""

    def __init__(self, sessions, t: Translator):
        self.sessions, self.t, self.names = sessions, t, None

    def __call__(self, actor: str | None) -> str:
        kind, _, rest = (actor or "").partition(":")
        if kind == "user":
            if self.names is None:
                with session_scope(self.sessions) as db:
                    self.names = dict(db.execute(select(User.username, User.display_name)).all())
            return self.names.get(rest) or rest
        if kind == "key":
            return self.t("actor_key")
        if kind in ("cli", "login"):
            return self.t("actor_cli") if kind == "cli" else rest
        return self.t("role_system")


def render(ctx: Ctx | None, name: str, status: int = 200, request: Request | None = None, **values) -> HTMLResponse:
    request = request or ctx.request
    t = ctx.t if ctx else translator(request)
    values.setdefault("unread", unread_counts(ctx.rt.sessions, ctx.who) if ctx else {})  # the navigation's counts
    html = env.get_template(name).render(
        t=t, who=ctx.who if ctx else None, csrf=ctx.csrf if ctx else "", lang=t.lang, path=request.url.path,
        query=str(request.url.query), actor_name=ActorNames(request.app.state.runtime.sessions, t), **values)
    return HTMLResponse(html, status_code=status)


def login_redirect(request: Request, expired: bool = False) -> RedirectResponse:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(nxt, safe='')}" + ("&expired=1" if expired else "")
    return RedirectResponse(url, status_code=303)


def orgs_visible(db, who: Principal) -> list[Organisation]:
    """Organisations whose flags and evidence the person may see (api.scope.visible_orgs)."""

    ids = visible_orgs(who)
    q = select(Organisation).order_by(Organisation.id)
    if ids is not None:
        q = q.where(Organisation.id.in_(sorted(ids)))
    return list(db.scalars(q))


def camera_health_orgs(db, who: Principal) -> list[Organisation]:
    """Organisations whose camera health the person may see (the rule is api.scope's)."""
    orgs = db.scalars(select(Organisation).order_by(Organisation.id))
    return [o for o in orgs if can_see_camera_health(who, o.id)]


def install(app) -> None:
    """Static files, friendly error pages, login redirects."""

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        return login_redirect(request, exc.expired)

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal):
        # one handler per exception class per app: this one serves the JSON API's paths too
        if request.url.path.startswith("/v1/"):
            return await refusal_response(request, exc)
        return await _web_error(request, WebError(exc.status, "bad_request", exc.reason))

    @app.exception_handler(WebError)
    async def _web_error(request: Request, exc: WebError):


        if exc.status in (401, 403):
            await run_in_threadpool(audit_refusal, request.app, getattr(request.state, "request_id", None),
                                    getattr(request.state, "actor", "anonymous"), request.url.path, request.method,
                                    exc.status, exc.message_key)
        t = translator(request)
        html = env.get_template("error.html").render(t=t, who=None, csrf="", lang=t.lang, path=request.url.path,
                                                    query="", status=exc.status, message=t(exc.message_key),
                                                    detail=exc.detail)
        return HTMLResponse(html, status_code=exc.status)


def form_day(value: str | None, name: str) -> date | None:
    """A day typed in a page's form (YYYY-MM-DD, the shared supported range), or a friendly 400 page."""
    if not value:
        return None
    try:
        return parse_day(value, name)
    except TimeInvalid as e:
        raise WebError(400, "bad_request", e.reason) from None


def camera_seen(db, ctx: Ctx, camera_id: str):
    """The camera of an editor page (zones, beds): 404 when it is removed or not the caller's to see."""
    cam = db.get(Camera, camera_id[:64])
    if cam is None or cam.removed_at is not None or not can_see_camera_health(ctx.who, cam.org_id):
        raise WebError(404, "not_found")
    return cam
