"""Face work of terminal captures (decode, detect, align, quality, embed): in the calling thread, or in a
pool of model processes.

Why processes: the Python side of face work (Pillow and numpy glue, YuNet's output decoding, alignment)
holds the GIL between the ONNX calls. In the API process under load that stalled the event loop, so
refusals and health probes waited behind it (bench/overload.py). In model processes the API process keeps
only HTTP, the index and the store; each model process runs one analysis at a time on one ONNX thread
(sized to the cores, the admission gate in front), and may run at a lower CPU priority so that the API
answers first when the cores are full. Sessions stay apart from models as in Immich's machine-learning
service: each process loads and hash-checks the pack itself (vision/packs.py).

Both kinds answer the same: ``analyze_capture(data) -> list[AnalyzedFace]`` (largest first, at most one
embedding), raising :class:`~vision.image.ImageRejected` for a refused upload and :class:`WorkerLost`
when model processes died twice during the analysis (they are replaced each time).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from kernel.errors import Refusal

from .image import decode_image
from .phash import phash
from .pipeline import FacePipeline

log = logging.getLogger("dualcheck.vision")


class WorkerLost(Refusal):
    """503: a model process died during this analysis (killed, out of memory); nothing was decided."""

    def __init__(self):
        super().__init__(503, "face_service_restarting",
                         "the face service restarted during this analysis: retry in a moment or fall back")

    def __reduce__(self):
        return type(self), ()


@dataclass(frozen=True)
class CaptureLimits:
    """What decoding an untrusted capture may take, and the detector's working size for a close-up."""
    max_bytes: int
    max_pixels: int
    max_decoded_bytes: int
    decode_memory_bytes: int
    max_side: int
    detect_side: int | None

    @classmethod
    def from_settings(cls, s) -> CaptureLimits:
        return cls(s.max_upload_bytes, s.max_image_pixels, s.max_decoded_bytes, s.decode_memory_bytes,
                   s.max_decoded_side, s.verify_detect_max_side)


class CaptureFaces(list):
    """The faces of a capture (largest first), and the perceptual hash of the whole decoded picture, for the
    replay check (facepay/capture_checks.py): computed where the picture is decoded, so that the API process
    never needs to decode it itself."""

    phash: int | None = None


def analyze_capture(pipeline: FacePipeline, limits: CaptureLimits, data: bytes) -> CaptureFaces:
    """Decode within ``limits``, then the close-up analysis with one embedding (only the largest face can be
    the subject)."""
    img = decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels,
                       max_decoded_bytes=limits.max_decoded_bytes, decode_memory_bytes=limits.decode_memory_bytes,
                       max_side=limits.max_side)
    out = CaptureFaces(pipeline.analyze_closeup(img, max_embed=1, small_side=limits.detect_side))
    out.phash = phash(img)
    return out


class InProcessFaces:
    """Face work in the calling thread, on this process's pipeline (tests, the CLI, face_processes = 0)."""

    def __init__(self, pipeline: FacePipeline, limits: CaptureLimits):
        self.pipeline, self.limits = pipeline, limits

    def analyze_capture(self, data: bytes) -> CaptureFaces:
        return analyze_capture(self.pipeline, self.limits, data)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- the model process side -------------------------------------------------------------------------------
_PIPELINE: FacePipeline | None = None
_LIMITS: CaptureLimits | None = None


def _init_worker(settings, limits: CaptureLimits, nice: int) -> None:
    global _PIPELINE, _LIMITS
    if nice:
        os.nice(nice)  # the API's threads (HTTP, refusals, probes) run first when the cores are full
    _PIPELINE, _LIMITS = FacePipeline.from_settings(settings), limits


def _analyze_in_worker(data: bytes) -> CaptureFaces:
    faces = analyze_capture(_PIPELINE, _LIMITS, data)
    for f in faces:  # the 112x112 crop is not needed by the caller: do not send it back through the pipe
        f.aligned = None
    return faces


def _ready() -> int:
    time.sleep(0.05)  # hold this process a moment, so that the other ready calls reach the other processes
    return os.getpid()


class FaceProcesses:
    """A pool of ``processes`` model processes (spawned: no fork of a process with ONNX threads)."""

    def __init__(self, settings, limits: CaptureLimits, *, processes: int, nice: int = 0):
        self.settings, self.limits, self.processes, self.nice = settings, limits, processes, nice
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.settings, self.limits, self.nice))

    def start(self) -> list[int]:
        """Start every model process and wait until each has loaded its models (before the first terminal
        waits for them); their process ids."""
        pool, seen = self._pool, set()
        for _ in range(50):
            seen |= {f.result() for f in [pool.submit(_ready) for _ in range(self.processes)]}
            if len(seen) >= self.processes:
                break
        return sorted(seen)

    def pids(self) -> list[int]:
        return sorted(p.pid for p in dict(self._pool._processes or {}).values())  # a copy: the pool's thread edits it

    def analyze_capture(self, data: bytes) -> CaptureFaces:
        """The analysis in a model process. When a process dies, every analysis waiting in the pool fails with
        it; an analysis has no side effects, so each is tried once more on new processes, and only a capture
        that fails twice (one that kills its process, say) is answered with :class:`WorkerLost`."""
        for _ in range(2):
            pool = self._pool
            try:
                return pool.submit(_analyze_in_worker, data).result()
            except BrokenProcessPool:
                self._replace(pool)
        raise WorkerLost()

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is broken:  # the first thread to see it rebuilds; the others use the new pool
                log.error("a model process died; starting new ones")
                self._pool = self._new_pool()
                broken.shutdown(wait=False, cancel_futures=True)
            return self._pool

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
