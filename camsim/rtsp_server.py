#!/usr/bin/python3
"""RTSP camera simulator: serves PRE-ENCODED H.264 or H.265 footage, looping forever, live-paced.

Runs under Debian's ``/usr/bin/python3`` (stdlib + gi only; never imported by the venv)::

    /usr/bin/python3 rtsp_server.py --footage DIR_OR_footage.h264 --port 8554 [--mount /cam]
        [--user U --password P] [--status-file status.json] [--epoch EPOCH] [--host 127.0.0.1]

How it works
------------
* The footage directory holds ``footage.h264`` (Annex-B, one access unit per frame, SPS/PPS
  before every keyframe), ``frames.json`` (byte offset, size and keyframe flag of each frame) and
  ``truth.json`` (fps, ``camera_off`` events). Everything is read into memory once.
* One *producer* thread plays the camera's timeline against the wall clock, independent of clients
  (a camera keeps filming when nobody watches): global frame ``n`` is due at wall time
  ``epoch + n / fps`` and shows footage frame ``n % frames``; the footage time at wall time ``w`` is
  therefore ``(w - epoch) % loop_duration``. ``epoch`` is "now" unless ``--epoch`` is given (the
  venv-side camera passes its first epoch again on restart, so the truth mapping survives outages).
* The RTSP media is shared (``factory.set_shared(True)``): one pipeline
  ``appsrc ! rtph264pay`` for all viewers; no decoding or encoding, only RTP payloading.
  The producer pushes each access unit's bytes into the appsrc of every live media.
* H.265 footage (``truth.json`` ``codec: h265``) goes through ``rtph265pay`` instead; B-frames
  (frames.json's 4th column, pts - dts in frames) get PTS = DTS + delay, sent in decode order.
* Timestamps: a media starts at the first keyframe after it is created; its buffers get
  DTS ``r0 + (n - n0) / fps`` where ``r0`` is the pipeline running time when frame ``n0`` was pushed.
  They therefore grow by exactly one frame duration per frame, across loop boundaries too
  (the loop is invisible in the RTP timestamps). rtpbin sends RTCP sender reports as usual.
* ``camera_off`` events: frames in those seconds are not sent (the stream stalls); sending resumes
  at the first keyframe after the event, and the PTS jump equals the gap exactly. A client that
  connects during the stall gets no answer to DESCRIBE until the stream resumes (FFmpeg's open
  then times out), like a hung camera.
* ``--clock-jumps AT:BY,...``: the camera's clock jumps (as at an NTP sync): from AT seconds after
  start on, every timestamp (RTP, and so the RTCP sender reports' mapping) moves by BY seconds.
* ``--sub-footage DIR --sub-mount /sub``: the camera's sub-stream, the same scene rendered at a lower
  resolution (same frame count and rate), played on the same timeline (same epoch, same clock jumps)
  and served on a second mount, as a real camera serves its main and sub stream.
* SIGTERM/SIGINT: the main loop quits, the status file is removed, exit code 0.

Status file (JSON, written atomically once the server listens): ``epoch`` (wall-clock UTC epoch
seconds at which footage time 0 of the current loop numbering started), ``loop_duration_s``, ``fps``,
``frames``, ``keyint_s``, ``port``, ``mount``, ``pid``, ``started_at``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtp", "1.0")
from gi.repository import GLib, Gst, GstRtp, GstRtspServer  # noqa: E402


def log(*a):
    print("[rtsp-sim]", *a, file=sys.stderr, flush=True)


class Footage:
    def __init__(self, path: str):
        d = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        with open(os.path.join(d, "truth.json")) as f:
            self.truth = json.load(f)
        with open(os.path.join(d, self.truth.get("index", "frames.json"))) as f:
            idx = json.load(f)["frames"]
        with open(os.path.join(d, self.truth.get("file", "footage.h264")), "rb") as f:
            data = f.read()
        self.frames = [(data[r[0] : r[0] + r[1]], bool(r[2])) for r in idx]
        # pts - dts of each access unit in frames: B-frames are sent in decode order, shown later
        self.delays = [int(r[3]) if len(r) > 3 else 0 for r in idx]
        self.codec = self.truth.get("codec", "h264")  # h264 | h265
        self.fps = float(self.truth["fps"])
        self.n = len(self.frames)
        self.duration = self.n / self.fps
        self.width, self.height = int(self.truth["width"]), int(self.truth["height"])
        self.off = [(float(e["start_s"]), float(e["end_s"])) for e in self.truth.get("events", [])
                    if e.get("kind") == "camera_off"]
        if not self.frames or not self.frames[0][1]:
            raise SystemExit("footage must start with a keyframe")

    def is_off(self, i: int) -> bool:
        t = i / self.fps
        return any(a <= t < b for a, b in self.off)


class Sink:
    """One media's appsrc; starts at a keyframe, then gets every frame with regular PTS."""

    def __init__(self, appsrc, frame_ns: int):
        self.appsrc = appsrc
        self.frame_ns = frame_ns
        self.n0 = None
        self.r0 = 0
        self.waiting_key = True
        self.dead = False
        self.rtp_shift = 0  # added to its RTP timestamps: the camera's clock jumps (--clock-jumps)
        self.pushing = False

    def push(self, n: int, data: bytes, key: bool, delay: int, due: float) -> None:
        """``delay``: frames between decode and display; ``due``: the monotonic instant frame ``n`` is due."""
        if self.waiting_key:
            if not key:
                return
            if self.n0 is not None:  # after a camera_off gap: same time base, PTS jump = gap
                self.waiting_key = False
        if self.waiting_key:
            clock = self.appsrc.get_clock()
            if clock is None:  # pipeline not playing yet: try again at the next keyframe
                return
            # anchored on when the frame is due, not when this thread got to push it: the server's sink
            # sends each buffer at its timestamp, so a producer running late (a loaded machine) would
            # otherwise delay the whole stream and the truth (epoch + n / fps) no longer holds
            late_ns = max(0, int((time.monotonic() - due) * 1e9))
            self.r0 = max(0, clock.get_time() - self.appsrc.get_base_time() - late_ns)
            self.n0 = n
            self.waiting_key = False
            # tests count the frames a recorder kept from this one on (nothing lost at connect)
            log(f"media starts at frame {n} key=1 at {time.time():.3f}")
        buf = Gst.Buffer.new_wrapped(data)
        buf.dts = self.r0 + (n - self.n0) * self.frame_ns
        buf.pts = buf.dts + delay * self.frame_ns
        buf.duration = self.frame_ns
        if not key:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        ret = self.appsrc.emit("push-buffer", buf)
        if ret == Gst.FlowReturn.FLUSHING:
            # media is being torn down (or paused and flushed): restart at the next keyframe
            self.waiting_key = True
            self.n0 = None
        elif ret not in (Gst.FlowReturn.OK,):
            self.dead = True

    def resync(self) -> None:
        """After a gap (camera_off), restart at a keyframe with timestamps that follow the wall clock."""
        self.waiting_key = True


class Producer(threading.Thread):
    def __init__(self, footage: Footage, epoch: float, jumps: list[tuple[float, float]] | None = None):
        super().__init__(daemon=True, name="producer")
        self.f = footage
        self.epoch = epoch
        self.jumps = sorted(jumps or [])  # (seconds after start, jump in seconds) of the camera's clock
        self.sinks: list[Sink] = []
        self.lock = threading.Lock()
        self.stop_evt = threading.Event()
        self.frame_ns = int(round(1e9 / footage.fps))

    def add(self, sink: Sink) -> None:
        with self.lock:
            self.sinks.append(sink)

    def jump(self, seconds: float) -> None:
        """The camera's clock jumps (an NTP sync): every viewer's RTP timestamps move by ``seconds``
        from the next frame on (the buffers' own times go on: the server's sinks pace on them)."""
        with self.lock:
            for s in self.sinks:
                s.rtp_shift = (s.rtp_shift + int(seconds * 90000)) % 2**32
        log(f"clock jumps by {seconds:+.1f} s at {time.time():.3f}")

    def remove_appsrc(self, appsrc) -> None:
        with self.lock:
            self.sinks = [s for s in self.sinks if s.appsrc is not appsrc]

    def run(self) -> None:
        f = self.f
        # monotonic instant corresponding to the epoch: frame n is due at mono0 + n / fps
        mono0 = time.monotonic() - (time.time() - self.epoch)
        n = max(0, math.ceil((time.monotonic() - mono0) * f.fps))
        was_off = False
        started = time.monotonic()
        while not self.stop_evt.is_set():
            while self.jumps and time.monotonic() - started >= self.jumps[0][0]:
                self.jump(self.jumps.pop(0)[1])
            due = mono0 + n / f.fps
            delay = due - time.monotonic()
            if delay > 0:
                if self.stop_evt.wait(delay):
                    break
            elif delay < -1.0:  # fell far behind (machine suspended/overloaded): skip ahead
                n = math.ceil((time.monotonic() - mono0) * f.fps)
                with self.lock:
                    for s in self.sinks:
                        s.resync()
                        s.n0 = None  # re-base timestamps on the clock
                continue
            i = n % f.n
            off = f.is_off(i)
            if off:
                if not was_off:
                    with self.lock:
                        for s in self.sinks:
                            s.resync()
            else:
                data, key = f.frames[i]
                with self.lock:
                    sinks = list(self.sinks)
                for s in sinks:
                    try:
                        s.push(n, data, key, f.delays[i], due)
                    except Exception as e:  # never let one viewer kill the camera
                        log("push failed:", e)
                        s.dead = True
                if any(s.dead for s in sinks):
                    with self.lock:
                        self.sinks = [s for s in self.sinks if not s.dead]
            was_off = off
            n += 1


def _shift_rtp(pad, info, sink):
    """A clock jump: re-send the payloader's RTP packets with their timestamps moved (copies: the
    packets handed to a probe are not writable)."""
    if not sink.rtp_shift or sink.pushing:
        return Gst.PadProbeReturn.OK
    if info.type & Gst.PadProbeType.BUFFER_LIST:
        bufs = [info.get_buffer_list().get(i) for i in range(info.get_buffer_list().length())]
    else:
        bufs = [info.get_buffer()]
    out = []
    for b in bufs:
        b = b.copy_deep()
        ok, rtp = GstRtp.RTPBuffer.map(b, Gst.MapFlags.READ | Gst.MapFlags.WRITE)
        if ok:
            rtp.set_timestamp((rtp.get_timestamp() + sink.rtp_shift) % 2**32)
            rtp.unmap()
        out.append(b)
    sink.pushing = True
    try:
        for b in out:
            pad.push(b)
    finally:
        sink.pushing = False
    return Gst.PadProbeReturn.DROP


def build_server(args, streams: list[tuple[str, Footage, Producer]]):
    """One server; a mount per stream (``(mount, footage, producer)``): main, and the sub-stream."""
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    auth = None
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, args.user)
        password = args.password if args.password is not None else os.environ.get("DUALCHECK_SIM_PASSWORD", "")
        basic = GstRtspServer.RTSPAuth.make_basic(args.user, password)
        auth.add_basic(basic, token)
        server.set_auth(auth)
    for mount, footage, producer in streams:
        server.get_mount_points().add_factory(mount, _factory(args, footage, producer))
    return server


def _sender_reports_on_capture_time(_bin, _sub, element) -> None:
    """RTCP sender reports map RTP time to the wall clock of capture (the buffers' time), as a camera's do.
    rtpbin's default maps it to when a packet is sent: the frames a media queues between a viewer's DESCRIBE
    and PLAY go out in a burst at PLAY, and its first report then put the stream 0.4 s early after a 3 s
    wait (more on a loaded machine), which a recorder takes as the camera's clock (ingest/clock.py)."""
    factory = element.get_factory()
    if factory is not None and factory.get_name() == "rtpbin":
        element.set_property("rtcp-sync-send-time", False)


def _factory(args, footage: Footage, producer: Producer):
    factory = GstRtspServer.RTSPMediaFactory()
    fps_num = int(round(footage.fps))
    h = "h265" if footage.codec == "h265" else "h264"
    caps = (f"video/x-{h},stream-format=byte-stream,alignment=au,width={footage.width},"
            f"height={footage.height},framerate={fps_num}/1")
    launch = (
        f'( appsrc name=src is-live=true format=time do-timestamp=false block=false max-bytes=8000000 '
        f'caps="{caps}" ! rtp{h}pay name=pay0 pt=96 config-interval=0 mtu=1400 )'
    )
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.set_eos_shutdown(False)

    def on_configure(_factory, media):
        appsrc = media.get_element().get_by_name("src")
        sink = Sink(appsrc, producer.frame_ns)
        if producer.jumps:  # rewrite the RTP timestamps the payloader sends
            media.get_element().get_by_name("pay0").get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, _shift_rtp, sink)
        producer.add(sink)
        media.connect("unprepared", lambda _m: producer.remove_appsrc(appsrc))
        top = media.get_element()  # its rtpbin is added to the media's pipeline when it is prepared
        while top.get_parent() is not None:
            top = top.get_parent()
        top.connect("deep-element-added", _sender_reports_on_capture_time)
        log("media configured")

    factory.connect("media-configure", on_configure)

    if args.user:
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(args.user, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role(args.user, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(perms)
    return factory


def write_status(path: str, status: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(status, f)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--footage", required=True, help="footage directory (or its footage.h264)")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--user")
    ap.add_argument("--password", help="or set DUALCHECK_SIM_PASSWORD (keeps it out of ps)")
    ap.add_argument("--status-file")
    ap.add_argument("--epoch", type=float, help="wall-clock epoch of footage time 0 (default: now)")
    ap.add_argument("--sub-footage", help="the sub-stream's footage directory (same scene, lower resolution)")
    ap.add_argument("--sub-mount", default="/sub")
    ap.add_argument("--clock-jumps", default="",
                    help="AT:BY,... the camera's clock jumps BY seconds (+/-) AT seconds after start")
    args = ap.parse_args(argv)
    if not args.mount.startswith("/"):
        args.mount = "/" + args.mount

    Gst.init(None)
    footage = Footage(args.footage)
    epoch = args.epoch if args.epoch is not None else time.time()
    jumps = [tuple(float(x) for x in j.split(":")) for j in args.clock_jumps.split(",") if j.strip()]
    producer = Producer(footage, epoch, jumps)
    streams = [(args.mount, footage, producer)]
    if args.sub_footage:
        sub = Footage(args.sub_footage)
        streams.append((args.sub_mount if args.sub_mount.startswith("/") else "/" + args.sub_mount, sub,
                        Producer(sub, epoch, jumps)))
    server = build_server(args, streams)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        log(f"cannot listen on {args.host}:{args.port}")
        return 2
    for _mount, _f, p in streams:
        p.start()

    def quit_(*_a):
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_)

    if args.status_file:
        write_status(args.status_file, {
            "epoch": epoch,
            "loop_duration_s": footage.duration,
            "fps": footage.fps,
            "frames": footage.n,
            "keyint_s": footage.truth.get("keyint_s"),
            "port": args.port,
            "mount": args.mount,
            "pid": os.getpid(),
            "started_at": time.time(),
        })
    log(f"serving rtsp://{args.host}:{args.port}{args.mount} ({footage.n} frames, {footage.duration:.1f} s loop)")
    try:
        loop.run()
    finally:
        for _mount, _f, p in streams:
            p.stop_evt.set()
        if args.status_file:
            try:
                os.unlink(args.status_file)
            except FileNotFoundError:
                pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
