"""The API's /metrics after real face-pay calls, its auth, and its JSON logs: request ids, one access line
per request, never an image, a template or an embedding."""
from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
from sqlalchemy import select

from storage.db import session_scope
from storage.models import FaceTemplate
from tests.api import images
from tests.api.test_verify import enroll, verify
from tests.observability.scrape import scrape_client


def test_verify_calls_move_the_latency_histogram_and_decision_counters(api_sqlite, testdata):
    api = api_sqlite
    enroll(api, "P-M1", testdata / "faces/obama.jpg")
    before = scrape_client(api.client)
    assert verify(api, "P-M1", images.read(testdata / "faces/obama2.jpg")).json()["decision"] == "match"
    assert verify(api, "P-M1", images.read(testdata / "faces/biden.jpg")).json()["decision"] == "mismatch"
    assert verify(api, "P-M1", b"not an image").status_code in (400, 415)  # refused: no decision
    after = scrape_client(api.client)

    def delta(name, **labels):
        return after.get(name, **labels) - before.get(name, **labels)

    assert delta("dualcheck_verify_duration_seconds_count") == 2
    took = delta("dualcheck_verify_duration_seconds_sum")
    assert 0.02 < took < 10, took  # real detection + embedding ran
    # the buckets are cumulative and end at +Inf
    assert delta("dualcheck_verify_duration_seconds_bucket", le="+Inf") == 2
    assert delta("dualcheck_verify_duration_seconds_bucket", le="0.02") <= delta(
        "dualcheck_verify_duration_seconds_bucket", le="2.0")
    assert delta("dualcheck_verify_decisions_total", org="CLINIC-A", decision="match") == 1
    assert delta("dualcheck_verify_decisions_total", org="CLINIC-A", decision="mismatch") == 1
    assert after.sum("dualcheck_verify_refused_total") - before.sum("dualcheck_verify_refused_total") == 1
    assert delta("dualcheck_http_requests_total", method="POST", route="/v1/verify", status="200") == 2
    # the enrolled id never becomes a label; route labels are templates
    assert "P-M1" not in after.text
    assert delta("dualcheck_http_requests_total", method="PUT", route="/v1/insured/{insured_id}/photos",
                 status="200") == 0  # enrolled before the first scrape
    assert after.get("dualcheck_http_requests_total", method="PUT", route="/v1/insured/{insured_id}/photos",
                     status="200") >= 1
    # process metrics come along
    assert after.get("process_resident_memory_bytes") > 0


def test_metrics_token_when_set(make_settings, tmp_path, shared_pipeline):
    from tests.api.conftest import start_env

    env = start_env(make_settings(f"sqlite:///{tmp_path / 'm.db'}", metrics_token="scrape-me-7f3a"),
                    shared_pipeline)
    try:
        assert env.client.get("/metrics").status_code == 401
        assert env.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        s = scrape_client(env.client, Authorization="Bearer scrape-me-7f3a")
        assert s.get("dualcheck_db_up") == 1
    finally:
        env.client.__exit__(None, None, None)
        env.rt.close()


FLOATS_RUN = re.compile(r"(?:[-+]?\d*\.\d+(?:e[-+]?\d+)?[\s,]+){8,}", re.IGNORECASE)


def test_api_logs_are_json_with_request_ids_and_never_carry_biometrics(api_sqlite, testdata, json_logs):
    api = api_sqlite
    photo = images.read(testdata / "faces/obama.jpg")
    capture = images.read(testdata / "faces/obama2.jpg")
    r = api.client.put("/v1/insured/P-LOG1/photos", files=[("photos", ("a.jpg", photo, "image/jpeg"))],
                       headers={**api.h("ingest"), "X-Request-ID": "req-enroll-1"})
    assert r.status_code == 200, r.text
    r = api.client.post("/v1/verify", data={"insured_id": "P-LOG1"},
                        files={"image": ("c.jpg", capture, "image/jpeg")},
                        headers={**api.h("terminal"), "X-Request-ID": "req-verify-1"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "req-verify-1"
    bad = api.client.get("/v1/flags", headers={"X-Request-ID": "evil\nid"})  # not echoed: replaced
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Request-ID"])

    recs = json_logs.records()
    assert recs, "nothing was logged"
    for rec in recs:
        assert {"timestamp", "level", "logger", "message", "role", "request_id"} <= rec.keys(), rec
        assert rec["role"] == "api"
    access = [r for r in recs if r["logger"] == "dualcheck.api.access"]
    by_id = {r["request_id"]: r for r in access}
    v = by_id["req-verify-1"]
    assert (v["method"], v["route"], v["status"]) == ("POST", "/v1/verify", 200) and v["duration_ms"] > 0
    e = by_id["req-enroll-1"]
    assert e["route"] == "/v1/insured/{insured_id}/photos" and "P-LOG1" not in json.dumps(e)
    assert by_id[bad.headers["X-Request-ID"]]["status"] == 401

    text = json_logs.text
    with session_scope(api.rt.sessions) as db:
        emb = db.scalars(select(FaceTemplate.embedding).where(FaceTemplate.insured_id == "P-LOG1")).first()
    vec = np.frombuffer(emb, dtype=np.float32)
    for img in (photo, capture):
        assert base64.b64encode(img)[8:48].decode() not in text
        assert repr(img[300:332])[2:-1] not in text  # bytes as Python prints them
        assert img[300:332].hex() not in text
    assert "/9j/" not in text  # the start of any base64 JPEG
    from PIL import Image

    artist = Image.open(io.BytesIO(photo)).getexif().get(315)  # the photo's own metadata is image content
    assert artist and artist.strip("\x00") not in text
    for x in vec[:4]:
        assert repr(float(x)) not in text and str(x) not in text and f"{x:.6f}" not in text
    assert not FLOATS_RUN.search(text), FLOATS_RUN.search(text)

