"""Encode BGR frames into the simulator's footage layout (footage.h264|h265 + frames.json + truth.json).

The same camera-like encoder settings as :mod:`camsim.footage` (Main profile, a keyframe exactly every
``keyint_frames``, parameter sets before every keyframe, an AUD per access unit, closed GOPs), so that
:class:`camsim.footage.Footage`, the RTSP server and tests/replay/segmenter.py read the result as
they read the scripted footage. Used by the counter scenes and the real-footage transcoder.

``codec`` is ``h264`` (libx264) or ``h265`` (libx265, as the field's Hikvision/Dahua/Uniview main
streams send); ``bframes`` > 0 adds B-frames (main/high-profile cameras use them). frames.json rows
are ``[offset, size, is_key, delay]`` in decode order, ``delay`` = pts - dts in frames (0 without
B-frames): the RTSP server stamps PTS = DTS + delay.
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

CODECS = ("h264", "h265")
DECODERS = {"h264": "h264", "h265": "hevc"}  # FFmpeg's decoder / demuxer name of each


class H264Writer:
    """Write frames one by one; :meth:`close` returns the encoding facts for truth.json."""

    def __init__(self, out_dir: Path, *, width: int, height: int, fps: int, bitrate: int, keyint_frames: int,
                 profile: str = "main", preset: str = "superfast", codec: str = "h264", bframes: int = 0):
        if width % 2 or height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}")
        self.out_dir, self.width, self.height, self.fps = out_dir, width, height, fps
        self.profile, self.bitrate, self.keyint_frames = profile, bitrate, keyint_frames
        self.codec, self.bframes = codec, bframes
        ctx = av.CodecContext.create("libx264" if codec == "h264" else "libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.framerate = Fraction(fps)
        ctx.time_base = Fraction(1, fps)
        ctx.bit_rate = bitrate
        ctx.gop_size = keyint_frames
        ctx.max_b_frames = bframes
        kbps = max(1, bitrate // 1000)
        # like a camera encoder: a fixed GOP, closed, B-frames only if asked (no pyramid), little
        # lookahead, capped rate, parameter sets and an AUD with every keyframe
        gop = f"keyint={keyint_frames}:min-keyint={keyint_frames}:scenecut=0:bframes={bframes}:open-gop=0:"
        rate = f"vbv-maxrate={int(kbps * 1.5)}:vbv-bufsize={kbps}:repeat-headers=1:aud=1"
        if codec == "h264":
            ctx.options = {"preset": preset, "profile": profile, "x264-params": (
                gop + "b-pyramid=none:sliced-threads=0:rc-lookahead=0:sync-lookahead=0:" + rate)}
        else:
            ctx.options = {"preset": preset, "profile": profile, "x265-params": (
                gop + f"b-pyramid=0:rc-lookahead={max(1, bframes + 1)}:frame-threads=1:log-level=error:" + rate)}
        self.ctx = ctx
        self.file = f"footage.{codec}"
        self.f = open(out_dir / self.file, "wb")
        self.index: list[list] = []
        self.offset = 0
        self.n = 0

    def _write(self, packets) -> None:
        for p in packets:
            data = bytes(p)
            self.f.write(data)
            self.index.append([self.offset, len(data), bool(p.is_keyframe), int(p.pts - p.dts)])
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
            "file": self.file, "index": "frames.json", "codec": self.codec, "bframes": self.bframes,
            "profile": self.profile,
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
