"""The redaction every log record passes, whatever a caller hands to the logger by mistake."""
from __future__ import annotations

import logging

import numpy as np


def test_credentials_blobs_and_embeddings_are_redacted_from_json_logs(json_logs):
    log = logging.getLogger("dualcheck.test")
    emb = np.random.default_rng(1).standard_normal(128).astype(np.float32)
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    log.warning("camera %s failed", "rtsp://admin:Hik-pw-123@10.0.0.7:554/Streaming/Channels/101")
    log.info("capture %s embedding %s", jpeg, emb)
    log.info("as text: %s", ", ".join(f"{x:.5f}" for x in emb))  # formatted by the caller
    log.info("base64 %s", __import__("base64").b64encode(jpeg).decode())
    log.info("extra fields too", extra={"url": "rtsp://u:Hik-pw-123@h/x", "blob": jpeg})
    try:
        raise OSError("av.open('rtsp://admin:Hik-pw-123@10.0.0.7/s') failed")
    except OSError:
        log.exception("recorder error")
    with_rid = __import__("kernel.logs", fromlist=["request_id"]).request_id
    token = with_rid.set("r-42")
    log.info("inside a request")
    with_rid.reset(token)

    text = json_logs.text
    recs = json_logs.records()
    assert len(recs) == 7
    assert "Hik-pw-123" not in text
    assert "rtsp://***@10.0.0.7:554/Streaming/Channels/101" in recs[0]["message"]  # still says which camera
    assert "<" in recs[1]["message"] and "bytes redacted" in recs[1]["message"] and "redacted>" in recs[1]["message"]
    for x in emb[:5]:
        assert f"{x:.5f}" not in text and str(x) not in text
    assert "/9j/" not in text and "\\xff\\xd8" not in text and "ffd8ffe0" not in text
    assert recs[4]["blob"].endswith("redacted>")
    assert "traceback" in recs[5]["exc_info"].lower() and "***@10.0.0.7" in recs[5]["exc_info"]
    assert recs[6]["request_id"] == "r-42" and recs[5]["request_id"] is None
