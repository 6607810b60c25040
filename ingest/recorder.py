"""`dualcheck record`: record every camera of this shard into the footage bucket, around the clock.

Stages (one module each, like Frigate's record/ package):

* :mod:`ingest.leases` - which cameras this recorder records now: leases shared with the other live
  recorders (fair share, failover when one dies); here, :class:`Recorder` runs the lease rounds;
* :mod:`ingest.sharding` - an optional static filter of the registry (stable hash, ``--shard i/n``);
* here, :class:`CameraRecorder` - a thread per camera: RTSP/TCP via PyAV, reconnect with capped
  exponential backoff, gaps, status;
* :mod:`ingest.clock` - stream timestamps -> wall-clock UTC (RTCP sender report or receive clock);
* :mod:`ingest.segmenter` - remux without transcoding into fragmented MP4 cut at keyframes;
* :mod:`ingest.spool` - bounded local spool, crash recovery and salvage of unfinished files;
* :mod:`ingest.uploader` - upload + index in order, idempotent, retried while store/DB are down;
* :mod:`ingest.health` - ``camera_health()`` for the API.

Crash data-loss window (SIGKILL, power cut): segments are fragmented MP4 with one fragment per
keyframe, flushed to the OS when complete. On restart the unfinished file is salvaged up to its last
complete fragment and indexed as a short segment, so a kill loses the GOP that was being received
(at most one keyframe interval of the camera, typically 1-4 s) plus the time until the recorder is
back and reconnected.

Credentials: the URL with user:password is only ever handed to FFmpeg. Every error text that may
quote it (PyAV puts the URL in its exceptions) goes through :func:`redact` before it is logged or
stored.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from urllib.parse import quote

import av
from sqlalchemy import insert, select, update

from ingest import leases
from ingest.cameras import RtspTarget, active_cameras
from ingest.clock import WallClock
from ingest.credentials import PREFIX as SEALED_PREFIX
from ingest.credentials import CredentialBox, CredentialKeyError
from ingest.segmenter import SegmentWriter
from ingest.sharding import ALL, Shard
from ingest.spool import GapOp, SegmentMeta, Spool, us_to_dt
from ingest.timestamps import ClockHealer, stamp
from ingest.uploader import Uploader
from kernel import metrics
from kernel.settings import Settings
from storage.db import make_engine, make_sessionmaker, session_scope
from storage.models import Camera, CameraStatus, utcnow
from storage.objects import ObjectStore

log = logging.getLogger(__name__)

DISCONTINUITY_S = 30.0  # a timestamp jump larger than this (or backwards) re-anchors the clock
STALL_S = 3.0  # a forward timestamp jump larger than this (camera sent nothing) ends the segment: a gap


# --- credentials ---------------------------------------------------------------------------------
_URL_AUTH = re.compile(r"(rtsps?://)[^/@\s'\"]+@", re.IGNORECASE)


def redact(text: str, username: str | None = None, password: str | None = None) -> str:
    """Remove credentials from a text that may quote the camera URL."""
    text = _URL_AUTH.sub(r"\1***@", str(text))
    if password:
        for form in {password, quote(password, safe="")}:
            text = text.replace(form, "***")
    return text


# --- what one camera thread reports -------------------------------------------------------------
@dataclass
class CameraState:
    state: str = "connecting"
    last_packet_at: float | None = None
    last_segment_end_us: int | None = None
    reconnects: int = 0
    error: str | None = None
    clock_source: str | None = None
    clock_offset_s: float | None = None  # camera clock - receive clock (RTCP sender report), its jumps included
    clock_jumps: int = 0


@dataclass(frozen=True)
class CameraConfig:
    """What the recorder needs from the registry; a change restarts the camera's thread."""

    id: str
    org_id: str
    url: str  # without credentials
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    segment_seconds: int = 60
    problem: str | None = None  # why the camera cannot be opened at all (e.g. its password cannot be unsealed)
    stream: str = "main"  # which of the camera's streams this records: "main" or "sub"
    sub_url: str | None = None  # main only: the sub-stream recorded beside it (record_streams "both")

    def sub(self) -> "CameraConfig | None":
        """The config of the sub-stream's recording, with the same credentials; None if not recorded."""
        return replace(self, url=self.sub_url, stream="sub", sub_url=None) if self.sub_url else None

    def open_url(self) -> str:

        return RtspTarget(self.url, self.username, self.password).with_credentials()


class CameraRecorder(threading.Thread):
    def __init__(self, rec: "Recorder", cfg: CameraConfig, takeover: leases.Claim | None = None):
        super().__init__(name=f"cam-{cfg.id}" + ("" if cfg.stream == "main" else f"-{cfg.stream}"), daemon=True)
        self.rec, self.cfg, self.s = rec, cfg, rec.settings
        self.takeover = takeover  # the lease claim that gave us the camera (its gap, its previous holder)
        self.status = CameraState()
        self.stop_evt = threading.Event()
        self.seg: SegmentWriter | None = None
        self.open_gap: tuple[int, str] | None = None  # (start_us, reason) of a gap not yet closed
        self.gap_refine: tuple[int, str] | None = None  # gap whose end follows a provisional segment start
        self.last_end_us: int | None = None  # end of the last finished segment
        self.segments = 0
        # the camera's sub-stream, recorded by a thread of its own beside this one (same lease): its
        # own connection, continuity, gaps and segments (stream "sub"), started and stopped with this
        sub_cfg = cfg.sub()
        self.sub = CameraRecorder(rec, sub_cfg, takeover) if sub_cfg is not None else None

    def start(self) -> None:
        super().start()
        if self.sub is not None:
            self.sub.start()

    # --- helpers ---------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact(text, self.cfg.username, self.cfg.password)

    def _set_state(self, state: str, error: str | None = None) -> None:
        changed = state != self.status.state
        self.status.state = state
        self.status.error = error
        if changed:
            self.rec.status_dirty.set()

    def _gap(self, start_us: int, end_us: int | None, reason: str, detail: str | None = None) -> None:
        self.rec.uploader.submit(self.rec.spool.add_gap_op(GapOp(self.cfg.id, start_us, end_us, reason, detail,
                                                                 self.cfg.stream)))

    def _begin_gap(self, start_us: int, reason: str, detail: str | None) -> None:
        if self.open_gap is None:
            self.open_gap = (start_us, reason)
            metrics.CAMERA_GAPS.labels(self.cfg.id, self.cfg.org_id, reason).inc()
            self._gap(start_us, None, reason, detail)

    def _end_gap(self, end_us: int, provisional: bool) -> None:
        if self.open_gap is not None:
            start_us, reason = self.open_gap
            self._gap(start_us, max(end_us, start_us), reason)
            self.gap_refine = (start_us, reason) if provisional else None
            self.open_gap = None

    def _finish_segment(self, end_pts: int | None = None) -> None:
        seg, self.seg = self.seg, None
        if seg is None:
            return
        done = seg.finish(end_pts)
        if done is None:
            return
        item, meta = done
        if self.gap_refine is not None and seg.provisional:  # the gap ends where the footage starts
            start_us, reason = self.gap_refine
            self._gap(start_us, max(meta.start_us, start_us), reason)
            self.gap_refine = None
        self.last_end_us = meta.end_us
        self.status.last_segment_end_us = meta.end_us
        self.segments += 1
        metrics.CAMERA_SEGMENTS.labels(self.cfg.id, self.cfg.org_id).inc()
        metrics.CAMERA_BYTES.labels(self.cfg.id, self.cfg.org_id).inc(meta.bytes)
        self.rec.uploader.submit(item)

    # --- main loop -------------------------------------------------------------------------
    def run(self) -> None:
        backoff = self.s.reconnect_initial_s
        tk = self.takeover
        if tk is not None and tk.gap_reason and tk.gap_start is not None:
            # taken over from another recorder: the hole up to our first footage is a recorded gap
            self._begin_gap(int(tk.gap_start.timestamp() * 1_000_000), tk.gap_reason,
                            f"previous recorder: {tk.previous_holder or '-'}")
        first_failure_us: int | None = None
        if self.cfg.problem:  # nothing to retry until the registry or the key changes (that restarts us)
            log.error("camera %s (%s) not recorded: %s", self.cfg.id, self.cfg.url, self.cfg.problem)
            self._begin_gap(time.time_ns() // 1000, "camera_offline", self.cfg.problem)
            self._set_state("offline", self.cfg.problem)
            self.stop_evt.wait()
            return
        while not self.stop_evt.is_set():
            if self.status.reconnects == 0 and self.status.state != "offline":
                self._set_state("connecting", self.status.error)
            err, got_packets, connected_at = None, False, time.monotonic()
            container = None
            try:
                # Read timeout via the RTSP demuxer's own socket timeout, not PyAV's read timeout:
                # PyAV's interrupt callback takes the GIL on every poll, which costs ~25 % more CPU
                # per stream with many camera threads (measured, docs/benchmarks/record.md).
                container = av.open(self.cfg.open_url(), options={
                    "rtsp_transport": "tcp", "timeout": str(int(self.s.rtsp_timeout_s * 1e6))},
                    timeout=(self.s.rtsp_timeout_s, None))
                got_packets = self._record(container)
                err = "the camera closed the stream"
            except Exception as e:  # PyAV errors, OSError, EOF: the camera is gone for now
                err = self._redact(f"{type(e).__name__}: {e}")
            finally:
                try:
                    self._finish_segment()
                except Exception as e:
                    log.error("camera %s: could not finish segment: %s", self.cfg.id, self._redact(str(e)))
                if container is not None:
                    try:
                        container.close()
                    except Exception:
                        pass
            if self.stop_evt.is_set():
                break
            now_us = time.time_ns() // 1000
            if got_packets and time.monotonic() - connected_at > 10:
                backoff = self.s.reconnect_initial_s  # it worked for a while: start the backoff over
            if first_failure_us is None:
                first_failure_us = now_us
            gap_start = self.last_end_us or first_failure_us
            self._begin_gap(gap_start, "camera_offline", err)
            log.warning("camera %s (%s) offline: %s; reconnecting in %.1f s", self.cfg.id, self.cfg.url, err,
                        backoff)
            self._set_state("offline", err)
            self.status.reconnects += 1
            metrics.CAMERA_RECONNECTS.labels(self.cfg.id, self.cfg.org_id).inc()
            self.rec.status_dirty.set()
            if self.stop_evt.wait(backoff):
                break
            backoff = min(backoff * 2, self.s.reconnect_max_s)

    def _record(self, container) -> bool:
        """Remux until the stream ends or errors. Returns whether any packet came."""
        st = container.streams.video[0]
        tb = Fraction(st.time_base)
        clock = WallClock(tb, self.s.clock_max_latency_s)
        target = max(1, self.cfg.segment_seconds)
        target_ticks = int(target / tb)
        stall_ticks, jump_ticks = int(STALL_S / tb), int(DISCONTINUITY_S / tb)
        spool = self.rec.spool
        last_dts: int | None = None
        frame_ticks = 0
        chained_start: int | None = None  # start of the next segment when back to back with the last
        got = False
        paused_full = False
        jumps_before = self.status.clock_jumps
        healer = ClockHealer(stall_ticks, float(tb))
        # the first packets of a connection come without DTS: stamp() fills them in (B-frames); the
        # healer keeps the timeline continuous when the camera's clock jumps
        for sp in healer.heal(stamp(container.demux(st))):
            if self.stop_evt.is_set():
                break
            pkt, pts, dts, now = sp.pkt, sp.pts, sp.dts, sp.received
            step, stalled = 0, False
            if last_dts is not None:
                step = dts - last_dts
                # The camera sent nothing for a while but kept the connection (a stalled encoder, a
                # privacy shutter): close the footage at the last frame and record the gap. Judged on
                # the camera's timestamps, not on when packets arrive: FFmpeg hands over the last frame
                # before a pause only when the next one comes, and a busy recorder sees silences of its
                # own; both looked like stalls on the receive clock and cut the footage in the wrong place.
                # (Its clock jumping is not a stall: the healer made those steps one frame.)
                stalled = step > stall_ticks
                if stalled and step > jump_ticks:  # a long silence: the clock starts over
                    clock = WallClock(tb, self.s.clock_max_latency_s)
                elif not stalled:
                    frame_ticks = step if frame_ticks == 0 else frame_ticks
            self.status.clock_jumps = jumps_before + healer.jumps
            duration = pkt.duration or frame_ticks or 0
            clock.observe(pts, now, container.start_time_realtime if clock.sr_offset is None else None)
            if self.seg is not None and stalled:
                if self.seg.provisional and step <= jump_ticks:
                    # this frame is on the timeline of those before the silence: a segment cut short right
                    # after connecting had only the connection's burst (late by FFmpeg's probe) to place it
                    self.seg.refine_start(clock.wall_us(self.seg.first_pts))
                self._finish_segment()  # at the end of its last frame (the latest shown, B-frames or not)
                self._begin_gap(self.last_end_us, "camera_stalled", f"no video for {float(step * tb):.1f} s")
                chained_start = None
            offset = clock.camera_offset_s()
            if offset is not None:  # the camera's own clock against ours, with its jumps
                self.status.clock_offset_s = offset - float(healer.shift * tb)
            last_dts = dts
            if not got:
                got = True
                self._set_state("online")
                log.info("camera %s (%s) online", self.cfg.id, self.cfg.url)
            self.status.last_packet_at = now
            self.status.error = None

            key = pkt.is_keyframe
            if self.seg is not None and spool.full():  # never drop spooled footage: stop taking new
                self._finish_segment()  # keeps its last frames: it ends where the last one written ends
                chained_start = self.last_end_us
            if self.seg is not None and key:
                if self.seg.provisional:
                    self.seg.refine_start(clock.wall_us(self.seg.first_pts))
                if pts - self.seg.first_pts >= target_ticks:
                    end_us = self.seg.end_us_at(pts)
                    self._finish_segment(pts)
                    fresh = clock.wall_us(pts)
                    # back to back unless the stream clock drifted from the wall clock
                    chained_start = end_us if abs(fresh - end_us) <= self.s.clock_resync_s * 1e6 else None
                    if chained_start is None:
                        log.info("camera %s: re-anchored stream clock by %.2f s", self.cfg.id,
                                 (fresh - end_us) / 1e6)
            if self.seg is None:
                if not key:
                    continue  # a segment starts at a keyframe
                if spool.full() or (paused_full and not spool.can_resume()):
                    if not paused_full:
                        paused_full = True
                        start = chained_start or self.last_end_us or clock.wall_us(pts)
                        self._begin_gap(start, "spool_full", spool.alert())
                        log.error("camera %s: %s", self.cfg.id, spool.alert())
                    chained_start = None
                    continue
                paused_full = False
                start_us = chained_start if chained_start is not None else clock.wall_us(pts)
                provisional = chained_start is None
                self._end_gap(start_us, provisional)
                self.seg = SegmentWriter(spool, self.cfg.id, self.cfg.org_id, st, pts, start_us, provisional,
                                         self.cfg.stream)
                chained_start = None
            self.seg.write(pkt, pts, dts, duration)
            self.status.clock_source = clock.source
        return got


# --- the process ---------------------------------------------------------------------------------
def default_recorder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Recorder:
    """The cameras this process holds leases on, the spool, the uploader and the status writer.

    Threads: one per camera, the uploader's, ``leases`` (heartbeat, renew, registry, balance every
    ``min(record_poll_s, record_lease_ttl_s / 3)``) and ``status``.
    """

    def __init__(self, settings: Settings, shard: Shard = ALL, recorder_id: str | None = None):

        self.settings = settings
        self.shard = shard
        self.recorder_id = recorder_id or settings.recorder_id or default_recorder_id()
        self.engine = make_engine(settings.effective_database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.spool = Spool(settings.effective_spool_dir / shard.tag, settings.spool_max_bytes,
                           settings.spool_alert_ratio)
        self.store = ObjectStore.from_settings(settings)
        self.credentials = CredentialBox.from_settings(settings)
        self.latencies: list[float] = []
        self.uploader = Uploader(self.spool, self.store, settings.bucket_footage, self.sessions, self.recorder_id,
                                 workers=settings.upload_workers, retry_max_s=settings.upload_retry_max_s,
                                 on_indexed=self._on_indexed)
        self.cameras: dict[str, CameraRecorder] = {}  # the cameras we hold a lease on and record
        self.status_dirty = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._removed: dict[str, CameraRecorder] = {}  # left the registry: reported offline once
        self._status_rows: set[str] = set()  # cameras whose status row exists
        self._cam_lock = threading.Lock()  # self.cameras changes in the lease thread, is read by status/metrics
        self._rounds = 0
        self._waiting_logged = False
        self._seal_warned = False

    def _on_indexed(self, meta: SegmentMeta, latency_s: float) -> None:
        self.latencies.append(latency_s)
        if len(self.latencies) > 10000:
            del self.latencies[:5000]

    @property
    def round_s(self) -> float:
        return min(self.settings.record_poll_s, self.settings.record_lease_ttl_s / 3)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Recorder":
        self.spool.acquire()
        recovered = self.spool.recover()
        for item in recovered:
            self.uploader.submit(item)
        if recovered:
            log.info("spool: %d item(s) recovered from a previous run (%d bytes)", len(recovered), self.spool.used)
        self.uploader.start()
        for target, name in ((self._lease_loop, "leases"), (self._status_loop, "status")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        metrics.RECORDERS.add(self)
        log.info("recorder %s started (shard %s, lease TTL %.0f s)", self.recorder_id, self.shard,
                 self.settings.record_lease_ttl_s)
        return self

    def stop(self, grace_s: float | None = None) -> None:
        self._stop.set()
        self.status_dirty.set()  # wakes the status thread
        for t in self._threads:
            t.join(timeout=30)
        cams = list(self.cameras.values())
        self._stop_cameras(cams)
        # Leases go only after every camera thread flushed its last segment into the spool: the next
        # holder starts where our footage ends, and its gap starts there too.
        try:
            with self._session() as db:
                for cam in cams:
                    leases.release(db, cam.cfg.id, self.recorder_id, self._last_end(cam))
                leases.forget_recorder(db, self.recorder_id)
        except Exception as e:
            log.warning("leases not released (they expire after %.0f s): %s", self.settings.record_lease_ttl_s, e)
        self.uploader.stop(self.settings.record_stop_grace_s if grace_s is None else grace_s)
        for cam in cams + [c.sub for c in cams if c.sub is not None]:
            cam.status.state = "offline"
            cam.status.error = "recorder stopped"
        try:
            self._write_status()
        except Exception as e:
            log.warning("final status not written: %s", e)
        metrics.RECORDERS.remove(self)
        self.spool.release()
        self.engine.dispose()

    def __enter__(self) -> "Recorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run_forever(self) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server = metrics.serve(self.settings.metrics_port, self.settings.metrics_addr)
        self.start()
        try:
            while not stop.wait(1.0):
                pass
            log.info("recorder %s stopping", self.recorder_id)
            self.stop()
        finally:
            if server is not None:
                server.shutdown()

    # --- helpers -----------------------------------------------------------------------------
    def _session(self):

        return session_scope(self.sessions)

    @staticmethod
    def _last_end(cam: CameraRecorder):
        return us_to_dt(cam.last_end_us) if cam.last_end_us else None

    def _stop_cameras(self, cams: list[CameraRecorder]) -> None:
        cams = cams + [c.sub for c in cams if c.sub is not None]
        for cam in cams:
            cam.stop_evt.set()
        for cam in cams:
            cam.join(timeout=self.settings.rtsp_timeout_s + 5)

    def _start_camera(self, cfg: CameraConfig, takeover: leases.Claim | None = None) -> None:
        cam = CameraRecorder(self, cfg, takeover)
        with self._cam_lock:
            self.cameras[cfg.id] = cam
        cam.start()

    def _drop(self, cam_ids) -> list[CameraRecorder]:
        with self._cam_lock:
            return [self.cameras.pop(c) for c in cam_ids if c in self.cameras]

    # --- registry --------------------------------------------------------------------------
    def _load_registry(self, db) -> dict[str, CameraConfig]:

        out = {}
        for c in active_cameras(db):
            if not self.shard.owns(c.id):
                continue
            try:
                password, problem = self.credentials.open(c.rtsp_password), None
            except CredentialKeyError as e:  # this camera only: the others are recorded as usual
                password, problem = None, str(e)
            sub_url = c.rtsp_sub_url if c.record_streams == "both" else None
            out[c.id] = CameraConfig(c.id, c.org_id, c.rtsp_url, c.rtsp_username, password,
                                     c.segment_seconds or self.settings.segment_seconds, problem, sub_url=sub_url)
        return out

    def _seal_clear_passwords(self, db) -> None:
        """Passwords stored in clear (before sealing existed) are sealed with the region's key; the
        UPDATE matches only if the value is still the one read, so a concurrent edit wins."""


        rows = db.execute(select(Camera.id, Camera.rtsp_password).where(
            Camera.rtsp_password.is_not(None), Camera.rtsp_password.not_like(f"{SEALED_PREFIX}%"))).all()
        try:
            for cam_id, clear in rows:
                db.execute(update(Camera).where(Camera.id == cam_id, Camera.rtsp_password == clear)
                           .values(rtsp_password=self.credentials.seal(clear)))
        except CredentialKeyError as e:  # no usable key here: leave them as they are, record as before
            if not self._seal_warned:
                log.warning("camera passwords stored in clear not sealed: %s", e)
                self._seal_warned = True
            return
        if rows:
            log.info("sealed the password of %d camera(s) stored in clear", len(rows))

    # --- leases ------------------------------------------------------------------------------
    def _lease_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.lease_round()
            except Exception as e:  # DB down: keep recording the cameras we have (losing footage is worse)
                log.warning("lease round failed, still recording %d camera(s): %s", len(self.cameras), e)
            self._stop.wait(self.round_s)

    def lease_round(self) -> None:
        """Heartbeat, renew, follow the registry, then claim or release towards the fair share."""
        me, ttl = self.recorder_id, self.settings.record_lease_ttl_s
        with self._session() as db:
            if self._rounds == 0 and leases.other_incarnation_alive(db, me, ttl):
                # a process with our id is alive (a duplicate id, or our previous self not yet silent
                # for a TTL): recording its cameras too would record them twice
                if not self._waiting_logged:
                    log.warning("recorder id %s is in use by a live process: waiting until it has been silent "
                                "for %.0f s", me, ttl)
                    self._waiting_logged = True
                return
            leases.heartbeat(db, me, socket.gethostname(), str(self.shard), first=self._rounds == 0)
            self._seal_clear_passwords(db)
            registry = self._load_registry(db)
            held = leases.renew(db, me, list(self.cameras), ttl)
        self._rounds += 1

        lost = [c for c in self.cameras if c not in held]
        if lost:  # another recorder holds them now (we could not renew in time): it records them
            log.warning("leases lost on %s: stopped recording them", ", ".join(sorted(lost)))
            self._stop_cameras(self._drop(lost))
        gone = [c for c in self.cameras if c not in registry]
        changed = [c for c in self.cameras if c in registry and registry[c] != self.cameras[c].cfg]
        if gone:
            log.info("camera(s) %s removed from the registry: stopped", ", ".join(sorted(gone)))
            cams = self._drop(gone)
            self._stop_cameras(cams)
            self._removed.update({c.cfg.id: c for c in cams})
            with self._session() as db:
                for cam in cams:
                    leases.release(db, cam.cfg.id, me, self._last_end(cam))
            self.status_dirty.set()
        for cam in self._drop(changed):  # new URL, credentials or segment length: restart, keep the lease
            log.info("camera %s changed: restarting", cam.cfg.id)
            self._stop_cameras([cam])
            self._start_camera(registry[cam.cfg.id])
        if self._rounds < 2:
            return  # one round after the first heartbeat: recorders started together see each other first
        self._balance(registry)

    def _balance(self, registry: dict[str, CameraConfig]) -> None:
        me, ttl = self.recorder_id, self.settings.record_lease_ttl_s
        with self._session() as db:
            live = leases.live_recorders(db, str(self.shard), ttl)
            counts = {r: n for r, n in leases.holder_counts(db, registry).items() if r in live}
            counts.update({r: counts.get(r, 0) for r in live})
            counts[me] = len(self.cameras)
            free = leases.free_cameras(db, registry, me, mine=list(self.cameras))
        k = leases.decide(me, counts, len(registry), len(free))
        if k > 0:
            # each recorder tries the free cameras in its own order, so recorders claiming in the same
            # round rarely race for the same row
            order = sorted(free, key=lambda c: hashlib.sha256(f"{me}/{c}".encode()).digest())
            got = 0
            with self._session() as db:
                for cam_id in order:
                    if got == k:
                        break
                    claim = leases.claim(db, cam_id, me, ttl)
                    if claim is None:
                        continue
                    got += 1
                    log.info("camera %s claimed (%s%s)", cam_id, claim.gap_reason or "new",
                             f", previous recorder {claim.previous_holder}" if claim.previous_holder else "")
                    self._start_camera(registry[cam_id], claim)
        elif k < 0:
            # give up the cameras claimed last: the others keep their recordings uninterrupted
            mine = sorted(self.cameras, reverse=True)[:-k]
            log.info("releasing %s to rebalance (%d live recorders)", ", ".join(mine), len(counts))
            cams = self._drop(mine)
            self._stop_cameras(cams)
            with self._session() as db:
                for cam in cams:
                    leases.release(db, cam.cfg.id, me, self._last_end(cam))

    # --- status ------------------------------------------------------------------------------
    def _write_status(self) -> None:
        """One row per camera, overwritten. Written as one bulk UPDATE (plus INSERTs for cameras never
        reported before): with the ORM's row-by-row get-and-update, these writes every few seconds were
        the largest fixed CPU cost of a recorder with few cameras (measured, docs/benchmarks.md)."""


        alert = self.spool.alert()
        up_err = self.uploader.last_error
        now = utcnow()
        rows = []
        with self._cam_lock:
            cams = list(self.cameras.items())
        for cam_id, cam in cams:
            st = cam.status
            errors = [e for e in (st.error, alert, f"upload pending: {up_err}" if up_err else None) if e]
            row = {"camera_id": cam_id, "recorder_id": self.recorder_id, "state": st.state,
                   "reconnects": st.reconnects, "spool_bytes": self.spool.used,
                   "spool_limit_bytes": self.spool.max_bytes,
                   "error": cam._redact("; ".join(errors))[:2000] if errors else None, "updated_at": now}
            if st.last_packet_at:  # otherwise keep what an earlier run of the recorder wrote
                row["last_packet_at"] = us_to_dt(int(st.last_packet_at * 1e6))
            if st.last_segment_end_us:
                row["last_segment_end"] = us_to_dt(st.last_segment_end_us)
            if st.clock_offset_s is not None:
                row["clock_offset_s"] = round(st.clock_offset_s, 3)
            row["clock_jumps"] = st.clock_jumps
            row.update(self._sub_status(cam))
            rows.append(row)
        removed = dict(self._removed)
        if not rows and not removed:
            return
        with self._session() as db:
            fresh = [r["camera_id"] for r in rows if r["camera_id"] not in self._status_rows]
            if fresh:
                have = set(db.scalars(select(CameraStatus.camera_id).where(CameraStatus.camera_id.in_(fresh))))
                new = [r for r in rows if r["camera_id"] in set(fresh) - have]
                for r in new:  # one INSERT per key set: the optional columns differ between cameras
                    db.execute(insert(CameraStatus), [r])
                self._status_rows |= set(fresh)
                rows = [r for r in rows if r not in new]
            if rows:
                db.execute(update(CameraStatus), rows)  # bulk UPDATE by primary key
            for cam_id in removed:  # only while the row is still ours: another recorder may report it now
                db.execute(update(CameraStatus).where(CameraStatus.camera_id == cam_id,
                                                      CameraStatus.recorder_id == self.recorder_id)
                           .values(state="offline", error="removed from the camera registry", updated_at=now))
        for cam_id in removed:
            self._removed.pop(cam_id, None)

    @staticmethod
    def _sub_status(cam: CameraRecorder) -> dict:
        """The sub-stream's own connection (its thread connects on its own and can fail alone); all None when
        the camera records its main stream only."""
        sub = cam.sub
        if sub is None:
            return {"sub_state": None, "sub_last_packet_at": None, "sub_reconnects": 0, "sub_error": None}
        st = sub.status
        row = {"sub_state": st.state, "sub_reconnects": st.reconnects,
               "sub_error": sub._redact(st.error)[:2000] if st.error else None}
        if st.last_packet_at:  # otherwise keep what an earlier run of the recorder wrote, as the main stream's
            row["sub_last_packet_at"] = us_to_dt(int(st.last_packet_at * 1e6))
        return row

    def _status_loop(self) -> None:
        while not self._stop.is_set():
            self.status_dirty.wait(self.settings.record_status_interval_s)
            self.status_dirty.clear()
            if self._stop.is_set():
                return
            try:
                self._write_status()
            except Exception as e:
                log.warning("camera status not written (database unreachable?): %s", e)
