// The bed-hanging strip (templates/_bed_timeline.html): a click on a check replays that check's footage in
// the case's player (player.js, window.dcPlayer) and shows the frame the check kept.
(function () {
  "use strict";
  document.querySelectorAll(".ward-timeline").forEach(function (box) {
    var fig = box.querySelector(".wt-frame"), img = fig.querySelector("img"), cap = fig.querySelector("figcaption");
    box.querySelectorAll("button.wt-cell").forEach(function (b) {
      b.addEventListener("click", function () {
        box.querySelectorAll("button.wt-cell.on").forEach(function (x) { x.classList.remove("on"); });
        b.classList.add("on");
        img.src = b.dataset.frame; cap.textContent = b.title; fig.hidden = false;
        if (window.dcPlayer) {
          window.dcPlayer.load({id: b.dataset.camera, name: b.dataset.name, start: b.dataset.start, end: b.dataset.end,
                                clip: b.dataset.clip, info: b.dataset.info}, Date.parse(b.dataset.at));
          var p = document.getElementById("player-box"); if (p && p.scrollIntoView) p.scrollIntoView({block: "nearest"});
        }
      });
    });
  });
})();
