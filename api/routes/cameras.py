"""Cameras, their health, and replay: one MP4 over a time range (with Range support) and HLS.

Times are ISO 8601 with a zone (``2025-03-01T10:00:00+08:00`` - escape ``+`` as ``%2B`` in a query
string; an unescaped ``+`` that arrives as a space is accepted too). Every view of footage (clip,
HLS playlist, HLS media segment) and every export is an audit event naming the caller, the camera
and the time range.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Literal

import av
import cv2
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from minio.error import S3Error
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import principal, require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, ROW_ID_MAX, errors
from api.scope import can_manage_cameras, can_see_camera_health, can_see_frames, can_see_org
from api.services import Services
from ingest.cameras import (
    CameraError,
    CameraIdTaken,
    active_cameras,
    add_camera,
    public_view,
    remove_camera,
    set_streams,
    set_zones,
    update_camera,
)
from ingest.credentials import CredentialKeyError
from ingest.health import camera_health
from ingest.probe import probe_stream
from kernel.timefmt import TimeInvalid, iso_z, parse_instant
from storage.audit import audit
from storage.clips import ClipError, index_gaps, plan_clip, segment_layout, segments_in, store_reader
from storage.db import session_scope
from storage.models import Camera, Segment
from storage.playable import PlayableCopies, TranscodeBusy, file_chunks, is_hevc, split_init

router = APIRouter(prefix="/v1", tags=["cameras"], responses=errors(*AUTHENTICATED, 409, 416, 503))

# Segment ids are the index's 64-bit keys: a larger number in a path is refused (422), not overflowed.
SEGMENT_ID = Path(ge=1, le=ROW_ID_MAX, description="A segment id from the playlist.")

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


# --- shared helpers (also used by holds and exports) --------------------------------------------


def parse_time(value: str | None, name: str) -> datetime:
    if value is None or not value.strip():
        raise ApiError(400, "missing_time", f"{name} is required (ISO 8601 with a zone, e.g. 2025-03-01T10:00:00+08:00)")
    try:
        # an unescaped '+' in a query string arrives as a space
        return parse_instant(value.strip().replace(" ", "+"), name)
    except TimeInvalid as e:
        raise ApiError(400, "invalid_time", e.reason) from None


def time_range(start: str | None, end: str | None, max_seconds: int | None) -> tuple[datetime, datetime]:
    a, b = parse_time(start, "start"), parse_time(end, "end")
    if b <= a:
        raise ApiError(400, "invalid_range", "end must be after start")
    if max_seconds is not None and (b - a).total_seconds() > max_seconds:
        raise ApiError(400, "range_too_long", f"the range is {(b - a).total_seconds():.0f} s; at most "
                       f"{max_seconds} s may be asked for at once")
    return a, b


def visible_camera(db, who: Principal, camera_id: str, *, health_only: bool = False) -> Camera:
    cam = db.get(Camera, camera_id)
    allowed = can_see_camera_health if health_only else can_see_org
    if cam is None or not allowed(who, cam.org_id):
        raise ApiError(404, "not_found", f"no camera {camera_id!r}")
    return cam


def clip_error(e: ClipError) -> ApiError:
    if e.code == "no_footage":
        return ApiError(404, "no_footage", e.reason, gaps=e.gaps)
    return ApiError(409 if e.code == "evidence_mismatch" else 500, e.code, e.reason)


# --- registry ------------------------------------------------------------------------------------


class CameraIn(BaseModel):
    id: str = Field(..., description="Camera id: 1-64 letters, digits, '.', '_' or '-'.")
    org_id: str
    name: str = Field(..., max_length=200)
    role: str
    url: str = Field(..., max_length=500, description="rtsp://[user:password@]host[:port]/path")
    covers: list[str] = Field(default_factory=list)
    segment_seconds: int | None = None
    username: str | None = None
    password: str | None = None
    sub_url: str | None = Field(None, max_length=500, description="The camera's sub-stream (lower resolution), "
                                "reached with the same credentials: rtsp://host[:port]/path")
    record_streams: str = Field("main", description="main: record the main stream; both: the sub-stream too "
                                "(segments of stream 'sub')")
    analyse_stream: str = Field("main", description="main or sub: the recording the correlation checks read "
                                "(sub needs record_streams both; replay and export stay on main)")


@router.get("/cameras")
def list_cameras(org_id: str | None = None, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Active cameras the caller may see (never their credentials)."""
    with session_scope(rt.sessions) as db:
        cams = active_cameras(db, [org_id] if org_id else None)
        return {"cameras": [public_view(c) for c in cams if can_see_org(who, c.org_id)]}


@router.post("/cameras", status_code=201)
def create_camera(body: CameraIn, request: Request, rt: Services = Depends(runtime),
                  who: Principal = Depends(require("admin", "operator"))):
    """Register a camera: admins, and operators for the organisations of their regions."""
    if not can_manage_cameras(who, body.org_id):
        raise ApiError(403, "forbidden", f"a {who.role} may not add cameras of organisation {body.org_id!r}")
    with session_scope(rt.sessions) as db:
        try:
            cam = add_camera(db, camera_id=body.id, org_id=body.org_id, name=body.name, role=body.role,
                             url=body.url, covers=body.covers, segment_seconds=body.segment_seconds,
                             username=body.username, password=body.password, box=rt.credentials,
                             sub_url=body.sub_url, record_streams=body.record_streams,
                             analyse_stream=body.analyse_stream)
        except CameraError as e:
            raise ApiError(409 if isinstance(e, CameraIdTaken) else 400, "invalid_camera", str(e)) from None
        except CredentialKeyError as e:  # the service is set up without the region's sealing key
            raise ApiError(503, "credentials_key_missing", str(e)) from None
        db.flush()
        audit(db, actor=who.actor, action="camera.add", outcome="ok", org_id=cam.org_id, subject=f"camera:{cam.id}",
              request_id=request.state.request_id)
        return public_view(cam)


@router.get("/cameras/{camera_id}")
def get_camera(camera_id: str, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id)
        if cam.removed_at is not None:
            raise ApiError(404, "not_found", f"camera {camera_id!r} was removed")
        return public_view(cam)


@router.delete("/cameras/{camera_id}")
def delete_camera(camera_id: str, request: Request, rt: Services = Depends(runtime),
                  who: Principal = Depends(require("admin", "operator"))):
    """Stop recording the camera. Its footage stays until retention removes it."""
    with session_scope(rt.sessions) as db:
        editable_camera(db, who, camera_id)
        try:
            cam = remove_camera(db, camera_id)
        except CameraError as e:
            raise ApiError(404, "not_found", str(e)) from None
        audit(db, actor=who.actor, action="camera.remove", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{cam.id}", request_id=request.state.request_id)
        return public_view(cam)


@router.get("/cameras/{camera_id}/health")
def camera_health_route(camera_id: str, start: str | None = None, end: str | None = None,
                        rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Recording health over [start, end) (default: the last hour): recorded time and holes."""
    now = datetime.now(timezone.utc)
    a = parse_time(start, "start") if start else now - timedelta(hours=1)
    b = parse_time(end, "end") if end else now
    if b <= a:
        raise ApiError(400, "invalid_range", "end must be after start")
    with session_scope(rt.sessions) as db:
        visible_camera(db, who, camera_id, health_only=True)
        return camera_health(db, camera_id, a, b)


# --- what a camera covers, its zones, its latest frame ------------------------------------------

ZONE_EDITORS = ("operator", "admin")
STILL_SEGMENTS_TRIED = 3  # the newest segment may be corrupt or half-written: fall back to older ones


def editable_camera(db, who: Principal, camera_id: str) -> Camera:
    """A camera the caller may configure: an admin, or an operator of the camera's regions. Others who
    may see the camera get 403; a camera out of sight is 404 (its existence is not revealed)."""
    cam = visible_camera(db, who, camera_id, health_only=True)
    if cam.removed_at is not None:
        raise ApiError(404, "not_found", f"camera {camera_id!r} was removed")
    if who.role not in ZONE_EDITORS or not can_manage_cameras(who, cam.org_id):
        raise ApiError(403, "forbidden", f"a {who.role} may not change cameras (operators and admins may)")
    return cam


@router.post("/cameras/{camera_id}/test")
def test_stream(camera_id: str, request: Request, rt: Services = Depends(runtime),
                who: Principal = Depends(principal)):
    """Open the camera's stream now, as the recorder does, and report whether a picture came, its codec,
    size and how long it took (``camera_test_timeout_s`` at most). Nothing is recorded. ``ok`` false
    with ``error`` is an answer, not a failure of the call."""
    with session_scope(rt.sessions) as db:
        cam = editable_camera(db, who, camera_id)
        try:
            password = rt.credentials.open(cam.rtsp_password)
        except CredentialKeyError as e:
            raise ApiError(503, "credentials_key_missing", str(e)) from None
        url, user, org_id = cam.rtsp_url, cam.rtsp_username, cam.org_id
    res = probe_stream(url, user, password, rt.settings.camera_test_timeout_s)
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="camera.test", outcome="ok" if res.ok else "failed", org_id=org_id,
              subject=f"camera:{camera_id}", request_id=request.state.request_id, detail=res.view())
    return {"camera_id": camera_id, **res.view()}


class CameraPatch(BaseModel):
    name: str | None = Field(None, max_length=200)
    covers: list[str] | None = Field(None, description="Replaces the counters / terminal ids the camera sees.")
    sub_url: str | None = Field(None, max_length=500, description="The sub-stream's URL; null removes it.")
    record_streams: str | None = Field(None, description="main or both")
    analyse_stream: str | None = Field(None, description="main or sub")


@router.patch("/cameras/{camera_id}")
def patch_camera(camera_id: str, body: CameraPatch, request: Request, rt: Services = Depends(runtime),
                 who: Principal = Depends(principal)):
    """Rename a camera, replace its ``covers``, or change its sub-stream and which streams are recorded
    and analysed, without removing it (recording goes on; the recorder restarts it for a stream change)."""
    with session_scope(rt.sessions) as db:
        cam = editable_camera(db, who, camera_id)
        streams = ("rtsp_sub_url", "record_streams", "analyse_stream")
        before = {"name": cam.name, "covers": list(cam.covers or []), **{k: getattr(cam, k) for k in streams}}
        try:
            update_camera(db, cam.id, name=body.name, covers=body.covers)
            if {"sub_url", "record_streams", "analyse_stream"} & body.model_fields_set:
                kw = {"sub_url": body.sub_url} if "sub_url" in body.model_fields_set else {}
                set_streams(db, cam.id, record_streams=body.record_streams, analyse_stream=body.analyse_stream, **kw)
        except CameraError as e:
            raise ApiError(400, "invalid_camera", str(e)) from None
        audit(db, actor=who.actor, action="camera.update", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{cam.id}", request_id=request.state.request_id,
              detail={"before": before, "after": {"name": cam.name, "covers": cam.covers,
                                                  **{k: getattr(cam, k) for k in streams}}})
        return public_view(cam)


@router.get("/cameras/{camera_id}/zones")
def get_zones(camera_id: str, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """The camera's zones: customer side, staff side, areas to ignore (polygons in frame fractions)."""
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id, health_only=True)
        if cam.removed_at is not None:
            raise ApiError(404, "not_found", f"camera {camera_id!r} was removed")
        return {"camera_id": cam.id, "zones": cam.zones or []}


@router.put("/cameras/{camera_id}/zones")
def put_zones(camera_id: str, request: Request, body: dict = Body(..., examples=[{"zones": [
        {"kind": "customer", "label": "counter", "points": [[0.4, 0.3], [1, 0.3], [1, 0.9], [0.4, 0.9]]}]}]),
              rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """Replace all the camera's zones (``{"zones": []}`` removes them). Checks made after this use them;
    settlements checked before keep their outcome until re-checked."""
    zones = body.get("zones") if isinstance(body, dict) else None
    if zones is None:
        raise ApiError(400, "invalid_zones", 'the body must be {"zones": [...]}')
    with session_scope(rt.sessions) as db:
        cam = editable_camera(db, who, camera_id)
        before = len(cam.zones or [])
        try:
            set_zones(db, cam.id, zones)
        except CameraError as e:
            raise ApiError(400, "invalid_zones", str(e)) from None
        audit(db, actor=who.actor, action="camera.zones", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{cam.id}", request_id=request.state.request_id,
              detail={"before": before, "zones": cam.zones})
        return {"camera_id": cam.id, "zones": cam.zones}


def first_keyframe_jpeg(data: bytes, quality: int = 85) -> bytes | None:
    """The first decodable keyframe of an fMP4 segment as JPEG; None if it has none."""
    try:
        with av.open(io.BytesIO(data)) as c:
            st = c.streams.video[0]
            st.codec_context.skip_frame = "NONKEY"  # only keyframes are decoded: cheap, and a whole picture
            for fr in c.decode(st):
                ok, jpg = cv2.imencode(".jpg", fr.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, quality])
                return jpg.tobytes() if ok else None
    except (av.error.FFmpegError, IndexError):
        return None
    return None


@router.get("/cameras/{camera_id}/still.jpg")
def still(camera_id: str, request: Request, rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """The camera's latest recorded frame (first keyframe of its newest segment), to draw zones on.
    It can show faces: admins, inspectors and operators of the camera's regions only; every view is
    audited; never cached."""
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id, health_only=True)
        if not can_see_frames(who, cam.org_id):
            raise ApiError(403, "forbidden", "an institution sees its cameras' health, not their pictures")
        segs = list(db.scalars(select(Segment).where(Segment.camera_id == cam.id, Segment.stream == "main")
                               .order_by(Segment.start_at.desc()).limit(STILL_SEGMENTS_TRIED)))
        org_id = cam.org_id
    if not segs:
        raise ApiError(404, "no_footage", f"camera {camera_id} has no recorded footage yet: start recording it "
                       "(dualcheck record) and come back after the first segment is uploaded")
    jpg, seg = None, None
    for seg in segs:
        try:
            data = footage_store(rt).get_bytes(rt.settings.bucket_footage, seg.object_key)
        except S3Error:
            continue  # removed by retention between the query and now: try an older one
        jpg = first_keyframe_jpeg(data)
        if jpg is not None:
            break
    if jpg is None:
        raise ApiError(404, "no_frame", f"none of the newest {len(segs)} segments of camera {camera_id} "
                       "has a decodable keyframe")
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="camera.still.view", outcome="ok", org_id=org_id,
              subject=f"camera:{camera_id}", request_id=request.state.request_id,
              detail={"camera_id": camera_id, "segment_id": seg.id, "at": iso_z(seg.start_at)})
    return Response(jpg, media_type="image/jpeg",
                    headers={"Cache-Control": "private, no-store", "X-Dualcheck-Frame-At": iso_z(seg.start_at)})


# --- replay: one MP4 -------------------------------------------------------------------------------


def _plan(rt: Services, who: Principal, camera_id: str, start: str | None, end: str | None):
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id)
        a, b = time_range(start, end, rt.settings.clip_max_seconds)
        try:
            return cam, plan_clip(db, footage_store(rt), rt.settings.bucket_footage, cam.id, cam.org_id, a, b)
        except ClipError as e:
            raise clip_error(e) from None


def footage_store(rt: Services):
    if not getattr(rt, "_footage_bucket_ok", False):
        rt.store.ensure_bucket(rt.settings.bucket_footage)
        rt._footage_bucket_ok = True
    return rt.store


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single-range header, None for the whole; 416 when unsatisfiable."""
    if not header:
        return None
    m = _RANGE_RE.match(header.strip().replace(" ", ""))
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # not a single byte range we serve: RFC 9110 lets us send the whole
    if m.group(1) == "":
        n = int(m.group(2))
        if n == 0:
            raise ApiError(416, "range_not_satisfiable", f"the clip has {size} bytes")
        return max(size - n, 0), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ApiError(416, "range_not_satisfiable", f"the clip has {size} bytes")
    return first, min(last, size - 1)


@router.get("/cameras/{camera_id}/clip")
def clip(camera_id: str, request: Request, start: str | None = Query(None, description="ISO 8601 with zone"),
         end: str | None = Query(None, description="ISO 8601 with zone"),
         hevc: Literal["0", "1"] | None = Query(None, description="0: this client cannot decode H.265 (HEVC), e.g. "
                                                "Debian's Chromium (MediaSource.isTypeSupported('video/mp4; "
                                                "codecs=\"hvc1.1.6.L93.B0\"') is false): an H.265 clip is then sent "
                                                "as an H.264 copy transcoded on demand (cached)"),
         rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """One playable MP4 of the camera over [start, end): remuxed from the segments (no transcoding),
    from the keyframe at or before ``start``, streamed, with HTTP Range support.

    Headers: ``X-Dualcheck-Clip-Start``/``-End`` (wall time of t=0 and of the end),
    ``X-Dualcheck-Gaps`` (JSON list of holes in the range; a gap is a jump of the clip's clock, the
    player holds the last frame). No footage at all in the range: 404 with the gaps.
    With ``hevc=0`` and H.265 footage: an H.264 copy (``X-Dualcheck-Derived: h264``, not the
    evidence bytes; exports keep the originals); 503 ``busy`` while every transcode slot is taken."""
    cam, plan = _plan(rt, who, camera_id, start, end)
    if hevc == "0" and is_hevc(plan.parts[0].data or b""):
        return _playable_copy(rt, who, request, cam, plan)
    size = plan.size
    rng = _byte_range(request.headers.get("range"), size)
    first, last = rng if rng else (0, size - 1)
    etag = hashlib.sha256(json.dumps([s.sha256 for s in plan.segments] + [iso_z(plan.clip_start), iso_z(plan.clip_end)])
                          .encode()).hexdigest()[:32]
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="clip.view", outcome="ok", org_id=cam.org_id, subject=f"camera:{cam.id}",
              request_id=request.state.request_id,
              detail={"camera_id": cam.id, "start": iso_z(plan.requested_start), "end": iso_z(plan.requested_end),
                      "clip_start": iso_z(plan.clip_start), "clip_end": iso_z(plan.clip_end),
                      "bytes": [first, last] if rng else None, "gaps": len(plan.gaps)})
    headers = {
        "Accept-Ranges": "bytes", "Content-Length": str(last - first + 1), "ETag": f'"{etag}"',
        "Cache-Control": "private, no-store", "X-Dualcheck-Clip-Start": iso_z(plan.clip_start),
        "X-Dualcheck-Clip-End": iso_z(plan.clip_end), "X-Dualcheck-Gaps": json.dumps(plan.gaps, separators=(",", ":")),
        "Content-Disposition": f'inline; filename="{cam.id}_{plan.clip_start:%Y%m%dT%H%M%SZ}.mp4"',
    }
    if rng:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    body = plan.iter_bytes(store_reader(rt.store, rt.settings.bucket_footage), first, last)
    return StreamingResponse(body, status_code=206 if rng else 200, media_type="video/mp4", headers=headers)


def _playable_copy(rt: Services, who: Principal, request: Request, cam, plan):
    key = PlayableCopies.key([s.sha256 for s in plan.segments] + [iso_z(plan.clip_start), iso_z(plan.clip_end)])
    try:
        path, making = rt.playable.open(key, plan.iter_bytes(store_reader(rt.store, rt.settings.bucket_footage)))
    except TranscodeBusy:
        raise ApiError(503, "busy", "every transcode slot is busy: try again shortly",
                       headers={"Retry-After": "5"}) from None
    base = {"Cache-Control": "private, no-store", "X-Dualcheck-Clip-Start": iso_z(plan.clip_start),
            "X-Dualcheck-Clip-End": iso_z(plan.clip_end), "X-Dualcheck-Derived": "h264",
            "X-Dualcheck-Gaps": json.dumps(plan.gaps, separators=(",", ":")),
            "Content-Disposition": f'inline; filename="{cam.id}_{plan.clip_start:%Y%m%dT%H%M%SZ}.h264.mp4"'}
    if making is not None:  # the first request: sent as it is made (no length yet, no ranges)
        with session_scope(rt.sessions) as db:
            audit(db, actor=who.actor, action="clip.view", outcome="ok", org_id=cam.org_id,
                  subject=f"camera:{cam.id}", request_id=request.state.request_id,
                  detail={"camera_id": cam.id, "start": iso_z(plan.requested_start),
                          "end": iso_z(plan.requested_end), "clip_start": iso_z(plan.clip_start),
                          "clip_end": iso_z(plan.clip_end), "derived": "h264", "bytes": None,
                          "gaps": len(plan.gaps)})
        return StreamingResponse(making, status_code=200, media_type="video/mp4", headers=base)
    size = path.stat().st_size
    rng = _byte_range(request.headers.get("range"), size)
    first, last = rng if rng else (0, size - 1)
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="clip.view", outcome="ok", org_id=cam.org_id, subject=f"camera:{cam.id}",
              request_id=request.state.request_id,
              detail={"camera_id": cam.id, "start": iso_z(plan.requested_start), "end": iso_z(plan.requested_end),
                      "clip_start": iso_z(plan.clip_start), "clip_end": iso_z(plan.clip_end), "derived": "h264",
                      "bytes": [first, last] if rng else None, "gaps": len(plan.gaps)})
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1), "ETag": f'"h264-{key[:32]}"',
               **base}
    if rng:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"

    def body():
        with open(path, "rb") as f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk

    return StreamingResponse(body(), status_code=206 if rng else 200, media_type="video/mp4", headers=headers)


@router.get("/cameras/{camera_id}/clip.json")
def clip_info(camera_id: str, start: str | None = None, end: str | None = None, rt: Services = Depends(runtime),
              who: Principal = Depends(principal)):
    """What ``/clip`` would send for the same range: clip start/end, bytes, segments and gaps."""
    _, plan = _plan(rt, who, camera_id, start, end)
    return plan.describe()


# --- replay: HLS -------------------------------------------------------------------------------------


HEVC_QUERY = Query(None, description="0: this client cannot decode H.265 (HEVC): the media segments of "
                   "H.265 footage are then H.264 copies transcoded on demand, per segment (cached)")


@router.get("/cameras/{camera_id}/hls.m3u8")
def hls_playlist(camera_id: str, request: Request, start: str | None = None, end: str | None = None,
                 hevc: Literal["0", "1"] | None = HEVC_QUERY,
                 rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    """A VOD HLS playlist over the camera's segments in [start, end) for in-browser seeking.

    Each recorded segment is one HLS media segment (fMP4): its own init (``EXT-X-MAP``: the segment's
    ftyp+moov) and its fragments; each starts its timestamps at 0, so every segment follows an
    ``EXT-X-DISCONTINUITY`` and carries ``EXT-X-PROGRAM-DATE-TIME`` (wall time). Gaps show as jumps of
    the program date-time. With ``hevc=0`` and H.265 footage the init and media URIs ask for H.264
    copies (storage/playable.py)."""
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id)
        a, b = time_range(start, end, rt.settings.hls_max_seconds)
        segs = segments_in(db, cam.id, a, b)
        if not segs:

            raise ApiError(404, "no_footage", f"no footage of camera {cam.id} between {iso_z(a)} and {iso_z(b)}",
                           gaps=index_gaps(db, cam.id, a, b, segs))
        audit(db, actor=who.actor, action="hls.view", outcome="ok", org_id=cam.org_id, subject=f"camera:{cam.id}",
              request_id=request.state.request_id,
              detail={"camera_id": cam.id, "start": iso_z(a), "end": iso_z(b), "segments": len(segs)})
    target = max(math.ceil(s.duration_s) for s in segs)
    derived = ""
    if hevc == "0" and is_hevc(segment_layout(footage_store(rt), rt.settings.bucket_footage, segs[0])[0].data):
        derived = "?hevc=0"
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-PLAYLIST-TYPE:VOD",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-DISCONTINUITY-SEQUENCE:0"]
    offset = (a - segs[0].start_at).total_seconds()
    if offset > 0:
        lines.append(f"#EXT-X-START:TIME-OFFSET={offset:.3f},PRECISE=YES")
    for i, s in enumerate(segs):
        if i:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{s.start_at.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}")
        lines.append(f'#EXT-X-MAP:URI="hls/{s.id}/init.mp4{derived}"')
        lines.append(f"#EXTINF:{s.duration_s:.3f},")
        lines.append(f"hls/{s.id}/media.m4s{derived}")
    lines.append("#EXT-X-ENDLIST")
    return Response("\n".join(lines) + "\n", media_type="application/vnd.apple.mpegurl",
                    headers={"Cache-Control": "private, no-store"})


def _hls_segment(rt: Services, who: Principal, camera_id: str, segment_id: int) -> tuple[Camera, Segment]:
    with session_scope(rt.sessions) as db:
        cam = visible_camera(db, who, camera_id)
        seg = db.get(Segment, segment_id)
        if seg is None or seg.camera_id != cam.id or seg.stream != "main":  # replay is of the main stream
            raise ApiError(404, "not_found", f"no segment {segment_id} of camera {cam.id}")
        return cam, seg


def _hls_copy(rt: Services, seg: Segment) -> tuple[bytes, Iterator[bytes]]:
    """The H.264 copy of an H.265 segment: its init and its fragments (as they are made, or cached)."""
    key = PlayableCopies.key(["hls", seg.sha256])
    try:
        path, making = rt.playable.open(key, footage_store(rt).stream(rt.settings.bucket_footage, seg.object_key))
    except TranscodeBusy:
        raise ApiError(503, "busy", "every transcode slot is busy: try again shortly",
                       headers={"Retry-After": "5"}) from None
    try:
        return split_init(making if making is not None else file_chunks(path))
    except (ValueError, RuntimeError) as e:  # the transcode failed: the next request tries again
        raise ApiError(502, "transcode_failed", f"the H.264 copy of segment {seg.id} could not be made: {e}") from None


def _hevc_segment(rt: Services, seg: Segment, hevc: str | None):
    """(init, fragments end) of the segment as stored, and whether the client gets an H.264 copy."""
    init, frag_end = segment_layout(footage_store(rt), rt.settings.bucket_footage, seg)
    return init, frag_end, hevc == "0" and is_hevc(init.data)


@router.get("/cameras/{camera_id}/hls/{segment_id}/init.mp4")
def hls_init(camera_id: str, segment_id: int = SEGMENT_ID, hevc: Literal["0", "1"] | None = HEVC_QUERY,
             rt: Services = Depends(runtime), who: Principal = Depends(principal)):
    _, seg = _hls_segment(rt, who, camera_id, segment_id)
    init, _, derive = _hevc_segment(rt, seg, hevc)
    if derive:
        data, rest = _hls_copy(rt, seg)
        rest.close()  # the transcode goes on for the media request
        return Response(data, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600",
                                                               "X-Dualcheck-Derived": "h264"})
    return Response(init.data, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/cameras/{camera_id}/hls/{segment_id}/media.m4s")
def hls_media(camera_id: str, request: Request, segment_id: int = SEGMENT_ID,
              hevc: Literal["0", "1"] | None = HEVC_QUERY, rt: Services = Depends(runtime),
              who: Principal = Depends(principal)):
    cam, seg = _hls_segment(rt, who, camera_id, segment_id)
    init, frag_end, derive = _hevc_segment(rt, seg, hevc)
    if derive:
        with session_scope(rt.sessions) as db:
            audit(db, actor=who.actor, action="hls.segment", outcome="ok", org_id=cam.org_id,
                  subject=f"camera:{cam.id}", request_id=request.state.request_id,
                  detail={"camera_id": cam.id, "segment_id": seg.id, "start": iso_z(seg.start_at),
                          "end": iso_z(seg.end_at), "derived": "h264"})
        _, rest = _hls_copy(rt, seg)
        return StreamingResponse(rest, media_type="video/iso.segment",
                                 headers={"Cache-Control": "private, max-age=3600", "X-Dualcheck-Derived": "h264"})
    with session_scope(rt.sessions) as db:
        audit(db, actor=who.actor, action="hls.segment", outcome="ok", org_id=cam.org_id,
              subject=f"camera:{cam.id}", request_id=request.state.request_id,
              detail={"camera_id": cam.id, "segment_id": seg.id, "start": iso_z(seg.start_at), "end": iso_z(seg.end_at)})
    body = rt.store.stream(rt.settings.bucket_footage, seg.object_key, offset=init.length,
                           length=frag_end - init.length)
    return StreamingResponse(body, media_type="video/iso.segment",
                             headers={"Content-Length": str(frag_end - init.length),
                                      "Cache-Control": "private, max-age=3600"})


__all__ = ["router", "parse_time", "time_range", "visible_camera", "clip_error", "footage_store", "editable_camera"]
