// Flag evidence player: one MP4 clip per camera (/v1/cameras/{id}/clip, cookie-authenticated), opened at
// the settlement time; a bar shows the whole window with its gaps, the settlement and the faces seen.
// Clip time t is wall time clip_start + t (a gap is a jump of the clip's clock).
(function () {
  "use strict";
  var dataEl = document.getElementById("player-data");
  var video = document.getElementById("player");
  if (!dataEl || !video) return;
  var data = JSON.parse(dataEl.textContent);
  var bar = document.getElementById("timebar"), head = document.getElementById("tb-head");
  var gapsEl = document.getElementById("tb-gaps"), marksEl = document.getElementById("tb-marks");
  var frameTime = document.getElementById("frame-time"), errEl = document.getElementById("player-error");
  var fmt = new Intl.DateTimeFormat("zh-CN", {timeZone: data.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  var settled = Date.parse(data.settled_at);
  var cur = null, clipStart = null, pendingSeek = null;

  // H.265 footage: a browser without an HEVC decoder (Debian's Chromium) asks for an H.264 copy
  var hevcOk = !!(window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"')) ||
      video.canPlayType('video/mp4; codecs="hvc1.1.6.L93.B0"') !== "";

  function ms(s) { return Date.parse(s); }
  function pct(t) { var a = ms(cur.start), b = ms(cur.end); return Math.max(0, Math.min(100, 100 * (t - a) / (b - a))); }
  function box(cls, from, to) {
    var d = document.createElement("div");
    if (cls) d.className = cls;
    d.style.left = pct(from) + "%";
    if (to !== undefined) d.style.width = Math.max(0.4, pct(to) - pct(from)) + "%";
    return d;
  }
  function drawBar(gaps) {
    gapsEl.textContent = ""; marksEl.textContent = "";
    var list = [];
    (gaps || []).forEach(function (g) {
      var el = box("", ms(g.start), ms(g.end));
      el.title = data.labels.gap + " " + fmt.format(ms(g.start)) + "–" + fmt.format(ms(g.end));
      gapsEl.appendChild(el);
      list.push(fmt.format(ms(g.start)) + "–" + fmt.format(ms(g.end)));
    });
    document.getElementById("gap-list").textContent = list.length ? list.join(", ") : "—";
    var s = box("settle", settled); s.title = fmt.format(settled); marksEl.appendChild(s);
    data.faces.forEach(function (f) { if (f.camera_id === cur.id) marksEl.appendChild(box("face", ms(f.seen_at))); });
    document.getElementById("tb-start").textContent = fmt.format(ms(cur.start));
    document.getElementById("tb-end").textContent = fmt.format(ms(cur.end));
  }
  function showError(msg) { errEl.hidden = !msg; errEl.textContent = msg || ""; }

  function seekWall(t) {
    if (clipStart === null || isNaN(video.duration)) { pendingSeek = t; return; }
    var pos = Math.max(0, Math.min((t - clipStart) / 1000, video.duration - 0.05));
    video.currentTime = pos;
  }

  function load(cam, wall) {
    cur = cam; clipStart = null; pendingSeek = wall;
    document.querySelectorAll(".cam-tab").forEach(function (b) { b.classList.toggle("on", b.dataset.camera === cam.id); });
    showError("");
    drawBar([]);
    fetch(cam.info, {credentials: "same-origin"}).then(function (r) {
      return r.json().then(function (j) { return {ok: r.ok, j: j}; });
    }).then(function (res) {
      if (cur !== cam) return;
      if (!res.ok) {
        var err = res.j.error || {};
        drawBar(err.gaps || [{start: cam.start, end: cam.end}]);
        video.removeAttribute("src"); video.load();
        showError(err.code === "no_footage" ? data.labels.no_footage : (err.reason || "error"));
        return;
      }
      clipStart = ms(res.j.clip_start);
      video.dataset.clipStart = res.j.clip_start;
      drawBar(res.j.gaps);
      video.src = hevcOk ? cam.clip : cam.clip + (cam.clip.indexOf("?") < 0 ? "?" : "&") + "hevc=0";
    }).catch(function (e) { showError(String(e)); });
  }

  video.addEventListener("loadedmetadata", function () {
    if (pendingSeek !== null) { var t = pendingSeek; pendingSeek = null; seekWall(t); }
    var p = video.play(); if (p && p.catch) p.catch(function () {});
  });
  video.addEventListener("timeupdate", function () {
    if (clipStart === null) return;
    var wall = clipStart + video.currentTime * 1000;
    head.style.left = pct(wall) + "%";
    frameTime.textContent = fmt.format(wall);
    video.dataset.wall = new Date(wall).toISOString();
  });
  bar.addEventListener("click", function (ev) {
    var r = bar.getBoundingClientRect(), a = ms(cur.start), b = ms(cur.end);
    seekWall(a + (b - a) * (ev.clientX - r.left) / r.width);
  });
  document.getElementById("jump-settlement").addEventListener("click", function () {
    // another window is playing (a bed check's, ward.js): back to the finding's own window first
    if (cur && data.cameras.indexOf(cur) < 0 && data.cameras.length) {
      load(data.cameras.filter(function (c) { return c.id === cur.id; })[0] || data.cameras[0], settled);
      return;
    }
    seekWall(settled);
  });
  document.querySelectorAll(".cam-tab").forEach(function (b) {
    b.addEventListener("click", function () {
      var cam = data.cameras.filter(function (c) { return c.id === b.dataset.camera; })[0];
      if (cam && cam !== cur) load(cam, settled);
    });
  });
  function cropSeek(el) {
    var t = ms(el.dataset.seen), camId = el.dataset.camera;
    if (cur && cur.id === camId) { seekWall(t); return; }
    var cam = data.cameras.filter(function (c) { return c.id === camId; })[0];
    if (cam) load(cam, t);
  }
  document.querySelectorAll(".crop").forEach(function (el) {
    el.addEventListener("click", function () { cropSeek(el); });
    el.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); cropSeek(el); } });
  });
  // other parts of the page replay their own windows here (ward.js: a bed check)
  window.dcPlayer = {load: load};
  if (data.cameras.length) load(data.cameras[0], settled);
})();
