// Zones editor: click on the camera's still frame to place the points of a polygon, "finish" closes it
// (or click its first point again), "save" replaces the camera's zones through the JSON API
// (PUT /v1/cameras/{id}/zones; the session cookie authenticates, X-CSRF-Token proves the page sent it).
// Coordinates are fractions of the frame (0..1), as the API stores them; the SVG is 1000x1000 units.
(function () {
  "use strict";
  var dataEl = document.getElementById("zones-data");
  var svg = document.getElementById("zone-svg");
  if (!dataEl || !svg) return;
  var data = JSON.parse(dataEl.textContent);
  var W = data.words, NS = "http://www.w3.org/2000/svg";
  var zones = data.zones.slice(), draft = [];
  var stage = document.getElementById("zone-stage"), still = document.getElementById("zone-still");
  var list = document.getElementById("zone-list"), status = document.getElementById("zone-status");
  var kindSel = document.getElementById("zone-kind"), labelIn = document.getElementById("zone-label");
  var draftInfo = document.getElementById("zone-draft");
  var saveBtn = document.getElementById("zone-save");

  function say(text, isError) {
    status.textContent = text;
    status.className = "small" + (isError ? " error" : "");
  }
  function el(name, attrs) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function pts(points) {
    return points.map(function (p) { return (p[0] * 1000).toFixed(1) + "," + (p[1] * 1000).toFixed(1); }).join(" ");
  }
  function kindWord(k) { return W["zone_kind_" + k] || k; }

  function draw() {
    svg.textContent = "";
    zones.forEach(function (z, i) {
      var poly = el("polygon", {points: pts(z.points), "class": "zone zone-" + z.kind, "data-index": i,
                                "data-kind": z.kind});
      svg.appendChild(poly);
      var t = el("text", {x: z.points[0][0] * 1000 + 8, y: z.points[0][1] * 1000 + 32});
      t.textContent = (i + 1) + " " + kindWord(z.kind) + (z.label ? " · " + z.label : "");
      svg.appendChild(t);
    });
    if (draft.length) {
      svg.appendChild(el("polyline", {points: pts(draft), "class": "draft"}));
      draft.forEach(function (p) { svg.appendChild(el("circle", {cx: p[0] * 1000, cy: p[1] * 1000, r: 7, "class": "draft-point"})); });
    }
    if (draftInfo) draftInfo.textContent = W.zone_points.replace("{n}", draft.length);
    list.textContent = "";
    if (!zones.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = W.zone_none;
      list.appendChild(none);
    }
    zones.forEach(function (z, i) {
      var li = document.createElement("li");
      li.setAttribute("data-kind", z.kind);
      var sw = document.createElement("span");
      sw.className = "zone-swatch zone-" + z.kind;
      li.appendChild(sw);
      var name = document.createElement("span");
      name.textContent = (i + 1) + ". " + kindWord(z.kind) + (z.label ? " · " + z.label : "") + " (" + z.points.length + ")";
      li.appendChild(name);
      if (data.editable) {
        var del = document.createElement("button");
        del.type = "button";
        del.className = "link zone-delete";
        del.setAttribute("data-index", i);
        del.textContent = W.zone_delete;
        del.addEventListener("click", function () { zones.splice(i, 1); changed(); });
        li.appendChild(del);
      }
      list.appendChild(li);
    });
  }
  function changed() { draw(); say(W.zone_unsaved, false); }

  function finish() {
    if (draft.length < data.points[0]) { say(W.zone_need_points, true); return; }
    if (zones.length >= data.max_zones) { say(W.zone_too_many, true); return; }
    zones.push({kind: kindSel.value, points: draft, label: (labelIn.value || "").trim()});
    draft = [];
    labelIn.value = "";
    changed();
  }

  still.addEventListener("error", function () { stage.classList.add("nostill"); say(W.zone_no_still, true); });
  if (still.complete && still.naturalWidth === 0 && still.src) { stage.classList.add("nostill"); }

  if (data.editable) {
    svg.addEventListener("click", function (e) {
      var r = svg.getBoundingClientRect();
      var x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      var y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
      // a click on the first point (within 1.5 % of the frame) closes the polygon
      if (draft.length >= data.points[0] && Math.abs(x - draft[0][0]) < 0.015 && Math.abs(y - draft[0][1]) < 0.015) {
        finish();
        return;
      }
      if (draft.length >= data.points[1]) { say(W.zone_need_points, true); return; }
      draft.push([Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000]);
      draw();
    });
    document.getElementById("zone-finish").addEventListener("click", finish);
    document.getElementById("zone-undo").addEventListener("click", function () { draft.pop(); draw(); });
    saveBtn.addEventListener("click", function () {
      saveBtn.disabled = true;
      fetch("/v1/cameras/" + encodeURIComponent(data.camera_id) + "/zones", {
        method: "PUT", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": data.csrf},
        body: JSON.stringify({zones: zones})
      }).then(function (r) {
        return r.json().then(function (body) { return {ok: r.ok, body: body}; });
      }).then(function (res) {
        if (!res.ok) {
          say(W.zone_save_failed + ((res.body.error && res.body.error.reason) ? ": " + res.body.error.reason : ""), true);
          return;
        }
        zones = res.body.zones;
        draw();
        say(W.zone_saved, false);
        svg.setAttribute("data-saved", String(Date.now()));
      }).catch(function (err) {
        say(W.zone_save_failed + ": " + err, true);
      }).then(function () { saveBtn.disabled = false; });
    });
  }
  // the counter-empty reference picture (PUT/DELETE /v1/cameras/{id}/reference); the page reloads to show it
  function reference(method, body) {
    var st = document.getElementById("ref-status");
    fetch("/v1/cameras/" + encodeURIComponent(data.camera_id) + "/reference", {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": data.csrf},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (b) { return {ok: r.ok, body: b}; });
    }).then(function (res) {
      if (!res.ok) {
        var code = res.body.error && res.body.error.code;
        st.textContent = code === "not_empty" ? W.ref_not_empty : code === "no_footage" ? W.ref_no_footage : W.ref_failed;
        st.className = "small error";
        return;
      }
      st.textContent = method === "PUT" ? W.ref_taken : W.ref_cleared;
      st.className = "small";
      window.setTimeout(function () { window.location.reload(); }, 600);
    }).catch(function () { st.textContent = W.ref_failed; st.className = "small error"; });
  }
  var take = document.getElementById("ref-take");
  if (take) take.addEventListener("click", function () { reference("PUT", {}); });
  var clr = document.getElementById("ref-clear");
  if (clr) clr.addEventListener("click", function () { reference("DELETE"); });
  draw();
})();
