from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text

from api.deps import runtime
from api.services import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(rt: Services = Depends(runtime)) -> dict:
    """Ready when the index and the object store answer and the models are loaded."""
    with rt.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    rt.store.client.bucket_exists(rt.settings.bucket_biometrics)
    return {"status": "ready", "model": rt.pipeline.model_info}
