"""A real `dualcheck record` process: its /metrics (per-camera bytes, segments, reconnects, gaps, spool
depth) and its JSON logs, which name cameras but never their credentials."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.ingest.conftest_recorder import process_env, wait_for
from tests.observability.scrape import scrape_url

PASSWORD = "Obs-s3cr3t-pw"


def test_recorder_process_metrics_and_logs(rec_env, tmp_path, camera_factory):
    cam = camera_factory(user="viewer", password=PASSWORD)
    env = rec_env(f"sqlite:///{tmp_path / 'idx.db'}")
    env.add_camera("cam-m", cam.url)  # user:password in the URL
    env.add_camera("cam-x", cam.url_without_credentials, username="viewer", password=PASSWORD + "-wrong")
    port = free_port()
    penv = process_env(env.settings, metrics_port=port, metrics_addr="127.0.0.1", log_format="json", log_level="DEBUG")
    url = f"http://127.0.0.1:{port}/metrics"
    log_path = tmp_path / "rec.log"
    with open(log_path, "wb") as out:
        p = subprocess.Popen([str(Path(sys.executable).with_name("dualcheck")), "record"], env=penv,
                             stdout=out, stderr=subprocess.STDOUT)
    try:
        def scrape():
            try:
                return scrape_url(url)
            except OSError:
                return None

        lab = dict(camera="cam-m", org="org1")
        first = wait_for(lambda: (s := scrape()) and s.get("dualcheck_camera_segments_total", **lab) >= 1 and s,
                         60, what="a first recorded segment in /metrics")
        second = wait_for(lambda: (s := scrape()) and s.get("dualcheck_camera_segments_total", **lab)
                          > first.get("dualcheck_camera_segments_total", **lab) and s, 40, what="a second segment")
        assert second.get("dualcheck_camera_recorded_bytes_total", **lab) > \
            first.get("dualcheck_camera_recorded_bytes_total", **lab) > 10_000
        assert second.get("dualcheck_camera_online", **lab) == 1
        assert 0 <= second.get("dualcheck_camera_last_packet_age_seconds", **lab) < 5
        wait_for(lambda: (s := scrape()) and s.get("dualcheck_segments_uploaded_total", **lab) >= 1, 30,
                 what="an uploaded segment")
        # the camera with the wrong password: reconnects and an offline gap, counted per camera
        bad = dict(camera="cam-x", org="org1")
        assert second.get("dualcheck_camera_reconnects_total", **bad) >= 1
        assert second.get("dualcheck_camera_gaps_total", reason="camera_offline", **bad) == 1
        assert second.get("dualcheck_camera_online", **bad) == 0
        # spool depth and its bound, per shard
        assert second.get("dualcheck_spool_limit_bytes", shard="shard-0-of-1") == env.settings.spool_max_bytes
        assert ("dualcheck_spool_bytes", frozenset({("shard", "shard-0-of-1")})) in second.samples
        assert PASSWORD not in second.text
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    raw = log_path.read_text()
    assert PASSWORD not in raw
    recs = [json.loads(ln) for ln in raw.splitlines() if ln.startswith("{")]
    assert recs and all(r["role"] == "record" for r in recs)
    assert all({"timestamp", "level", "logger", "message"} <= r.keys() for r in recs)
    offline = [r for r in recs if "cam-x" in r["message"] and "offline" in r["message"]]
    assert offline and "rtsp://127.0.0.1" in offline[0]["message"]  # named, without credentials
    assert any("metrics on http://127.0.0.1" in r["message"] for r in recs)
