// The case page: aligned faces side by side (the face box of each comes with its crop), enlarging the
// original with the face box drawn, and the keyboard shortcuts documented on the page.
(function () {
  "use strict";
  var dialog = document.getElementById("face-dialog");
  var big = document.getElementById("face-big");
  var box = document.getElementById("face-box");
  document.querySelectorAll("figure.face-cmp").forEach(function (fig) {
    var img = fig.querySelector("img");
    img.onerror = function () { fig.classList.add("gone"); };
    img.src = fig.dataset.aligned;
    function showBox() {
      if (!fig.dataset.box) return;
      var v = fig.dataset.box.split(",").map(Number);
      box.style.left = (v[0] * 100) + "%"; box.style.top = (v[1] * 100) + "%";
      box.style.width = ((v[2] - v[0]) * 100) + "%"; box.style.height = ((v[3] - v[1]) * 100) + "%";
      box.hidden = false;
    }
    function enlarge() {
      box.hidden = true;
      big.onload = function () {
        if (fig.dataset.box !== undefined) { showBox(); return; }
        // where the face is in the original comes with its aligned crop (X-Face-Box)
        fetch(fig.dataset.aligned, { credentials: "same-origin" }).then(function (r) {
          fig.dataset.box = (r.ok && r.headers.get("X-Face-Box")) || "";
          showBox();
        });
      };
      big.src = fig.dataset.original;
      big.alt = img.alt;
      if (!dialog.open) dialog.showModal();
    }
    fig.addEventListener("click", enlarge);
    fig.addEventListener("keydown", function (ev) { if (ev.key === "Enter") enlarge(); });
  });
  var keys = { j: "next-case", k: "prev-case", c: "do-confirm", d: "do-dismiss", i: "do-inquiry", a: "do-ack" };
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target.tagName || "").toLowerCase();
    if (ev.ctrlKey || ev.metaKey || ev.altKey || tag === "textarea" || tag === "input" || tag === "select") return;
    if (dialog && dialog.open) return;
    var id = keys[ev.key.toLowerCase()];
    var el = id && document.getElementById(id);
    if (!el) return;
    ev.preventDefault();
    if (el.tagName === "A") { window.location.href = el.href; return; }
    var note = document.getElementById("note");
    if (note && !note.value.trim()) { note.focus(); note.dataset.pending = el.id; return; }
    el.click();
  });
  var note = document.getElementById("note");
  if (note) note.addEventListener("keydown", function (ev) {
    // after a shortcut asked for the note, Ctrl+Enter carries out the action it was for
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && note.dataset.pending) {
      ev.preventDefault();
      document.getElementById(note.dataset.pending).click();
    }
  });
})();
(function () {
  var p = document.getElementById("print-case");
  if (p) p.addEventListener("click", function () { window.print(); });
})();
