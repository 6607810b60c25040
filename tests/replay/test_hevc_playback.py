"""H.265 replay in a browser without HEVC (issue 18): Debian's Chromium cannot decode H.265, so the
player asks for an H.264 copy (``hevc=0``), transcoded on demand with bounded CPU and cached; the
original clip's bytes are untouched."""
from __future__ import annotations

import hashlib
import io
import json

import av
import pytest

from camsim.footage import render, scenario_short
from storage.db import session_scope
from tests.replay.conftest import T0, at, q
from tests.replay.live import serve
from tests.replay.segmenter import make_segments
from tests.replay.test_browser_and_export import CHROMIUM

pytestmark = pytest.mark.slow
HVC1 = 'video/mp4; codecs="hvc1.1.6.L93.B0"'


@pytest.fixture
def hevc_replay(replay, testdata, tmp_path):
    from camsim.footage import default_cache_dir
    from ingest.cameras import add_camera

    footage = render(scenario_short(), width=320, height=180, fps=25, bitrate=300_000, keyint_s=2.0, codec="h265",
                     cache_dir=default_cache_dir(), testdata=testdata)
    with session_scope(replay.rt.sessions) as db:
        add_camera(db, camera_id="CAM-H", org_id="CLINIC-A", name="h265 counter", role="settlement_counter",
                   url="rtsp://10.0.0.7/Streaming/Channels/101")
        db.flush()
        make_segments(db, replay.rt.store, replay.settings.bucket_footage, footage, org_id="CLINIC-A",
                      camera_id="CAM-H", start=T0, total_s=40, segment_s=10, workdir=tmp_path)
    return replay


def test_an_h265_clip_plays_in_chromium_as_an_h264_copy(hevc_replay):
    from playwright.sync_api import sync_playwright

    r = hevc_replay
    path = f"/v1/cameras/CAM-H/clip?start={q(at(2))}&end={q(at(32))}"
    original = r.client.get(path, headers=r.h("admin"))
    assert original.status_code == 200 and "X-Dualcheck-Derived" not in original.headers
    with av.open(io.BytesIO(original.content)) as c:
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"  # the evidence as recorded
    copy = r.client.get(path + "&hevc=0", headers=r.h("admin"))  # sent as it is made
    assert copy.status_code == 200 and copy.headers["X-Dualcheck-Derived"] == "h264"
    assert "Content-Length" not in copy.headers or int(copy.headers["Content-Length"]) == len(copy.content)
    assert copy.headers["X-Dualcheck-Clip-Start"] == original.headers["X-Dualcheck-Clip-Start"]
    with av.open(io.BytesIO(copy.content)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264"
        assert abs(float(c.duration / 1e6) - 30) < 1.5
    # cached: the same bytes again, and a range of them
    again = r.client.get(path + "&hevc=0", headers={**r.h("admin"), "Range": "bytes=100-199"})
    assert again.status_code == 206 and again.content == copy.content[100:200]
    assert r.client.get(path + "&hevc=0", headers=r.h("admin")).content == copy.content  # the cached copy
    assert hashlib.sha256(r.client.get(path, headers=r.h("admin")).content).digest() == \
        hashlib.sha256(original.content).digest()  # the original is never changed
    with serve(r.client.app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(**CHROMIUM)
        ctx = browser.new_context(extra_http_headers={"Authorization": f"Bearer {r.env.keys['admin']}"})
        page = ctx.new_page()
        page.set_content('<video id="v" muted></video>')
        can_hevc = page.evaluate(f"MediaSource.isTypeSupported('{HVC1}')")
        # what the player does: the copy where the browser cannot decode HEVC, the original where it can;
        # a clip not asked for before, so the browser gets the copy as it is being made
        fresh = f"/v1/cameras/CAM-H/clip?start={q(at(6))}&end={q(at(36))}"
        src = f"{base}{fresh}" + ("" if can_hevc else "&hevc=0")
        page.evaluate(f"(() => {{ const v = document.getElementById('v'); v.src = '{src}'; v.play(); }})()")
        page.wait_for_function("document.getElementById('v').currentTime > 1.5", timeout=30000)
        assert page.evaluate("document.getElementById('v').error") is None
        browser.close()


def test_transcodes_are_bounded(hevc_replay):
    r = hevc_replay
    path = f"/v1/cameras/CAM-H/clip?start={q(at(0))}&end={q(at(10))}&hevc=0"
    slots = r.rt.playable.slots
    held = [slots.acquire(blocking=False) for _ in range(r.settings.transcode_concurrency)]
    try:  # every slot busy: refused at once, with when to come back
        busy = r.client.get(path, headers=r.h("admin"))
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
        assert busy.headers["Retry-After"] == "5"
    finally:
        for ok in held:
            if ok:
                slots.release()
    assert r.client.get(path, headers=r.h("admin")).status_code == 200
    # an H.264 camera's clip is sent as it is whatever the client says
    plain = r.client.get(f"/v1/cameras/CAM-1/clip?start={q(at(0))}&end={q(at(10))}&hevc=0", headers=r.h("admin"))
    assert plain.status_code == 200 and "X-Dualcheck-Derived" not in plain.headers
    bad = r.client.get(f"/v1/cameras/CAM-H/clip?start={q(at(0))}&end={q(at(10))}&hevc=no", headers=r.h("admin"))
    assert bad.status_code in (400, 422) and "error" in bad.json()


def test_an_export_keeps_the_original_bytes_and_may_add_a_derived_copy(hevc_replay):
    import json
    import zipfile

    r = hevc_replay
    c, h = r.client, r.h("admin")
    body = {"camera_id": "CAM-H", "start": at(2).isoformat(), "end": at(22).isoformat()}
    plain = c.post("/v1/exports", headers=h, json=body)
    withcopy = c.post("/v1/exports", headers=h, json={**body, "playable_copy": True})
    assert plain.status_code == withcopy.status_code == 201, withcopy.text
    # the evidence is the same bytes with or without the copy
    assert plain.json()["clip_sha256"] == withcopy.json()["clip_sha256"]
    assert plain.json()["manifest"]["segments"] == withcopy.json()["manifest"]["segments"]
    z = zipfile.ZipFile(io.BytesIO(c.get(withcopy.json()["download"], headers=h).content))
    assert sorted(z.namelist()) == ["SHA256SUMS", "clip.mp4", "derived/clip.h264.mp4", "manifest.json",
                                   "summary.zh-CN.html"]  # the Chinese summary page (storage/export_summary.py)
    manifest = json.loads(z.read("manifest.json"))
    clip = z.read("clip.mp4")
    assert hashlib.sha256(clip).hexdigest() == manifest["clip"]["sha256"]
    with av.open(io.BytesIO(clip)) as v:
        assert v.streams.video[0].codec_context.name == "hevc"  # the evidence as recorded
    [d] = manifest["derived"]
    copy = z.read(d["file"])
    assert d["derived_from"] == "clip.mp4" and d["note"].startswith("DERIVED") and \
        hashlib.sha256(copy).hexdigest() == d["sha256"]
    sums = dict(reversed(line.split("  ")) for line in z.read("SHA256SUMS").decode().splitlines())
    assert sums[d["file"]] == d["sha256"]
    with av.open(io.BytesIO(copy)) as v:
        assert v.streams.video[0].codec_context.name == "h264"
    for seg in manifest["segments"]:  # and every segment still matches the store
        assert hashlib.sha256(r.rt.store.get_bytes(seg["bucket"], seg["key"])).hexdigest() == seg["sha256"]
    assert "derived" not in json.loads(zipfile.ZipFile(io.BytesIO(
        c.get(plain.json()["download"], headers=h).content)).read("manifest.json"))


MSE_HLS = """async ([playlist, mime]) => {
  // what an HLS player (hls.js) does with a VOD fMP4 playlist: each media segment after its EXT-X-MAP
  // init, at the playlist's running time (every recorded segment starts its own clock at 0)
  const text = await (await fetch(playlist)).text();
  const base = new URL(playlist, location.href);
  const items = [];
  let map = null, dur = 0;
  for (const line of text.split("\\n")) {
    if (line.startsWith("#EXT-X-MAP:URI=")) map = line.split('"')[1];
    else if (line.startsWith("#EXTINF:")) dur = parseFloat(line.slice(8));
    else if (line && !line.startsWith("#")) items.push({map, uri: line, dur});
  }
  const v = document.getElementById("v");
  const ms = new MediaSource();
  v.src = URL.createObjectURL(ms);
  await new Promise(r => ms.addEventListener("sourceopen", r, {once: true}));
  const sb = ms.addSourceBuffer(mime);
  const append = buf => new Promise((ok, bad) => {
    sb.addEventListener("updateend", ok, {once: true});
    sb.addEventListener("error", bad, {once: true});
    sb.appendBuffer(buf);
  });
  let t = 0;
  for (const it of items) {
    for (const uri of [it.map, it.uri]) {
      const r = await fetch(new URL(uri, base));
      if (!r.ok) return `${uri}: HTTP ${r.status}`;
      sb.timestampOffset = t;
      await append(await r.arrayBuffer());
    }
    t += it.dur;
  }
  ms.endOfStream();
  v.play();
  return items.length;
}"""


def test_an_hls_range_of_an_h265_camera_plays_in_chromium_as_h264(hevc_replay):
    from playwright.sync_api import sync_playwright

    r = hevc_replay
    path = f"/v1/cameras/CAM-H/hls.m3u8?start={q(at(1))}&end={q(at(25))}"
    plain = r.client.get(path, headers=r.h("admin")).text
    assert "hevc=0" not in plain  # a browser that plays HEVC gets the segments as recorded
    seg = r.client.get("/v1/cameras/CAM-H/" + next(x for x in plain.split("\n") if x.endswith("media.m4s")),
                       headers=r.h("admin"))
    init = r.client.get("/v1/cameras/CAM-H/" + next(x.split('"')[1] for x in plain.split("\n") if "MAP" in x),
                        headers=r.h("admin"))
    with av.open(io.BytesIO(init.content + seg.content)) as c:
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"
    derived = r.client.get(path + "&hevc=0", headers=r.h("admin")).text
    uris = [x for x in derived.split("\n") if x and not x.startswith("#")]
    maps = [x.split('"')[1] for x in derived.split("\n") if x.startswith("#EXT-X-MAP")]
    assert len(uris) == 3 and all(u.endswith("media.m4s?hevc=0") for u in uris)  # the range's three segments
    assert all(m.endswith("init.mp4?hevc=0") for m in maps)
    # the first request transcodes as it sends; the media request follows the same transcode
    got = []
    for m, u in zip(maps, uris):
        i = r.client.get("/v1/cameras/CAM-H/" + m, headers=r.h("admin"))
        s = r.client.get("/v1/cameras/CAM-H/" + u, headers=r.h("admin"))
        assert i.status_code == s.status_code == 200 and s.headers["X-Dualcheck-Derived"] == "h264"
        with av.open(io.BytesIO(i.content + s.content)) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == "h264"
            got.append(sum(1 for _ in c.decode(st)))
    assert got == [250, 250, 250]  # every frame of each 10 s segment (25 fps)
    again = r.client.get("/v1/cameras/CAM-H/" + uris[0], headers=r.h("admin"))  # cached: the same bytes
    assert again.content == r.client.get("/v1/cameras/CAM-H/" + uris[0], headers=r.h("admin")).content
    with serve(r.client.app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(**CHROMIUM)
        ctx = browser.new_context(extra_http_headers={"Authorization": f"Bearer {r.env.keys['admin']}"})
        page = ctx.new_page()
        # a page of the API's origin without its Content-Security-Policy (which allows no blob: media),
        # as a player page that allows Media Source playback would be
        page.route(f"{base}/mse-player", lambda route: route.fulfill(
            status=200, content_type="text/html", body='<!doctype html><video id="v" muted></video>'))
        page.goto(f"{base}/mse-player")
        can_hevc = page.evaluate(f"MediaSource.isTypeSupported('{HVC1}')")
        # a range not asked for before: the segments are transcoded as the browser fetches them
        fresh = f"{base}/v1/cameras/CAM-H/hls.m3u8?start={q(at(21))}&end={q(at(39))}" + ("" if can_hevc else "&hevc=0")
        mime = HVC1 if can_hevc else 'video/mp4; codecs="avc1.4d401e"'
        loaded = page.evaluate(f"Promise.race([({MSE_HLS})({json.dumps([fresh, mime])}), "
                               "new Promise(r => setTimeout(() => r('timed out'), 90000))])")
        assert loaded == 2, (loaded, page.evaluate("document.getElementById('v').error?.message"))
        page.wait_for_function("document.getElementById('v').currentTime > 12", timeout=60000)  # into the 2nd
        assert page.evaluate("document.getElementById('v').error") is None
        browser.close()
