"""The API as served: the wiring of this process behind ``api.app.create_app``.

``dualcheck serve`` gives uvicorn ``dualcheck.app:create_app`` as its factory, so each worker process
builds its own runtime (connections and models are per process)."""
from __future__ import annotations

import logging

from fastapi import FastAPI

from api.app import build_app
from dualcheck.runtime import Runtime
from kernel import logs
from kernel.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, preload_models: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if not logging.getLogger().handlers:  # a uvicorn worker process (api_workers > 1) starts unconfigured
        logs.setup(settings.log_level, settings.log_format, "api")
    return build_app(Runtime(settings), preload_models=preload_models)
