"""H.264 copies of H.265 clips for browsers that cannot decode HEVC (Debian's Chromium is one).

Footage stays as the camera sent it (evidence: its bytes and hashes never change). A browser that
says it cannot play HEVC gets, for the clip it asks for, a copy transcoded to H.264 on demand:

* bounded CPU: at most ``concurrency`` transcodes at once; a request beyond that is refused at once
  (the API answers 503 ``busy`` with Retry-After) rather than queueing behind minutes of work;
* streamed as it is made (fragments as they are written), then
* cached in ``directory`` under a key of the clip's segments (their SHA-256) and bounds, so a replay,
  a seek (Range requests) or a second viewer costs nothing more; the cache is bounded in bytes,
  oldest used first out;
* timestamps kept: the copy's frames sit at the same clip times as the original's (recording gaps
  stay jumps of the clock), so the clip headers describe both.

HLS (``hls.m3u8?hevc=0``) gets the same per recorded segment: each media segment of the playlist is
one recorded segment, so its copy is keyed by that segment's hash and cut with :func:`split_init` into
the ``EXT-X-MAP`` init (ftyp + moov, written first by the fragmented muxer) and the fragments; both
are sent as soon as they are written, and a seek to a segment transcodes that segment only.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av

log = logging.getLogger(__name__)

FMP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
HEVC_SAMPLE_ENTRIES = (b"hvc1", b"hev1")


class TranscodeBusy(RuntimeError):
    """Every transcode slot is taken."""


class _Job:
    def __init__(self, path: Path):
        self.path = path  # where the finished copy goes; it is written to path + ".part" first
        self.done = threading.Event()
        self.error: Exception | None = None


def split_init(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """A fragmented MP4's init (its boxes up to and including ``moov``) and an iterator of the bytes
    after it, reading ``chunks`` only as far as needed for the init."""
    it = iter(chunks)
    buf = b""
    pos = 0
    while True:
        while len(buf) - pos < 8:
            chunk = next(it, None)
            if chunk is None:
                raise ValueError("no moov box: not a fragmented MP4")
            buf += chunk
        size = int.from_bytes(buf[pos:pos + 4], "big")
        kind = buf[pos + 4:pos + 8]
        if size < 8:
            raise ValueError("bad MP4 box size")
        while len(buf) < pos + size:
            chunk = next(it, None)
            if chunk is None:
                raise ValueError("truncated MP4 init")
            buf += chunk
        pos += size
        if kind == b"moov":
            break

    def rest() -> Iterator[bytes]:
        if len(buf) > pos:
            yield buf[pos:]
        yield from it

    return buf[:pos], rest()


def file_chunks(path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while data := f.read(chunk):
            yield data


def is_hevc(init: bytes) -> bool:
    """Whether a clip's init (ftyp + moov) describes H.265 (an hvc1 or hev1 sample entry)."""
    return any(tag in init for tag in HEVC_SAMPLE_ENTRIES)


class PlayableCopies:
    def __init__(self, directory: Path, concurrency: int, cache_bytes: int, crf: int = 26):
        self.directory = Path(directory)
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.cache_bytes = cache_bytes
        self.crf = crf
        self._jobs: dict[str, _Job] = {}  # transcodes under way, by key
        self._guard = threading.Lock()

    @staticmethod
    def key(parts: Iterable[str]) -> str:
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]

    def open(self, key: str, source: Iterable[bytes]) -> tuple[Path | None, Iterator[bytes] | None]:
        """``(path, None)`` when the copy for ``key`` is cached; else ``(None, bytes)``: the copy as it
        is being made from the MP4 bytes of ``source`` (fragments are sent as they are written, so the
        first bytes come after the first key-frame interval, not after the whole clip). A second
        request for a clip being made follows the same transcode. Raises TranscodeBusy when a new
        transcode would be needed and every slot is taken (nothing started)."""
        path = self.directory / f"{key}.mp4"
        with self._guard:
            if path.exists():
                os.utime(path)
                return path, None
            job = self._jobs.get(key)
            if job is None:
                if not self.slots.acquire(blocking=False):
                    raise TranscodeBusy("all transcode slots are busy")
                self.directory.mkdir(parents=True, exist_ok=True)
                job = self._jobs[key] = _Job(path)
                threading.Thread(target=self._run, args=(key, job, source), name=f"transcode-{key[:8]}",
                                 daemon=True).start()
        return None, self._follow(job)

    def get(self, key: str, source: Iterable[bytes]) -> Path:
        """The cached copy for ``key``, made first if needed (waits for the whole transcode)."""
        path, stream = self.open(key, source)
        if stream is not None:
            for _ in stream:
                pass
            path = self.directory / f"{key}.mp4"
        return path

    def _run(self, key: str, job: "_Job", source: Iterable[bytes]) -> None:
        try:
            self._transcode(source, job.path)
        except Exception as e:  # the follower ends its response short; the next request tries again
            log.error("transcode of %s failed: %s", key[:12], e)
            job.error = e
        finally:
            self.slots.release()
            with self._guard:
                self._jobs.pop(key, None)
            job.done.set()
        if job.error is None:
            self._evict(keep=job.path)

    @staticmethod
    def _follow(job: "_Job") -> Iterator[bytes]:
        part = job.path.with_name(job.path.name + ".part")
        f = None
        while f is None:
            try:
                f = open(part, "rb")
            except FileNotFoundError:
                if job.done.is_set():  # already finished (renamed) or failed
                    if job.error is not None:
                        raise RuntimeError(f"transcode failed: {job.error}") from None
                    f = open(job.path, "rb")
                else:
                    time.sleep(0.02)
        with f:
            while True:
                chunk = f.read(1 << 20)
                if chunk:
                    yield chunk
                    continue
                if job.done.is_set():
                    rest = f.read()  # written between the last read and the end
                    if rest:
                        yield rest
                    if job.error is not None:
                        raise RuntimeError(f"transcode failed: {job.error}")
                    return
                time.sleep(0.05)

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
