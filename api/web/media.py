"""The insured person's enrolled photo in the context of a flag (the one biometric image the flags API
of api/routes/flags.py does not serve; face crops and the face-pay capture are served there).

Same rules as those: the flag must be visible (api.scope.can_see_flag), the caller must get full
evidence (api.scope.evidence_level: inspectors of the region and admins, never institution users),
the photo must be one the flag's evidence lists, and every view is an audit event. Never cached.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api.deps import principal, runtime
from api.errors import ApiError
from api.keys import Principal
from api.scope import can_see_flag, evidence_level
from dualcheck.runtime import Runtime
from storage.audit import audit
from storage.db import session_scope
from storage.models import FaceTemplate, Flag

router = APIRouter(prefix="/v1", tags=["flags"])


def _mime(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


@router.get("/flags/{flag_id}/photos/{template_id}")
def enrolled_photo(flag_id: str, template_id: str, request: Request, rt: Runtime = Depends(runtime),
                   who: Principal = Depends(principal)):
    """An enrolled photo (参保人照片) of the insured person of the flag's settlement (biometric; audited)."""
    with session_scope(rt.sessions) as db:
        flag = db.get(Flag, flag_id[:64])
        if flag is None or not can_see_flag(who, flag.org_id, flag.inquiry_state):
            raise ApiError(404, "not_found", f"no flag {flag_id[:64]!r}")
        listed = {p.get("template_id") for p in (flag.evidence or {}).get("insured_photos") or []}
        tpl = db.get(FaceTemplate, template_id[:64])
        if tpl is None or template_id not in listed or evidence_level(who) != "full":
            raise ApiError(404, "not_found", "no such enrolled photo in this flag's evidence")
        audit(db, actor=who.actor, action="evidence.photo.view", outcome="ok", org_id=flag.org_id,
              subject=f"face_template:{tpl.id}", request_id=request.state.request_id, detail={"flag_id": flag.id})
        key = tpl.photo_key
    try:
        data = rt.store.get_bytes(rt.settings.bucket_biometrics, key)
    except Exception:
        raise ApiError(410, "gone", "the enrolled photo is no longer stored") from None
    return Response(data, media_type=_mime(data), headers={"Cache-Control": "private, no-store"})
