"""Face verification for face-pay terminals."""
from __future__ import annotations

import time

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from api.deps import require, runtime
from api.errors import ApiError
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.services import Services
from api.strictbody import single_fields
from api.uploads import read_upload
from facepay.attestation import ATTESTATION_FIELDS, LIVENESS_FIELDS, CaptureRefused, Claims
from facepay.capture_checks import recorded_view
from facepay.verification import Caller
from kernel import metrics
from kernel.admission import Overloaded
from kernel.ids import InvalidInsuredId, is_settlement_ref
from storage.audit import audit
from storage.db import session_scope
from storage.models import Verification
from vision.image import ImageRejected
from vision.workers import WorkerLost

router = APIRouter(prefix="/v1", tags=["verification"], responses=errors(*AUTHENTICATED, 415, 503))
_TERMINAL_FIELDS = LIVENESS_FIELDS + ATTESTATION_FIELDS  # what the terminal says about its capture

_IMAGE_STATUS = {"too_large": 413, "too_many_pixels": 413, "too_much_memory": 413, "unsupported_format": 415,
                 "busy": 503}


@router.post("/verify", dependencies=[Depends(single_fields("insured_id", "image", "settlement_ref",
                                                             *_TERMINAL_FIELDS))],
             responses=errors(409))
async def verify(
    request: Request,
    insured_id: str = Form(..., description="The insured person's id."),
    image: UploadFile = File(..., description="The live capture, JPEG or PNG."),
    settlement_ref: str | None = Form(None, description="The settlement this check belongs to."),
    liveness_method: str | None = Form(None, description="The terminal's liveness check: structured_light, "
                                       "infrared or binocular."),
    liveness_passed: str | None = Form(None, description="Its verdict: true or false."),
    liveness_score: str | None = Form(None, description="Its score, 0 to 1 (optional)."),
    attestation_key_id: str | None = Form(None, description="The terminal's registered device key that signed."),
    attestation_signed_at: str | None = Form(None, description="When it signed, ISO 8601 with a zone."),
    attestation_signature: str | None = Form(None, description="Base64 Ed25519 signature (docs/verification.md)."),
    capture_sha256: str | None = Form(None, description="SHA-256 of the image, hex, as signed."),
    rt: Services = Depends(runtime),
    who: Principal = Depends(require("terminal")),
):
    """Is the person in front of the terminal the insured person?

    `decision` is `match`, `mismatch`, `uncertain`, `no_face`, `multiple_faces`, `low_quality`,
    `not_enrolled`, `liveness_failed` (the terminal's own liveness check failed) or
    `liveness_unverified` (attestation required, none valid); `score` is the best cosine similarity
    over the person's templates. `uncertain`: the score lies between `threshold_lower` and `threshold`
    of the face's size `band` (terminal, counter, far): take another capture or fall back to another
    payment. Every call that gets a decision is recorded with its capture; refused calls (4xx) store no
    capture. A bad attestation (403 `signature_*`, `device_key_*`, `signed_other_capture`) and a
    replayed capture (409 `replayed_capture`) are recorded as refused attempts.
    """
    if settlement_ref is not None and not is_settlement_ref(settlement_ref):
        raise ApiError(400, "invalid_settlement_ref", "settlement_ref must be 1-100 characters: letters, digits, "
                       "'.', '_', ':', '/' or '-'")
    data = await read_upload(image, rt.settings.max_upload_bytes)
    caller = Caller(org_id=who.org_id, terminal_id=who.terminal_id, actor=who.actor,
                    request_id=request.state.request_id)
    claims = Claims(liveness_method, liveness_passed, liveness_score, attestation_key_id, attestation_signed_at,
                    attestation_signature, capture_sha256)
    t0 = time.perf_counter()
    try:
        result = await run_in_threadpool(rt.verifier.verify, caller, insured_id, data, settlement_ref,
                                         admission=getattr(request.state, "admission", None), claims=claims)
    except Overloaded as e:  # waited past the latency budget: dropped, nothing stored (kernel/admission.py)
        raise ApiError(503, e.code, e.reason, headers={"Retry-After": str(e.retry_after_s)},
                       retry_after_s=e.retry_after_s) from None
    except CaptureRefused as e:  # recorded as a refused attempt; answered by the Refusal handler
        metrics.VERIFY_REFUSED.labels(e.code).inc()
        raise
    except WorkerLost as e:  # a model process died during the analysis: nothing decided, nothing stored
        raise ApiError(503, e.code, e.reason, headers={"Retry-After": "1"}, retry_after_s=1) from None
    except InvalidInsuredId as e:
        metrics.VERIFY_REFUSED.labels("invalid_insured_id").inc()
        raise ApiError(400, "invalid_insured_id", str(e)) from None
    except ImageRejected as e:
        metrics.VERIFY_REFUSED.labels(e.code).inc()
        # busy: decoding memory is taken by other uploads; the terminal can retry or fall back at once
        raise ApiError(_IMAGE_STATUS.get(e.code, 400), e.code, e.reason,
                       headers={"Retry-After": "5"} if e.code == "busy" else None) from None
    metrics.VERIFY_DURATION.observe(time.perf_counter() - t0)
    metrics.VERIFY_DECISIONS.labels(who.org_id, result["decision"]).inc()
    return result


@router.get("/verifications/{verification_id}")
def get_verification(
    verification_id: str,
    request: Request,
    rt: Services = Depends(runtime),
    who: Principal = Depends(require("terminal", "admin")),
):
    """A recorded verification (decision, score, model, time; never the capture). A terminal sees
    only its own organisation's records."""

    with session_scope(rt.sessions) as db:
        v = db.get(Verification, verification_id)
        if v is None or (who.role == "terminal" and v.org_id != who.org_id):
            raise ApiError(404, "not_found", "no such verification")
        audit(db, actor=who.actor, action="verification.read", outcome="ok", org_id=v.org_id,
              subject=f"verification:{v.id}", request_id=request.state.request_id)
        return {
            "verification_id": v.id, "created_at": v.created_at.isoformat(), "org_id": v.org_id,
            "terminal_id": v.terminal_id, "insured_id": v.insured_id, "settlement_ref": v.settlement_ref,
            "decision": v.decision, "score": v.score, "threshold": v.threshold, "model": v.model,
            "quality": v.quality, "faces_found": v.faces_found, "capture_sha256": v.capture_sha256,
            "capture_expires_at": v.capture_expires_at.isoformat() if v.capture_expires_at else None,
            **recorded_view(db, v.id),
        }
