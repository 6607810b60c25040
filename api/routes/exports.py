"""Evidence export: a zip with the clip, its manifest of hashes and a checksum file (storage/export.py)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.deps import principal, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.routes.cameras import clip_error, footage_store, time_range, visible_camera
from api.scope import can_see_org
from api.services import Services
from storage.audit import audit
from storage.clips import ClipError
from storage.db import session_scope
from storage.export import build_package, find_export
from storage.playable import TranscodeBusy

router = APIRouter(prefix="/v1", tags=["exports"], responses=errors(*AUTHENTICATED, 409))


class ExportIn(BaseModel):
    camera_id: str
    start: str = Field(..., description="ISO 8601 with zone")
    end: str = Field(..., description="ISO 8601 with zone")
    reason: str | None = Field(None, max_length=500)
    playable_copy: bool = Field(False, description="H.265 footage: add an H.264 copy (derived/clip.h264.mp4, "
                                "labelled derived in the manifest) for players without HEVC; the evidence files "
                                "and their hashes are unchanged")


@router.post("/exports", status_code=201)
async def create_export(body: ExportIn, request: Request, rt: Services = Depends(runtime),
                        who: Principal = Depends(principal)):
    """Build an evidence package for a camera and range; it is kept in the store and downloadable.
    The package's SHA-256 is in ``X-Dualcheck-Package-SHA256`` and in the export's audit record."""

    def build():
        with session_scope(rt.sessions) as db:
            cam = visible_camera(db, who, body.camera_id)
            a, b = time_range(body.start, body.end, rt.settings.clip_max_seconds)
            try:
                return build_package(db, footage_store(rt), rt.settings.bucket_footage, cam, a, b, actor=who.actor,
                                     reason=body.reason, request_id=request.state.request_id,
                                     workdir=rt.settings.data_dir if rt.settings.data_dir.exists() else None,
                                     tz=rt.settings.web_timezone,
                                     playable=rt.playable if body.playable_copy else None)
            except ClipError as e:
                raise clip_error(e) from None
            except TranscodeBusy:
                raise ApiError(503, "busy", "every transcode slot is busy: try again shortly, or export without "
                               "the playable copy", headers={"Retry-After": "5"}) from None

    r = await run_in_threadpool(build)

    return JSONResponse(
        {"export_id": r.export_id, "sha256": r.sha256, "bytes": r.size, "clip_sha256": r.clip_sha256,
         "download": f"/v1/exports/{r.export_id}", "manifest": r.manifest},
        status_code=201, headers={"X-Dualcheck-Package-SHA256": r.sha256})


@router.get("/exports/{export_id}")
def download_export(export_id: str, request: Request, rt: Services = Depends(runtime),
                    who: Principal = Depends(principal)):
    """Download a package (zip). Each download is an audit event."""
    with session_scope(rt.sessions) as db:
        rec = find_export(db, export_id)
        if rec is None or not can_see_org(who, rec.org_id):
            raise ApiError(404, "not_found", f"no export {export_id!r}")
        d = dict(rec.detail)
        audit(db, actor=who.actor, action="export.download", outcome="ok", org_id=rec.org_id,
              subject=f"export:{export_id}", request_id=request.state.request_id,
              detail={"camera_id": d.get("camera_id"), "start": d.get("start"), "end": d.get("end"),
                      "package_sha256": d.get("package_sha256")})
    body = footage_store(rt).stream(d["bucket"], d["key"])
    return StreamingResponse(body, media_type="application/zip", headers={
        "Content-Length": str(d["bytes"]), "X-Dualcheck-Package-SHA256": d["package_sha256"],
        "Content-Disposition": f'attachment; filename="evidence-{export_id}.zip"'})
