"""Retention deletions on /metrics after a real retention run; the deploy/ dashboard only charts metrics
the code exports."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ingest.cameras import add_camera
from kernel import metrics
from storage.db import session_scope
from storage.db_metrics import DbCollector
from storage.models import Segment
from storage.retention import run_retention
from tests.observability.scrape import scrape_client

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "dashboards" / "dualcheck.json"


def test_retention_run_moves_the_deletion_counters(api_sqlite):
    api = api_sqlite
    s, rt = api.settings, api.rt
    rt.store.ensure_bucket(s.bucket_footage)
    now = datetime.now(timezone.utc)
    with session_scope(rt.sessions) as db:
        add_camera(db, camera_id="R1", org_id="CLINIC-A", name="R1", role="settlement_counter", url="rtsp://h/r1")
        db.flush()
        for i, age_days in enumerate((400, 300, 10)):  # two past the 183-day retention, one recent
            t = now - timedelta(days=age_days)
            key, data = f"CLINIC-A/R1/{i}.mp4", b"x" * (1000 + i)
            rt.store.put_bytes(s.bucket_footage, key, data)
            db.add(Segment(camera_id="R1", org_id="CLINIC-A", start_at=t, end_at=t + timedelta(minutes=1),
                           duration_s=60, bytes=len(data), sha256="0" * 64, object_key=key))
    before = scrape_client(api.client)
    assert run_retention(rt.sessions, rt.store, s, dry_run=True).counts["segments_to_delete"] == 2
    mid = scrape_client(api.client)
    assert mid.get("dualcheck_retention_deleted_segments_total") == before.get("dualcheck_retention_deleted_segments_total")
    assert mid.get("dualcheck_retention_runs_total", outcome="dry_run") - \
        before.get("dualcheck_retention_runs_total", outcome="dry_run") == 1
    run_retention(rt.sessions, rt.store, s)
    after = scrape_client(api.client)

    def delta(name, **labels):
        return after.get(name, **labels) - before.get(name, **labels)

    assert delta("dualcheck_retention_deleted_segments_total") == 2
    assert delta("dualcheck_retention_deleted_bytes_total") == 1000 + 1001
    assert delta("dualcheck_retention_runs_total", outcome="ok") == 1
    # from the database: any replica shows when the last real run finished and what it deleted
    assert abs(after.get("dualcheck_retention_last_success_timestamp_seconds") - now.timestamp()) < 60
    assert after.get("dualcheck_retention_last_run_deleted_segments") == 2


def _exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            else:
                yield from _exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _exprs(v)


def test_dashboard_charts_only_exported_metrics():

    dash = json.loads(DASHBOARD.read_text())
    exprs = list(_exprs(dash))
    assert len(exprs) >= 10
    used = {m for e in exprs for m in re.findall(r"\b(?:dualcheck|process)_[a-z0-9_]+\b", e)}
    exported = metrics.all_metric_names(DbCollector(None))
    assert used - exported == set(), f"the dashboard charts metrics nobody exports: {sorted(used - exported)}"
    # every area of the issue has a panel
    titles = " ".join(p.get("title", "") for p in dash["panels"]).lower()
    for area in ("camera", "spool", "verif", "queue", "flag", "retention"):
        assert area in titles, area
    # and the dashboard uses what matters
    for must in ("dualcheck_verify_duration_seconds_bucket", "dualcheck_camera_recorded_bytes_total",
                 "dualcheck_settlements_due", "dualcheck_flags_raised_total", "dualcheck_retention_deleted_segments_total"):
        assert must in used, must


def test_exported_names_follow_the_rules():

    fams = [f for f in metrics.REGISTRY.collect() if f.name.startswith("dualcheck_")]
    fams += list(DbCollector(None).describe())
    assert len(fams) >= 25
    for f in fams:
        assert re.fullmatch(r"dualcheck_[a-z0-9_]+", f.name)
        if f.type == "histogram":
            assert f.name.endswith("_seconds"), f.name
    from prometheus_client.metrics import MetricWrapperBase

    labels = {n for m in vars(metrics).values() if isinstance(m, MetricWrapperBase) for n in m._labelnames}
    labels |= {n for f in DbCollector(None).describe() for n in getattr(f, "_labelnames", ())}
    assert labels and labels <= {"camera", "org", "reason", "decision", "code", "status", "type", "level",
                                 "method", "route", "outcome", "shard"}, labels  # never a person or a settlement
