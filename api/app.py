"""The HTTP API: `build_app(services)` builds it around the parts the wiring made (api/services.py);
`dualcheck serve` runs it under uvicorn (dualcheck/app.py)."""
from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import errors
from api.access import RequestContext
from api.admission import FaceAdmission
from api.keys import KeyCache
from api.limits import BodySizeLimit
from api.ratelimit import RateLimiter
from api.routes import (
    audit,
    cameras,
    exports,
    flags,
    health,
    holds,
    insured,
    metrics,
    orgs,
    reference,
    settlements,
    staff,
    terminals,
    verify,
)
from api.routes.beds import router as beds_router
from api.routes.cases import router as cases_router
from api.routes.claims import router as claims_router
from api.routes.rules import router as rules_router
from api.routes.watch import router as watch_router
from api.security import SecurityHeaders
from api.services import Services
from api.strictbody import unique_json_keys
from api.web.site import install as install_web

log = logging.getLogger("dualcheck.api")


def build_app(rt: Services, *, preload_models: bool = True) -> FastAPI:
    settings = rt.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if preload_models:
            rt.pipeline  # load (and hash-check) the models before the first terminal waits for them
            rt.face_work.start()  # and the model processes theirs
        rt.store
        # What startup built lives as long as the process: out of the collector's sight, a full collection
        # under load takes well under 1 ms instead of ~250 ms that stalled every request (bench/overload.py)
        gc.collect()
        gc.freeze()
        yield
        rt.close()

    app = FastAPI(title="dualcheck", version="0.1.0", lifespan=lifespan,
                  description="Video + data dual verification for medical-insurance fund supervision.",
                  dependencies=[Depends(unique_json_keys)])  # every JSON body: no key twice (api/strictbody.py)
    app.state.runtime = rt
    app.state.rate_limiter = RateLimiter(settings)
    app.state.key_cache = KeyCache(settings.api_key_cache_s)  # api/deps.py: keys checked in the last seconds
    errors.install(app)

    multipart_overhead = 64 * 1024

    per_image = f"an image may be at most {settings.max_upload_bytes} bytes"

    def body_limit(path: str) -> tuple[int, str]:
        if path.startswith("/v1/insured/") or (path.endswith("/photos") and "/staff/" in path):  # staff too
            n = settings.max_photos_per_request
            return settings.max_upload_bytes * n + multipart_overhead, f"{per_image}, {n} per request"
        return settings.max_upload_bytes + multipart_overhead, per_image

    app.add_middleware(BodySizeLimit, limit_for=body_limit)
    # face work is admitted or refused (503 overloaded) before its upload is read: api/admission.py
    app.add_middleware(FaceAdmission, services=rt)

    app.add_middleware(RequestContext)  # request id, access log line, HTTP metrics (api/access.py)

    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(insured.router)
    app.include_router(verify.router)
    app.include_router(cameras.router)
    app.include_router(reference.router)
    app.include_router(holds.router)
    app.include_router(exports.router)
    app.include_router(settlements.router)
    app.include_router(claims_router)
    app.include_router(watch_router)
    app.include_router(rules_router)
    app.include_router(flags.router)
    app.include_router(cases_router)
    app.include_router(staff.router)
    app.include_router(orgs.router)
    app.include_router(audit.router)
    app.include_router(terminals.router)
    app.include_router(beds_router)
    install_web(app, settings)  # the web UI (api/web/): pages, evidence images, session cookies
    # added last, so outermost: its headers reach every response, the 413s of BodySizeLimit included
    app.add_middleware(SecurityHeaders, hsts_max_age_s=settings.api_hsts_max_age_s)
    return app
