"""The pages: login, language, a flag's evidence (shown on the case pages: api/web/case_pages.py), evidence
export. Cameras: api/web/camera_pages.py; the overview: api/web/overview_pages.py."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from api.routes.cameras import footage_store
from api.scope import can_see_flag
from api.web.auth import (
    DEVICE_COOKIE,
    DEVICE_DAYS,
    LANG_COOKIE,
    SESSION_COOKIE,
    check_password,
    device_token,
    device_trusted,
    end_session,
    find_session,
    start_session,
)
from api.web.claim_lines import claim_columns
from api.web.common import (
    Ctx,
    WebError,
    form_checked,
    need_role,
    render,
    translator,
    web_ctx,
)
from api.web.i18n import LANGS
from correlate.window import windows
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.clips import ClipError
from storage.db import session_scope
from storage.export import build_package
from storage.models import (
    Camera,
    Flag,
    FlagEvent,
    Organisation,
    Settlement,
    SettlementCheck,
    User,
    Verification,
)

router = APIRouter(include_in_schema=False)

REVIEWERS = ("inspector", "admin")
STATUS_FILTERS = ("active", "open", "inquiry", "confirmed", "dismissed", "all")
QUEUE_LIMIT = 200



def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt else "/"


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- login, logout, language ------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str | None = None, expired: int = 0):
    t = translator(request)
    return render(None, "login.html", request=request, next=_safe_next(next),
                  error=t("session_expired") if expired else None)


@router.post("/login")
async def login_submit(request: Request):
    form = await request.form()
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:1024]
    nxt = _safe_next(str(form.get("next") or "/"))
    ip = _client_ip(request)
    rt = request.app.state.runtime
    limiter = request.app.state.login_limiter
    t = translator(request)

    def known_device() -> bool:  # has this browser logged in as this user before? (no argon2: an HMAC)
        with session_scope(rt.sessions) as db:
            user = db.scalar(select(User).where(User.username == username)) if username else None
            return device_trusted(user, request.cookies.get(DEVICE_COOKIE))

    trusted = await run_in_threadpool(known_device)
    wait = limiter.retry_after(username, ip, trusted)
    if wait > 0:
        with session_scope(rt.sessions) as db:
            audit(db, actor=f"login:{username}", action="login", outcome="refused:rate_limited",
                  request_id=request.state.request_id, detail={"ip": ip})
        resp = render(None, "login.html", status=429, request=request, next=nxt,
                      error=t("login_limited", s=int(wait + 0.999)), username=username)
        resp.headers["Retry-After"] = str(int(wait + 0.999))
        return resp

    def attempt():
        with session_scope(rt.sessions) as db:
            user = db.scalar(select(User).where(User.username == username)) if username else None
            ok = check_password(user, password) and user is not None and not user.disabled
            if not ok:
                audit(db, actor=f"login:{username}", action="login", outcome="refused:bad_credentials",
                      request_id=request.state.request_id, detail={"ip": ip})
                return None
            token, _ = start_session(db, user, rt.settings.web_session_hours, ip)
            audit(db, actor=f"user:{user.username}", action="login", outcome="ok", org_id=user.org_id,
                  request_id=request.state.request_id, detail={"ip": ip})
            return token, device_token(user)

    token, device = await run_in_threadpool(attempt) or (None, None)  # argon2: tens of ms, off the event loop
    if token is None:
        limiter.failed(username, ip, trusted)
        return render(None, "login.html", status=401, request=request, next=nxt, error=t("login_failed"),
                      username=username)
    limiter.succeeded(username, ip)
    resp = RedirectResponse(nxt, status_code=303)
    # a browser-session cookie (gone when the browser closes); the server ends it at web_session_hours
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=rt.settings.web_cookie_secure,
                    path="/")
    # remembers that this browser logged in as this user: the per-account login limit never refuses it
    resp.set_cookie(DEVICE_COOKIE, device, max_age=DEVICE_DAYS * 86400, httponly=True, samesite="strict",
                    secure=rt.settings.web_cookie_secure, path="/login")
    return resp


@router.post("/logout")
async def logout(request: Request, ctx: Ctx = Depends(web_ctx)):
    await form_checked(ctx)
    with session_scope(ctx.rt.sessions) as db:
        end_session(db, request.cookies.get(SESSION_COOKIE))
        audit(db, actor=ctx.who.actor, action="logout", outcome="ok", request_id=request.state.request_id)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/lang/{code}")
def set_lang(code: str, request: Request, next: str | None = None):
    """Switch the language (a preference only; remembered for a year)."""
    if code not in LANGS:
        raise WebError(400, "bad_request", f"language must be one of {', '.join(LANGS)}")
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return resp


@router.get("/")
def home(request: Request):
    rt = request.app.state.runtime
    with session_scope(rt.sessions) as db:
        found = find_session(db, request.cookies.get(SESSION_COOKIE))
        role = found[1].role if found else None
    target = {"inspector": "/flags", "admin": "/flags", "institution": "/inquiries", "operator": "/cameras",
              "auditor": "/audit"}
    return RedirectResponse(target.get(role, "/login"), status_code=303)


# --- flag queue -----------------------------------------------------------------------------------



def _local_day_start(t, d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=t.tz).astimezone(timezone.utc)


# --- flag detail ------------------------------------------------------------------------------------


def visible_flag(db, ctx: Ctx, flag_id: str) -> Flag:
    """The flag if the person may see it; otherwise 404 (never a hint that it exists)."""

    flag = db.get(Flag, flag_id[:64])
    if flag is None or not can_see_flag(ctx.who, flag.org_id, flag.inquiry_state):
        raise WebError(404, "not_found")
    return flag


def _dt(v) -> datetime | None:
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")) if v else None
    except ValueError:
        return None


def camera_windows(db, settings, flag: Flag, s: Settlement | None, check: SettlementCheck | None) -> list[dict]:
    """Cameras and time windows to replay: the flag's evidence, else the check's, else the settlement's
    cameras and windows (correlate/window.py)."""
    wins: list[dict] = []
    for c in (flag.evidence or {}).get("cameras") or (check.cameras if check is not None else None) or []:
        a, b = _dt(c.get("start")), _dt(c.get("end"))
        if c.get("camera_id") and a and b and b > a:
            wins.append({"camera_id": c["camera_id"], "role": c.get("role"), "start": a, "end": b,
                         "coverage": c.get("coverage")})
    if not wins and s is not None:

        wins = [{"camera_id": w.camera_id, "role": w.role, "start": w.start, "end": w.end, "coverage": None}
                for w in windows(db, settings, s)]
    longest = timedelta(seconds=settings.clip_max_seconds)
    for w in wins:
        if w["end"] - w["start"] > longest:
            w["end"] = w["start"] + longest
        cam = db.get(Camera, w["camera_id"])
        w["name"] = cam.name if cam else w["camera_id"]
    return wins


def _clip_urls(w: dict) -> dict:
    q = urlencode({"start": iso_z(w["start"]), "end": iso_z(w["end"])})
    return {"clip": f"/v1/cameras/{w['camera_id']}/clip?{q}", "info": f"/v1/cameras/{w['camera_id']}/clip.json?{q}"}


def flag_evidence(db, ctx: Ctx, flag: Flag, biometrics: bool) -> dict:
    """Everything a flag page shows. Face images come from the flags API (crops, capture) and
    /v1/flags/{id}/photos/{template} (api/routes/flags.py): the page only links them."""
    ev = flag.evidence or {}
    s = db.get(Settlement, flag.settlement_id) if flag.settlement_id else None
    check = db.scalar(select(SettlementCheck).where(SettlementCheck.settlement_id == s.id)) if s else None
    wins = camera_windows(db, ctx.rt.settings, flag, s, check)
    faces, photos, face_pay = [], [], ev.get("face_pay")
    if biometrics:
        for f in ev.get("faces") or []:
            seen = _dt(f.get("seen_at"))
            if f.get("evidence_id") and seen:
                faces.append({**f, "seen": seen, "url": f"/v1/flags/{flag.id}/faces/{f['evidence_id']}"})
        faces.sort(key=lambda f: f["seen"])
        photos = [f"/v1/flags/{flag.id}/photos/{p['template_id']}" for p in ev.get("insured_photos") or []
                  if p.get("template_id")][:3]
    face_check = db.get(Verification, face_pay["verification_id"]) if face_pay and face_pay.get("verification_id") \
        else (db.get(Verification, s.verification_id) if s is not None and s.verification_id else None)
    events = list(db.scalars(select(FlagEvent).where(FlagEvent.flag_id == flag.id).order_by(FlagEvent.id)))
    others = []
    if len(flag.settlement_ids or []) > 1:
        others = list(db.scalars(select(Settlement).where(Settlement.id.in_(flag.settlement_ids))
                                 .order_by(Settlement.settled_at)))
    org = db.get(Organisation, flag.org_id)
    player = {
        # a data check's flag starts at the moment its lines describe (correlate/claim_checks.py)
        "settled_at": ev.get("moment") or iso_z(s.settled_at if s else flag.occurred_at),
        "cameras": [{"id": w["camera_id"], "name": w["name"], "start": iso_z(w["start"]), "end": iso_z(w["end"]),
                     **_clip_urls(w)} for w in wins],
        "faces": [{"id": f["evidence_id"], "camera_id": f.get("camera_id"), "seen_at": iso_z(f["seen"])} for f in faces],
        "labels": {"gap": ctx.t("gaps"), "no_footage": ctx.t("no_footage")},
        "tz": ctx.rt.settings.web_timezone,
    }
    capture = None
    if biometrics and face_pay and face_pay.get("capture"):
        capture = {"url": f"/v1/flags/{flag.id}/capture", "decision": face_pay.get("decision"),
                   "score": face_pay.get("score"), "at": _dt(face_pay.get("at"))}
    # scores: face-match scores only with the biometrics (an institution's page shows none)
    return {"flag": flag, "settlement": s, "check": check, "windows": wins, "faces": faces, "photos": photos,
            "capture": capture, "scores": biometrics, "face_check": face_check, "events": events, "others": others,
            "org": org, "claim": claim_columns(ev, ctx.t),
            "player_json": json.dumps(player, ensure_ascii=False).replace("</", "<\\/")}


@router.post("/flags/{flag_id}/export")
async def flag_export(flag_id: str, ctx: Ctx = Depends(web_ctx)):
    """Build the evidence package of one camera's window (storage/export.py) and offer it for download."""
    need_role(ctx, *REVIEWERS)
    form = await form_checked(ctx)
    camera_id = str(form.get("camera_id") or "")

    def go():
        with session_scope(ctx.rt.sessions) as db:
            flag = visible_flag(db, ctx, flag_id)
            data = flag_evidence(db, ctx, flag, biometrics=False)
            win = next((w for w in data["windows"] if w["camera_id"] == camera_id), None)
            if win is None:
                raise WebError(400, "bad_request", f"camera {camera_id[:64]!r} is not part of this flag's evidence")
            cam = db.get(Camera, camera_id)
            try:
                r = build_package(db, footage_store(ctx.rt), ctx.rt.settings.bucket_footage, cam, win["start"],
                                  win["end"], actor=ctx.who.actor, reason=f"预警 {flag.id}",
                                  request_id=ctx.request.state.request_id,
                                  workdir=ctx.rt.settings.data_dir if ctx.rt.settings.data_dir.exists() else None,
                                  tz=ctx.rt.settings.web_timezone)
            except ClipError as e:
                raise WebError(404 if e.code == "no_footage" else 500, "no_footage", e.reason) from None
            return flag, r

    flag, r = await run_in_threadpool(go)
    return render(ctx, "export.html", flag=flag, export=r)
