"""Anonymous requests are counted, and audited by sample: one line a minute per source address and route
template (api/errors.py), so a flood of them cannot fill the audit table or compete with face-pay writes."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel import metrics
from storage.db import session_scope
from storage.models import AuditEvent


def anonymous(route: str, code: str = "unauthenticated") -> float:
    return metrics.REGISTRY.get_sample_value("dualcheck_anonymous_refusals_total",
                                             {"route": route, "code": code}) or 0.0


def refusal_lines(api) -> list[AuditEvent]:
    with session_scope(api.rt.sessions) as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.outcome.like("refused:%"))).all()
        db.expunge_all()
        return rows


def test_200_anonymous_requests_are_counted_and_audited_once(api_sqlite):
    api = api_sqlite
    before = anonymous("/v1/flags")
    for _ in range(100):
        assert api.client.get("/v1/flags").status_code == 401
    for i in range(100):  # a made-up key is no credential either
        r = api.client.get("/v1/flags", headers={"Authorization": f"Bearer dck_nokey{i}_secret"})
        assert r.status_code == 401
    assert anonymous("/v1/flags") == before + 200
    lines = refusal_lines(api)
    assert 1 <= len(lines) <= 2, [(e.actor, e.action) for e in lines]
    assert lines[0].detail["status"] == 401 and lines[0].detail["refusals"] == 1


def test_sampled_per_source_and_route(api_sqlite):
    api = api_sqlite
    for _ in range(20):
        api.client.get("/v1/flags")
        api.client.get("/v1/cameras")
        api.client.get("/v1/no-such-thing")
    other = TestClient(api.client.app, client=("203.0.113.7", 40000))
    for _ in range(20):
        assert other.get("/v1/flags").status_code == 401
    assert anonymous("<unmatched>", "not_found") >= 20
    lines = refusal_lines(api)
    # one per (source, route): testclient x 3 routes, the other address x 1
    assert len(lines) == 4, [(e.actor, e.action, e.detail) for e in lines]


def test_authenticated_refusals_are_still_each_audited(api_sqlite):
    api = api_sqlite
    for _ in range(3):  # a terminal may not list flags: 403, audited every time
        assert api.client.get("/v1/flags", headers=api.h("terminal")).status_code == 403
    assert len([e for e in refusal_lines(api) if e.detail.get("status") == 403]) == 3
