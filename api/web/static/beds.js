// Bed editor: click on the ward camera's still frame to place the corners of a bed, name it, save it
// (PUT /v1/beds; the session cookie authenticates, X-CSRF-Token proves the page sent it); delete a bed
// (DELETE /v1/beds/{id}); take a bed's empty picture from a recorded moment (PUT /v1/beds/{id}/reference).
// Coordinates are fractions of the frame (0..1); the SVG is 1000x1000 units.
(function () {
  "use strict";
  var dataEl = document.getElementById("beds-data"), svg = document.getElementById("bed-svg");
  if (!dataEl || !svg) return;
  var data = JSON.parse(dataEl.textContent), W = data.words, NS = "http://www.w3.org/2000/svg";
  var draft = [], list = document.getElementById("bed-list"), status = document.getElementById("bed-status");
  var info = document.getElementById("bed-draft");

  function say(text, bad) { status.textContent = text; status.className = "small" + (bad ? " error" : ""); }
  function el(name, attrs) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function pts(points) { return points.map(function (p) { return (p[0] * 1000).toFixed(1) + "," + (p[1] * 1000).toFixed(1); }).join(" "); }
  function api(method, url, body) {
    return fetch(url, {method: method, credentials: "same-origin",
                       headers: {"Content-Type": "application/json", "X-CSRF-Token": data.csrf},
                       body: body === undefined ? undefined : JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (b) { return {ok: r.ok, body: b}; }); });
  }
  function reason(res) { return (res.body.error && res.body.error.reason) ? "：" + res.body.error.reason : ""; }

  function draw() {
    svg.textContent = "";
    data.beds.forEach(function (b) {
      svg.appendChild(el("polygon", {points: pts(b.region), "class": "zone zone-customer bed", "data-bed": b.bed}));
      var t = el("text", {x: b.region[0][0] * 1000 + 8, y: b.region[0][1] * 1000 + 32});
      t.textContent = b.bed;
      svg.appendChild(t);
    });
    if (draft.length) {
      svg.appendChild(el("polyline", {points: pts(draft), "class": "draft"}));
      draft.forEach(function (p) { svg.appendChild(el("circle", {cx: p[0] * 1000, cy: p[1] * 1000, r: 7, "class": "draft-point"})); });
    }
    if (info) info.textContent = W.bed_points.replace("{n}", draft.length);
    list.textContent = "";
    if (!data.beds.length) {
      var none = document.createElement("li"); none.className = "muted"; none.textContent = W.bed_none; list.appendChild(none);
    }
    data.beds.forEach(function (b) {
      var li = document.createElement("li");
      li.setAttribute("data-bed", b.bed);
      var name = document.createElement("span");
      name.textContent = b.bed + (b.dept_codg ? "（" + b.dept_codg + "）" : "") + " · " +
        W.bed_ref_day + (b.reference.day ? W.bed_ref_yes : W.bed_ref_no) + " · " +
        W.bed_ref_night + (b.reference.night ? W.bed_ref_yes : W.bed_ref_no);
      li.appendChild(name);
      if (data.editable) {
        ["day", "night"].forEach(function (light) {
          var take = document.createElement("button");
          take.type = "button"; take.className = "link bed-ref-" + light;
          take.textContent = W["bed_take_" + light];
          take.addEventListener("click", function () {
            var at = document.getElementById("bed-ref-at").value;
            if (!at) { say(W.bed_ref_failed, true); return; }
            if (at.length === 16) at += ":00";
            api("PUT", "/v1/beds/" + b.id + "/reference", {at: at + data.offset, light: light}).then(function (res) {
              if (!res.ok) { say(W.bed_ref_failed + reason(res), true); return; }
              replace(res.body); say(W.bed_ref_taken, false);
            });
          });
          li.appendChild(take);
        });
        var del = document.createElement("button");
        del.type = "button"; del.className = "link bed-delete"; del.textContent = W.bed_delete;
        del.addEventListener("click", function () {
          api("DELETE", "/v1/beds/" + b.id).then(function (res) {
            if (!res.ok) { say(W.bed_save_failed + reason(res), true); return; }
            data.beds = data.beds.filter(function (x) { return x.id !== b.id; }); draw();
          });
        });
        li.appendChild(del);
      }
      list.appendChild(li);
    });
  }
  function replace(bed) {
    data.beds = data.beds.filter(function (x) { return x.id !== bed.id; }).concat([bed]);
    data.beds.sort(function (a, b) { return a.bed < b.bed ? -1 : 1; });
    draw();
  }

  if (data.editable) {
    svg.addEventListener("click", function (e) {
      var r = svg.getBoundingClientRect();
      var x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
      if (draft.length >= 32) return;
      draft.push([Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000]);
      draw();
    });
    document.getElementById("bed-undo").addEventListener("click", function () { draft.pop(); draw(); });
    document.getElementById("bed-save").addEventListener("click", function () {
      var no = document.getElementById("bed-no").value.trim(), dept = document.getElementById("bed-dept").value.trim();
      if (draft.length < 3 || !no) { say(W.bed_need_points, true); return; }
      api("PUT", "/v1/beds", {org_id: data.org_id, bed: no, dept_codg: dept, camera_id: data.camera_id, region: draft})
        .then(function (res) {
          if (!res.ok) { say(W.bed_save_failed + reason(res), true); return; }
          draft = []; replace(res.body); say(W.bed_saved, false);
          svg.setAttribute("data-saved", String(Date.now()));
        }).catch(function (err) { say(W.bed_save_failed + "：" + err, true); });
    });
  }
  draw();
})();
