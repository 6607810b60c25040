"""The HTTP API: `create_app(settings)` builds it; `dualcheck serve` runs it under uvicorn."""
from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from api import errors, web
from api.limits import BodySizeLimit
from api.routes import cameras, exports, flags, health, holds, insured, settlements, verify
from dualcheck.runtime import Runtime
from dualcheck.settings import Settings, get_settings

log = logging.getLogger("dualcheck.api")


def create_app(settings: Settings | None = None, *, preload_models: bool = True) -> FastAPI:
    settings = settings or get_settings()
    rt = Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if preload_models:
            rt.pipeline  # load (and hash-check) the models before the first terminal waits for them
        rt.store
        yield
        rt.close()

    app = FastAPI(title="dualcheck", version="0.1.0", lifespan=lifespan,
                  description="Video + data dual verification for medical-insurance fund supervision.")
    app.state.runtime = rt
    errors.install(app)

    multipart_overhead = 64 * 1024

    per_image = f"an image may be at most {settings.max_upload_bytes} bytes"

    def body_limit(path: str) -> tuple[int, str]:
        if path.startswith("/v1/insured/"):
            n = settings.max_photos_per_request
            return settings.max_upload_bytes * n + multipart_overhead, f"{per_image}, {n} per request"
        return settings.max_upload_bytes + multipart_overhead, per_image

    app.add_middleware(BodySizeLimit, limit_for=body_limit)

    @app.middleware("http")
    async def request_ids(request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid[:64]
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    app.include_router(health.router)
    app.include_router(insured.router)
    app.include_router(verify.router)
    app.include_router(cameras.router)
    app.include_router(holds.router)
    app.include_router(exports.router)
    app.include_router(settlements.router)
    app.include_router(flags.router)
    web.install(app, settings)  # the web UI (api/web/): pages, evidence images, session cookies
    return app
