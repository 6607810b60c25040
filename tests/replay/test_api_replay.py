"""The replay API as an inspector's client sees it: clip, Range, gaps, limits, HLS, access, audit."""
from __future__ import annotations

import json
import subprocess

from sqlalchemy import select

from storage.db import session_scope
from storage.models import AuditEvent
from tests.replay.conftest import at, ffprobe_packets, q


def _clip_url(cam, a, b):
    return f"/v1/cameras/{cam}/clip?start={q(a)}&end={q(b)}"


def test_clip_download_plays_and_reports_the_gap(replay, tmp_path):
    r = replay.client.get(_clip_url("CAM-1", at(50), at(90)), headers=replay.h("admin"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers["x-dualcheck-clip-start"] == "2025-03-01T02:00:50Z"
    assert r.headers["x-dualcheck-clip-end"] == "2025-03-01T02:01:30Z"
    gaps = json.loads(r.headers["x-dualcheck-gaps"])
    assert [(g["start"], g["end"]) for g in gaps] == [("2025-03-01T02:01:00Z", "2025-03-01T02:01:20Z")]
    p = tmp_path / "c.mp4"
    p.write_bytes(r.content)
    info = ffprobe_packets(p)
    assert abs(float(info["format"]["duration"]) - 40) <= 1
    # who saw what: an audit event names the caller, the camera and the range
    with session_scope(replay.rt.sessions) as db:
        ev = db.scalars(select(AuditEvent).where(AuditEvent.action == "clip.view")).one()
        assert ev.subject == "camera:CAM-1" and ev.actor.startswith("key:")
        assert ev.detail["start"] == "2025-03-01T02:00:50Z" and ev.detail["end"] == "2025-03-01T02:01:30Z"


def test_range_requests(replay):
    url = _clip_url("CAM-1", at(0), at(40))
    whole = replay.client.get(url, headers=replay.h("admin")).content
    size = len(whole)
    r = replay.client.get(url, headers={**replay.h("admin"), "Range": "bytes=1000-200999"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 1000-200999/{size}"
    assert r.content == whole[1000:201000]
    r = replay.client.get(url, headers={**replay.h("admin"), "Range": f"bytes={size // 2}-"})
    assert r.status_code == 206 and r.content == whole[size // 2:]
    r = replay.client.get(url, headers={**replay.h("admin"), "Range": "bytes=-500"})
    assert r.status_code == 206 and r.content == whole[-500:]
    r = replay.client.get(url, headers={**replay.h("admin"), "Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.json()["error"]["code"] == "range_not_satisfiable"


def test_bad_requests_say_why(replay):
    h = replay.h("admin")
    c = replay.client

    def err(url, status, code):
        r = c.get(url, headers=h)
        assert r.status_code == status, (url, r.text)
        body = r.json()["error"]
        assert body["code"] == code and body["reason"]
        return body

    err("/v1/cameras/CAM-1/clip", 400, "missing_time")
    err(f"/v1/cameras/CAM-1/clip?start=yesterday&end={q(at(10))}", 400, "invalid_time")
    err("/v1/cameras/CAM-1/clip?start=2025-03-01T02:00:00&end=2025-03-01T02:00:10", 400, "invalid_time")
    err(_clip_url("CAM-1", at(10), at(5)), 400, "invalid_range")
    body = err(_clip_url("CAM-1", at(0), at(31 * 60)), 400, "range_too_long")
    assert "1800" in body["reason"]
    err(_clip_url("NOPE", at(0), at(10)), 404, "not_found")
    body = err(_clip_url("CAM-1", at(62), at(78)), 404, "no_footage")
    assert body["gaps"][0]["start"] == "2025-03-01T02:01:02Z"
    body = err(_clip_url("CAM-EMPTY", at(0), at(10)), 404, "no_footage")
    # an unescaped '+' offset (arrives as a space) still parses: 10:00:05+08:00 is 02:00:05Z
    r = c.get("/v1/cameras/CAM-1/clip?start=2025-03-01T10:00:04+08:00&end=2025-03-01T10:00:08+08:00", headers=h)
    assert r.status_code == 200 and r.headers["x-dualcheck-clip-start"] == "2025-03-01T02:00:04Z"


def test_footage_is_not_for_ingest_or_terminal_keys(replay):
    for who in ("ingest", "terminal"):
        r = replay.client.get(_clip_url("CAM-1", at(0), at(10)), headers=replay.h(who))
        assert r.status_code == 404
        assert replay.client.get("/v1/cameras", headers=replay.h(who)).json() == {"cameras": []}
        assert replay.client.get("/v1/cameras/CAM-1/hls.m3u8?start=" + q(at(0)) + "&end=" + q(at(30)),
                                 headers=replay.h(who)).status_code == 404
    assert replay.client.get(_clip_url("CAM-1", at(0), at(10))).status_code == 401


def test_camera_registry_never_shows_credentials(replay):
    c, h = replay.client, replay.h("admin")
    r = c.post("/v1/cameras", headers=h, json={"id": "CAM-9", "org_id": "PHARM-B", "name": "till",
                                              "role": "pharmacy_counter", "url": "rtsp://u:pw9@10.1.1.1/s"})
    assert r.status_code == 201, r.text
    assert "pw9" not in r.text and r.json()["has_credentials"] is True
    with replay.rt.sessions() as db:  # stored sealed with the region's key, opened only by processes holding it
        from storage.models import Camera

        stored = db.get(Camera, "CAM-9").rtsp_password
    assert stored.startswith("enc:v1:") and "pw9" not in stored and replay.rt.credentials.open(stored) == "pw9"
    long_pw = c.post("/v1/cameras", headers=h, json={"id": "CAM-11", "org_id": "PHARM-B", "name": "x",
                                                    "role": "pharmacy_counter", "url": "rtsp://h/s",
                                                    "username": "u", "password": "p" * 129})
    assert long_pw.status_code == 400 and "128 characters" in long_pw.json()["error"]["reason"]
    assert c.post("/v1/cameras", headers=h, json={"id": "CAM-9", "org_id": "PHARM-B", "name": "x",
                                                 "role": "pharmacy_counter", "url": "rtsp://h/s"}).status_code == 409
    bad = c.post("/v1/cameras", headers=h, json={"id": "CAM-10", "org_id": "PHARM-B", "name": "x",
                                                "role": "kitchen", "url": "rtsp://h/s"})
    assert bad.status_code == 400 and "role" in bad.json()["error"]["reason"]
    assert c.post("/v1/cameras", headers=replay.h("ingest"), json={}).status_code in (403, 422)
    listed = c.get("/v1/cameras", headers=h).json()["cameras"]
    assert {x["id"] for x in listed} == {"CAM-1", "CAM-EMPTY", "CAM-9"}
    assert "secret" not in json.dumps(listed)
    assert c.get("/v1/cameras/CAM-9", headers=h).json()["name"] == "till"
    assert c.delete("/v1/cameras/CAM-9", headers=h).status_code == 200
    assert c.get("/v1/cameras/CAM-9", headers=h).status_code == 404


def test_health_shows_the_hole(replay):
    r = replay.client.get(f"/v1/cameras/CAM-1/health?start={q(at(0))}&end={q(at(180))}", headers=replay.h("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    text = json.dumps(body)
    assert "2025-03-01T02:01:00" in text and "2025-03-01T02:01:20" in text


def test_clip_info_sibling(replay):
    r = replay.client.get(f"/v1/cameras/CAM-1/clip.json?start={q(at(55))}&end={q(at(85))}", headers=replay.h("admin"))
    body = r.json()
    assert body["clip_start"] == "2025-03-01T02:00:54Z" and body["duration_s"] == 32.0
    assert len(body["segments"]) == 2 and body["gaps"][0]["seconds"] == 20


def test_hls_playlist_reads_with_ffmpeg(replay, tmp_path):
    """ffmpeg's own HLS client follows the playlist, per-segment init and media over HTTP."""
    from tests.replay.live import serve

    with serve(replay.client.app) as base:
        url = f"{base}/v1/cameras/CAM-1/hls.m3u8?start={q(at(30))}&end={q(at(100))}"
        out = tmp_path / "hls.mp4"
        auth = f"Authorization: Bearer {replay.env.keys['admin']}\r\n"
        r = subprocess.run(["/usr/bin/ffmpeg", "-v", "error", "-headers", auth, "-i", url, "-c", "copy", "-y",
                            str(out)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    info = ffprobe_packets(out)
    # 30-60 and 80-100: 50 s of footage (ffmpeg concatenates discontinuities)
    assert abs(float(info["format"]["duration"]) - 50) <= 1.5
    text = replay.client.get(f"/v1/cameras/CAM-1/hls.m3u8?start={q(at(30))}&end={q(at(100))}",
                             headers=replay.h("admin")).text
    assert text.count("#EXT-X-MAP") == 5 and text.count("#EXT-X-DISCONTINUITY\n") == 4
    assert "#EXT-X-PROGRAM-DATE-TIME:2025-03-01T02:01:20.000Z" in text
