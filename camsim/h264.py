"""Encode BGR frames into the simulator's footage layout (footage.h264 + frames.json + truth.json).

The same camera-like x264 settings as :mod:`camsim.footage` (Main profile, no B-frames, a keyframe
exactly every ``keyint_frames``, SPS/PPS before every keyframe, an AUD per access unit), so that
:class:`camsim.footage.Footage`, the RTSP server and tests/replay/segmenter.py read the result as
they read the scripted footage. Used by the counter scenes and the real-footage transcoder.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np


class H264Writer:
    """Write frames one by one; :meth:`close` returns the encoding facts for truth.json."""

    def __init__(self, out_dir: Path, *, width: int, height: int, fps: int, bitrate: int, keyint_frames: int,
                 profile: str = "main", preset: str = "superfast"):
        if width % 2 or height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        self.out_dir, self.width, self.height, self.fps = out_dir, width, height, fps
        self.profile, self.bitrate, self.keyint_frames = profile, bitrate, keyint_frames
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.framerate = Fraction(fps)
        ctx.time_base = Fraction(1, fps)
        ctx.bit_rate = bitrate
        ctx.gop_size = keyint_frames
        ctx.max_b_frames = 0
        kbps = max(1, bitrate // 1000)
        ctx.options = {
            "preset": preset,
            "profile": profile,
            # like a camera encoder: one slice per frame, no B-frames, no lookahead, capped rate
            "x264-params": (f"keyint={keyint_frames}:min-keyint={keyint_frames}:scenecut=0:bframes=0:"
                            "sliced-threads=0:rc-lookahead=0:sync-lookahead=0:"
                            f"repeat-headers=1:aud=1:vbv-maxrate={int(kbps * 1.5)}:vbv-bufsize={kbps}"),
        }
        self.ctx = ctx
        self.f = open(out_dir / "footage.h264", "wb")
        self.index: list[list] = []
        self.offset = 0
        self.n = 0

    def _write(self, packets) -> None:
        for p in packets:
            data = bytes(p)
            self.f.write(data)
            self.index.append([self.offset, len(data), bool(p.is_keyframe)])
            self.offset += len(data)

    def add(self, bgr: np.ndarray) -> None:
        vf = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        vf.pts = self.n
        self.n += 1
        self._write(self.ctx.encode(vf))

    def close(self) -> dict:
        self._write(self.ctx.encode(None))
        self.f.close()
        if len(self.index) != self.n:
            raise RuntimeError(f"encoder produced {len(self.index)} packets for {self.n} frames")
        (self.out_dir / "frames.json").write_text(json.dumps({"frames": self.index}, separators=(",", ":")))
        return {
            "file": "footage.h264", "index": "frames.json", "codec": "h264", "profile": self.profile,
            "pix_fmt": "yuv420p", "width": self.width, "height": self.height, "fps": self.fps,
            "frames": self.n, "duration_s": self.n / self.fps, "keyint_s": self.keyint_frames / self.fps,
            "keyint_frames": self.keyint_frames, "bitrate": self.bitrate, "bytes": self.offset,
        }


def cached_render(root: Path, key: str, make: Callable[[Path], dict], force: bool = False) -> Path:
    """Directory ``root/key`` made by ``make(tmpdir) -> truth`` once (file lock, atomic rename):
    concurrent test workers and bench processes render a scene only once."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    if (final / "truth.json").exists() and not force:
        return final
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "truth.json").exists() and not force:
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            truth = make(tmp)
            (tmp / "truth.json").write_text(json.dumps(truth, indent=None, separators=(",", ":")))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final
