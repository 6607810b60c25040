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
embedding), or ``submit(data)`` and later ``.result()`` (the caller works meanwhile), raising
:class:`~vision.image.ImageRejected` for a refused upload and :class:`WorkerLost` when model processes died
twice during the analysis (they are replaced each time).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
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


class Later:
    """An in-thread analysis run when its result is asked for (the same shape as :class:`Pending`)."""

    def __init__(self, faces: InProcessFaces, data: bytes):
        self.faces, self.data = faces, data

    def result(self) -> CaptureFaces:
        return self.faces.analyze_capture(self.data)

    def abandon(self) -> None:
        pass


class InProcessFaces:
    """Face work in the calling thread, on this process's pipeline (tests, the CLI, face_processes = 0)."""

    def __init__(self, pipeline: FacePipeline, limits: CaptureLimits):
        self.pipeline, self.limits = pipeline, limits

    def analyze_capture(self, data: bytes) -> CaptureFaces:
        return analyze_capture(self.pipeline, self.limits, data)

    def submit(self, data: bytes) -> Later:
        return Later(self, data)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- the model process side -------------------------------------------------------------------------------
def _serve(conn, settings, limits: CaptureLimits, nice: int) -> None:
    """A model process: load the pack, say so (its pid), then answer one capture at a time on its pipe."""
    if nice:
        os.nice(nice)  # the API's threads (HTTP, refusals, probes) run first when the cores are full
    pipeline = FacePipeline.from_settings(settings)
    conn.send(os.getpid())
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):  # the API process closed the pipe or died: nothing more to do
            return
        try:
            faces = analyze_capture(pipeline, limits, data)
            for f in faces:  # the 112x112 crop is not needed by the caller: do not send it back through the pipe
                f.aligned = None
            reply = (True, faces)
        except Exception as e:  # ImageRejected (picklable) or a fault: re-raised in the API process
            reply = (False, e)
        try:
            conn.send(reply)
        except Exception as e:  # an exception that does not pickle: its text still reaches the caller
            conn.send((False, RuntimeError(f"{type(e).__name__} in a model process: {reply[1]!r}")))


class _Worker:
    """One model process and the API side of its pipe: used by one request thread at a time."""

    def __init__(self, ctx, settings, limits: CaptureLimits, nice: int):
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_serve, args=(child, settings, limits, nice), daemon=True,
                                name="dualcheck-face")
        self.proc.start()
        child.close()
        self.pid: int | None = None  # known once the process has loaded its models

    def ready(self) -> int:
        if self.pid is None:
            self.pid = self.conn.recv()
        return self.pid

    def stop(self) -> None:
        self.conn.close()
        self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


class Pending:
    """An analysis sent to a model process; :meth:`result` waits for it. Between the two the calling thread is
    free (the verifier stores the capture meanwhile), with no other thread in between: the request thread
    writes the capture to the process's pipe and reads the answer itself."""

    def __init__(self, pool: FaceProcesses, data: bytes):
        self.pool, self.data = pool, data
        self.worker: _Worker | None = None
        self.tries = 0
        self._send()

    def _send(self) -> None:
        while self.tries < 2:
            self.tries += 1
            w = self.pool._take()
            try:
                w.ready()
                w.conn.send_bytes(self.data)
                self.worker = w
                return
            except (EOFError, OSError):
                self.pool._replace(w)
        raise WorkerLost()

    def result(self) -> CaptureFaces:
        """The faces; raises ImageRejected as the decoder did, WorkerLost when model processes died twice."""
        while True:
            w = self.worker
            try:
                ok, value = w.conn.recv()
            except (EOFError, OSError):  # the process died during this analysis: once more on a new one
                self.worker = None
                self.pool._replace(w)
                self._send()
                continue
            self.worker = None
            self.pool._give(w)
            if not ok:
                raise value
            return value

    def abandon(self) -> None:
        """The caller failed meanwhile: wait for the answer (the process must be idle before reuse) and drop it."""
        try:
            self.result()
        except Exception:
            pass


class FaceProcesses:
    """``processes`` model processes (spawned: no fork of a process with ONNX threads), each with its own pipe.

    Not a ProcessPoolExecutor: its manager and feeder threads took three GIL hand-offs per analysis in the API
    process (docs/benchmarks.md, issue 16). Here the request thread writes to a free process's pipe and reads
    the answer. A process that dies costs only the analysis it was running, tried once more on its replacement."""

    def __init__(self, settings, limits: CaptureLimits, *, processes: int, nice: int = 0):
        self.settings, self.limits, self.processes, self.nice = settings, limits, processes, nice
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._closed = False
        self._workers: list[_Worker] = []
        self._free: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for _ in range(processes):
            self._give(self._spawn())

    def _spawn(self) -> _Worker:
        w = _Worker(self._ctx, self.settings, self.limits, self.nice)
        with self._lock:
            self._workers.append(w)
        return w

    def _take(self) -> _Worker:
        if self._closed:
            raise WorkerLost()
        return self._free.get()

    def _give(self, w: _Worker) -> None:
        self._free.put(w)

    def _replace(self, dead: _Worker) -> None:
        """A process died (or its pipe broke): stop what is left of it and put a new one in its place."""
        log.error("a model process died; starting a new one")
        with self._lock:
            if dead in self._workers:
                self._workers.remove(dead)
        dead.stop()
        if not self._closed:
            self._give(self._spawn())

    def start(self) -> list[int]:
        """Wait until every model process has loaded its models (before the first terminal waits for them);
        their process ids."""
        taken = [self._take() for _ in range(self.processes)]
        try:
            for w in taken:
                try:
                    w.ready()
                except (EOFError, OSError):
                    pass  # died while loading: replaced on first use
        finally:
            for w in taken:
                self._give(w)
        return self.pids()

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.proc.pid for w in self._workers if w.proc.pid is not None)

    def submit(self, data: bytes) -> Pending:
        return Pending(self, data)

    def analyze_capture(self, data: bytes) -> CaptureFaces:
        """The analysis in a model process. A process that dies during it is replaced and the analysis tried once
        more there (an analysis has no side effects); a capture that fails twice (one that kills its process,
        say) is answered with :class:`WorkerLost`."""
        return self.submit(data).result()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        for w in workers:
            w.stop()
