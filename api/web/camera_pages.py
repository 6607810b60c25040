"""The cameras page, built for a few hundred cameras: summary counts, offline alerts, filters, search,
paging, one compact row per camera with its day on a timeline; and the camera administration of
operators and admins (add, edit, test the stream, remove) through the same registry functions and
audit events as the API and the CLI (ingest/cameras.py, ingest/probe.py).

What the timeline shows apart from a gap (presentation only: ingest/health.py's gaps are the holes of
the segment index): the time before the camera was installed, and the last stretch up to now while
the camera is online (its segment is being recorded and not yet stored)."""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from api.scope import can_manage_cameras, can_see_frames
from api.web.common import Ctx, WebError, camera_health_orgs, form_checked, form_day, render, web_ctx
from ingest.cameras import CameraError, CameraIdTaken, add_camera, remove_camera, set_streams, update_camera
from ingest.credentials import CredentialKeyError
from ingest.health import camera_health
from ingest.probe import probe_stream
from kernel.ids import is_camera_id
from storage.audit import audit
from storage.db import session_scope
from storage.models import CAMERA_ROLES, Camera, Organisation, Segment

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
STATES = ("online", "offline", "gaps", "ok", "unknown")
MANAGERS = ("operator", "admin")


@dataclass
class DayView:
    """One camera's day as the page shows it: stretches in 0-1000 units of the day, the real gaps,
    and the coverage of the time it should have recorded."""

    rec: list[dict]
    gaps: list[dict]
    pending: dict | None
    before: dict | None
    now: float | None
    expected_s: float
    recorded_s: float

    @property
    def coverage(self) -> float | None:
        return min(1.0, self.recorded_s / self.expected_s) if self.expected_s > 0 else None


def day_view(h: dict, a: datetime, b: datetime, now: datetime, installed: datetime,
             pending_s: float) -> DayView:
    """Split camera_health's holes over [a, b) into: before installation (not a gap), the stretch up to
    now of an online camera (at most ``pending_s``: the segment being recorded), and real gaps."""
    span = (b - a).total_seconds()
    horizon = min(b, now)
    start = max(a, installed)

    def x(t: datetime) -> float:
        return round(max(0.0, min(1.0, (t - a).total_seconds() / span)) * 1000, 2)

    online = h.get("state") == "online"
    gaps, pending = [], None
    for g in h.get("gaps", []):
        gs = datetime.fromisoformat(g["start"])
        ge = datetime.fromisoformat(g["end"]) if g.get("end") else horizon
        gs = max(gs, start)
        if ge <= gs:
            continue  # wholly before installation
        if online and ge >= horizon and horizon == now:
            cut = max(gs, now - timedelta(seconds=pending_s))
            pending = {"x": x(cut), "w": max(x(now) - x(cut), 0.5), "start": cut, "end": now}
            ge = cut
            if (ge - gs).total_seconds() < 1:
                continue
        gaps.append({"x": x(gs), "w": max(x(ge) - x(gs), 0.5), "reason": g.get("reason"), "start": gs, "end": ge,
                     "duration_s": (ge - gs).total_seconds()})
    holes = sorted(gaps + ([pending] if pending else []), key=lambda g: g["start"])
    rec, cursor = [], start
    for g in holes:
        if g["start"] > cursor:
            rec.append({"x": x(cursor), "w": x(g["start"]) - x(cursor)})
        cursor = max(cursor, g["end"])
    if horizon > cursor:
        rec.append({"x": x(cursor), "w": x(horizon) - x(cursor)})
    before = {"x": 0.0, "w": x(min(installed, b))} if installed > a else None
    expected = max(0.0, (horizon - start).total_seconds() - ((pending["end"] - pending["start"]).total_seconds()
                                                             if pending else 0.0))
    return DayView([r for r in rec if r["w"] > 0], gaps, pending, before,
                   x(now) if a <= now < b else None, expected, float(h.get("recorded_s") or 0.0))


def installed_at(registered: datetime, first_footage: datetime | None, startup_s: float) -> datetime:
    """From when a camera should have been recording: its registration, or its first footage if that is
    older (footage imported from before) or came within ``startup_s`` of it (connecting and writing the
    first segment is not a gap)."""
    if first_footage is None:
        return registered
    if first_footage <= registered + timedelta(seconds=startup_s):
        return first_footage
    return registered


def went_down(h: dict, status_at: datetime | None) -> datetime | None:
    """When an offline camera was last seen: its last packet, else the end of its last segment, else
    the last report about it."""
    seen = [datetime.fromisoformat(v) for v in (h.get("last_packet_at"), h.get("last_segment_end")) if v]
    return max(seen) if seen else status_at


def _day_start(ctx: Ctx, d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=ctx.t.tz).astimezone(timezone.utc)


def _matches(q: str, cam: Camera, org_name: str) -> bool:
    hay = " ".join([cam.id, cam.name, cam.org_id, org_name, *(cam.covers or [])]).casefold()
    return all(word in hay for word in q.casefold().split())


@router.get("/cameras")
def cameras_page(ctx: Ctx = Depends(web_ctx), day: str = "", org: str = "", role: str = "", state: str = "",
                 q: str = "", page: str = "1", done: str = "", cam: str = ""):
    """Every camera the person may watch: counts, offline alerts, filters, a page of compact rows."""
    t, s = ctx.t, ctx.rt.settings
    if role and role not in CAMERA_ROLES:
        raise WebError(400, "bad_request", f"role must be one of {', '.join(CAMERA_ROLES)}")
    if state and state not in STATES:
        raise WebError(400, "bad_request", f"state must be one of {', '.join(STATES)}")
    q = q.strip()[:100]
    if not page.isdigit() or len(page) > 6:
        raise WebError(400, "bad_request", "page must be a whole number from 1")
    now = datetime.now(timezone.utc)
    today = datetime.now(t.tz).date()
    d = form_day(day, "day") or today
    a = _day_start(ctx, d)
    b = a + timedelta(days=1)
    alert_after = timedelta(minutes=s.camera_offline_alert_minutes)
    rows, alerts = [], []
    with session_scope(ctx.rt.sessions) as db:
        orgs = camera_health_orgs(db, ctx.who)
        names = {o.id: o.name for o in orgs}
        cams = list(db.scalars(select(Camera).where(Camera.org_id.in_(list(names)), Camera.removed_at.is_(None))
                               .order_by(Camera.org_id, Camera.id)))
        first = dict(db.execute(select(Segment.camera_id, func.min(Segment.start_at))
                                .where(Segment.camera_id.in_([c.id for c in cams]), Segment.stream == "main")
                                .group_by(Segment.camera_id)).all())
        for c in cams:
            h = camera_health(db, c.id, a, b, offline_after_s=s.camera_offline_after_s, now=now)
            f = first.get(c.id)
            if isinstance(f, str):  # SQLite aggregates lose the column type
                f = datetime.fromisoformat(f)
            if f is not None and f.tzinfo is None:
                f = f.replace(tzinfo=timezone.utc)
            created = c.created_at if c.created_at.tzinfo else c.created_at.replace(tzinfo=timezone.utc)
            pending_s = (c.segment_seconds or s.segment_seconds) + s.camera_offline_after_s
            installed = installed_at(created, f, pending_s)
            view = day_view(h, a, b, now, installed, pending_s)
            row = {"cam": c, "org_name": names.get(c.org_id, c.org_id), "h": h, "v": view, "installed": installed}
            if h["state"] == "offline":
                status_at = _status_time(h, now)
                down = went_down(h, status_at)
                row["down"] = down
                if down is None or now - down > alert_after:
                    alerts.append(row)
            rows.append(row)
    counts = {"total": len(rows), "online": sum(r["h"]["state"] == "online" for r in rows),
              "offline": sum(r["h"]["state"] == "offline" for r in rows),
              "unknown": sum(r["h"]["state"] not in ("online", "offline") for r in rows),
              "gaps": sum(bool(r["v"].gaps) for r in rows)}
    shown = [r for r in rows if (not org or r["cam"].org_id == org) and (not role or r["cam"].role == role)
             and (not q or _matches(q, r["cam"], r["org_name"])) and _state_ok(state, r)]
    pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
    page_n = max(1, min(int(page), pages))
    alerts.sort(key=lambda r: r.get("down") or now)
    f = {"day": day, "org": org, "role": role, "state": state, "q": q}

    def link(**changes) -> str:
        return "/cameras?" + urlencode({k: v for k, v in {**f, **changes}.items() if v not in ("", None, 1)})

    manage = ctx.who.role in MANAGERS
    return render(ctx, "cameras.html", rows=shown[(page_n - 1) * PAGE_SIZE: page_n * PAGE_SIZE], total_shown=len(shown),
                  counts=counts, alerts=alerts, alert_minutes=s.camera_offline_alert_minutes, now=now,
                  orgs=orgs, roles=CAMERA_ROLES, states=STATES, f=f, page=page_n, pages=pages, link=link,
                  day=d.isoformat(), day_label=t.date(a), is_today=d == today, manage=manage,
                  can_manage=lambda org_id: can_manage_cameras(ctx.who, org_id), done=done, done_cam=cam[:64],
                  prev_day=(d - timedelta(days=1)).isoformat(), next_day=(d + timedelta(days=1)).isoformat())


def _status_time(h: dict, now: datetime) -> datetime | None:
    age = h.get("status_age_s")
    return now - timedelta(seconds=age) if age is not None else None


def _state_ok(state: str, r: dict) -> bool:
    st = r["h"]["state"]
    if not state:
        return True
    if state == "gaps":
        return bool(r["v"].gaps)
    if state == "ok":
        return st == "online" and not r["v"].gaps
    if state == "unknown":
        return st not in ("online", "offline")
    return st == state


# --- administration (operators of the camera's regions, admins) ----------------------------------------


def _manageable_orgs(db, ctx: Ctx) -> list[dict]:
    return [{"id": o.id, "name": o.name} for o in db.scalars(select(Organisation).order_by(Organisation.id))
            if can_manage_cameras(ctx.who, o.id)]


def _managed_camera(db, ctx: Ctx, camera_id: str) -> Camera:
    if ctx.who.role not in MANAGERS:
        raise WebError(403, "forbidden")
    cam = db.get(Camera, camera_id[:64])
    if cam is None or cam.removed_at is not None or not can_manage_cameras(ctx.who, cam.org_id):
        raise WebError(404, "not_found")
    return cam


def _covers(text: str) -> list[str]:
    return [c.strip() for c in text.replace("，", ",").split(",") if c.strip()]


def _form_error(e: Exception) -> str:
    """The page's words for what the registry refused (its English message as the fallback)."""
    msg = str(e)
    for needle, key in (("camera id must", "cam_err_id"), ("exists already", "cam_err_taken"),
                        ("never reused", "cam_err_taken"), ("camera name", "cam_err_name"),
                        ("segment length", "cam_err_segment"), ("cover", "cam_err_covers"),
                        ("covers", "cam_err_covers"), ("role must", "cam_err_role"),
                        ("unknown organisation", "cam_err_org"), ("both streams", "cam_err_streams"),
                        ("read the sub-stream", "cam_err_streams"), ("record_streams", "cam_err_streams"),
                        ("analyse_stream", "cam_err_streams"), ("sub-stream URL", "cam_err_sub_url")):
        if needle in msg:
            return key
    return "cam_invalid"


@router.get("/cameras/new")
def camera_new(ctx: Ctx = Depends(web_ctx)):
    if ctx.who.role not in MANAGERS:
        raise WebError(403, "forbidden")
    with session_scope(ctx.rt.sessions) as db:
        orgs = _manageable_orgs(db, ctx)
    return render(ctx, "camera_edit.html", cam=None, orgs=orgs, roles=CAMERA_ROLES, form={}, error=None)


@router.post("/cameras/new")
async def camera_create(ctx: Ctx = Depends(web_ctx)):
    if ctx.who.role not in MANAGERS:
        raise WebError(403, "forbidden")
    form = {k: str(v) for k, v in (await form_checked(ctx)).items() if k != "csrf_token"}
    camera_id, url = form.get("id", "").strip(), form.get("url", "").strip()
    seg = form.get("segment_seconds", "").strip()
    sub_url = form.get("sub_url", "").strip()

    def go():
        with session_scope(ctx.rt.sessions) as db:
            orgs = _manageable_orgs(db, ctx)
            error = None
            if form.get("org_id") not in {o["id"] for o in orgs}:
                error = "cam_err_org"
            elif not is_camera_id(camera_id):
                error = "cam_err_id"
            elif not url.lower().startswith(("rtsp://", "rtsps://")):
                error = "cam_err_url"
            elif seg and not seg.isdigit():
                error = "cam_err_segment"
            elif sub_url and not sub_url.lower().startswith(("rtsp://", "rtsps://")):
                error = "cam_err_sub_url"
            if error is None:
                try:
                    cam = add_camera(db, camera_id=camera_id, org_id=form["org_id"], name=form.get("name", "").strip()
                                     or camera_id, role=form.get("role", ""), url=url, covers=_covers(form.get("covers", "")),
                                     segment_seconds=int(seg) if seg else None,
                                     username=form.get("username", "").strip() or None,
                                     password=form.get("password") or None, box=ctx.rt.credentials,
                                     sub_url=sub_url or None, record_streams=form.get("record_streams") or "main",
                                     analyse_stream=form.get("analyse_stream") or "main")
                    db.flush()
                    audit(db, actor=ctx.who.actor, action="camera.add", outcome="ok", org_id=cam.org_id,
                          subject=f"camera:{cam.id}", request_id=ctx.request.state.request_id, detail={"view": "web"})
                    return None, orgs
                except (CameraError, CameraIdTaken) as e:
                    db.rollback()
                    error = _form_error(e)
                except CredentialKeyError:
                    db.rollback()
                    error = "cam_err_key"
            return error, orgs

    error, orgs = await run_in_threadpool(go)
    if error:
        form.pop("password", None)  # never sent back
        return render(ctx, "camera_edit.html", status=400, cam=None, orgs=orgs, roles=CAMERA_ROLES, form=form,
                      error=error)
    return RedirectResponse(f"/cameras/{camera_id}/edit?done=added", status_code=303)


@router.get("/cameras/{camera_id}/edit")
def camera_edit(camera_id: str, ctx: Ctx = Depends(web_ctx), done: str = "", error: str = ""):
    with session_scope(ctx.rt.sessions) as db:
        cam = _managed_camera(db, ctx, camera_id)
        org = db.get(Organisation, cam.org_id)
        return render(ctx, "camera_edit.html", cam=cam, org=org, roles=CAMERA_ROLES, form={}, done=done,
                      error=error or None, test=None, frames=can_see_frames(ctx.who, cam.org_id))


@router.post("/cameras/{camera_id}/edit")
async def camera_save(camera_id: str, ctx: Ctx = Depends(web_ctx)):
    form = await form_checked(ctx)

    def go():
        with session_scope(ctx.rt.sessions) as db:
            cam = _managed_camera(db, ctx, camera_id)
            streams = ("rtsp_sub_url", "record_streams", "analyse_stream")
            before = {"name": cam.name, "covers": list(cam.covers or []), **{k: getattr(cam, k) for k in streams}}
            sub_url = str(form.get("sub_url") or "").strip()
            if sub_url and not sub_url.lower().startswith(("rtsp://", "rtsps://")):
                return "cam_err_sub_url"
            try:
                update_camera(db, cam.id, name=str(form.get("name") or ""), covers=_covers(str(form.get("covers") or "")))
                if "record_streams" in form:  # the stream fields are on the form
                    set_streams(db, cam.id, sub_url=sub_url or None, record_streams=str(form.get("record_streams")),
                                analyse_stream=str(form.get("analyse_stream") or "main"))
            except CameraError as e:
                db.rollback()
                return _form_error(e)
            audit(db, actor=ctx.who.actor, action="camera.update", outcome="ok", org_id=cam.org_id,
                  subject=f"camera:{cam.id}", request_id=ctx.request.state.request_id,
                  detail={"before": before, "after": {"name": cam.name, "covers": cam.covers,
                                                      **{k: getattr(cam, k) for k in streams}}, "view": "web"})
            return None

    error = await run_in_threadpool(go)
    return RedirectResponse(f"/cameras/{camera_id}/edit?" + (f"error={error}" if error else "done=saved"),
                            status_code=303)


@router.post("/cameras/{camera_id}/test")
async def camera_test(camera_id: str, ctx: Ctx = Depends(web_ctx)):
    """Open the stream now (ingest/probe.py) and show the result with the picture it took (not stored)."""
    await form_checked(ctx)

    def go():
        with session_scope(ctx.rt.sessions) as db:
            cam = _managed_camera(db, ctx, camera_id)
            try:
                password = ctx.rt.credentials.open(cam.rtsp_password)
            except CredentialKeyError:
                return None, "cam_err_key"
            url, user, org_id = cam.rtsp_url, cam.rtsp_username, cam.org_id
        res = probe_stream(url, user, password, ctx.rt.settings.camera_test_timeout_s)
        with session_scope(ctx.rt.sessions) as db:
            audit(db, actor=ctx.who.actor, action="camera.test", outcome="ok" if res.ok else "failed", org_id=org_id,
                  subject=f"camera:{camera_id}", request_id=ctx.request.state.request_id,
                  detail={**res.view(), "view": "web"})
        return res, None

    res, error = await run_in_threadpool(go)
    with session_scope(ctx.rt.sessions) as db:
        cam = _managed_camera(db, ctx, camera_id)
        org = db.get(Organisation, cam.org_id)
        frame = ("data:image/jpeg;base64," + base64.b64encode(res.jpeg).decode()) if res and res.jpeg else None
        return render(ctx, "camera_edit.html", cam=cam, org=org, roles=CAMERA_ROLES, form={}, error=error, test=res,
                      test_frame=frame, frames=True)


@router.post("/cameras/{camera_id}/remove")
async def camera_remove(camera_id: str, ctx: Ctx = Depends(web_ctx)):
    form = await form_checked(ctx)
    if form.get("confirm") != "yes":
        return RedirectResponse(f"/cameras/{camera_id}/edit?error=cam_remove_need_confirm", status_code=303)

    def go():
        with session_scope(ctx.rt.sessions) as db:
            cam = _managed_camera(db, ctx, camera_id)
            remove_camera(db, cam.id)
            audit(db, actor=ctx.who.actor, action="camera.remove", outcome="ok", org_id=cam.org_id,
                  subject=f"camera:{cam.id}", request_id=ctx.request.state.request_id, detail={"view": "web"})
            return cam.id

    cid = await run_in_threadpool(go)
    return RedirectResponse("/cameras?" + urlencode({"done": "removed", "cam": cid}), status_code=303)
