"""H.264 copies of H.265 clips for browsers that cannot decode HEVC (Debian's Chromium is one).

Footage stays as the camera sent it (evidence: its bytes and hashes never change). A browser that
says it cannot play HEVC gets, for the clip it asks for, a copy transcoded to H.264 on demand:

* bounded CPU: at most ``concurrency`` transcodes at once; a request beyond that is refused at once
  (the API answers 503 ``busy`` with Retry-After) rather than queueing behind minutes of work;
* cached in ``directory`` under a key of the clip's segments (their SHA-256) and bounds, so a replay,
  a seek (Range requests) or a second viewer costs nothing more; the cache is bounded in bytes,
  oldest used first out;
* timestamps kept: the copy's frames sit at the same clip times as the original's (recording gaps
  stay jumps of the clock), so the clip headers describe both.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av

log = logging.getLogger(__name__)

FMP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
HEVC_SAMPLE_ENTRIES = (b"hvc1", b"hev1")


class TranscodeBusy(RuntimeError):
    """Every transcode slot is taken."""


def is_hevc(init: bytes) -> bool:
    """Whether a clip's init (ftyp + moov) describes H.265 (an hvc1 or hev1 sample entry)."""
    return any(tag in init for tag in HEVC_SAMPLE_ENTRIES)


class PlayableCopies:
    def __init__(self, directory: Path, concurrency: int, cache_bytes: int, crf: int = 26):
        self.directory = Path(directory)
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.cache_bytes = cache_bytes
        self.crf = crf
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def key(parts: Iterable[str]) -> str:
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]

    def get(self, key: str, source: Iterable[bytes]) -> Path:
        """The cached H.264 copy for ``key``, transcoded from the MP4 bytes of ``source`` if not there.
        Raises TranscodeBusy when every slot is taken (nothing started)."""
        path = self.directory / f"{key}.mp4"
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one transcode per clip; the others wait for it and read the result
            if path.exists():
                os.utime(path)
                return path
            if not self.slots.acquire(blocking=False):
                raise TranscodeBusy("all transcode slots are busy")
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._transcode(source, path)
            finally:
                self.slots.release()
        with self._guard:
            self._locks.pop(key, None)
        self._evict(keep=path)
        return path

    def _transcode(self, source: Iterable[bytes], path: Path) -> None:
        with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".src") as src_file:
            for chunk in source:
                src_file.write(chunk)
            src_file.flush()
            tmp = path.with_name(path.name + ".part")
            try:
                with av.open(src_file.name) as src, av.open(str(tmp), "w", format="mp4", options=FMP4) as dst:
                    ist = src.streams.video[0]
                    ist.thread_type = "AUTO"
                    ost = dst.add_stream("libx264", rate=ist.average_rate or 25)
                    ost.width, ost.height, ost.pix_fmt = ist.codec_context.width, ist.codec_context.height, "yuv420p"
                    ost.time_base = ist.time_base or Fraction(1, 90000)
                    ost.codec_context.time_base = ost.time_base
                    # a key frame where the original has one (the clip's fragments, seeking), fast preset
                    ost.options = {"preset": "veryfast", "crf": str(self.crf), "profile": "main",
                                   "x264-params": "scenecut=0:bframes=0"}
                    for frame in src.decode(ist):
                        if frame.pts is None:
                            continue
                        frame.pict_type = av.video.frame.PictureType.I if frame.key_frame else \
                            av.video.frame.PictureType.NONE
                        for pkt in ost.encode(frame):
                            dst.mux(pkt)
                    for pkt in ost.encode(None):
                        dst.mux(pkt)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        files = sorted((p for p in self.directory.glob("*.mp4")), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for p in files:
            if total <= self.cache_bytes:
                break
            if p != keep:
                total -= p.stat().st_size
                p.unlink(missing_ok=True)
