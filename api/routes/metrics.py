"""GET /metrics: Prometheus text format, for the scraper (docs/observability.md).

Auth: open unless ``DUALCHECK_METRICS_TOKEN`` is set, then ``Authorization: Bearer <token>``. The
metrics hold counts and camera/organisation ids, nothing personal; still, keep the path off the public
Ingress (Prometheus scrapes the pods directly) or set the token.
"""
from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.errors import ApiError
from kernel import metrics
from storage.db_metrics import DbCollector

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request) -> Response:
    rt = request.app.state.runtime
    token = rt.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            raise ApiError(401, "unauthenticated", "metrics need 'Authorization: Bearer <DUALCHECK_METRICS_TOKEN>'")
    collector = getattr(request.app.state, "db_collector", None)
    if collector is None:
        collector = DbCollector(rt.sessions)
        request.app.state.db_collector = collector
    body, ctype = await run_in_threadpool(metrics.render, metrics.registry_for(collector))  # DB queries
    return Response(body, media_type=ctype)
