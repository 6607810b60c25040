"""One simulated RTSP camera = one GStreamer server process (``rtsp_server.py`` under /usr/bin/python3).

>>> from camsim import render, scenario_short, SimulatedCamera
>>> with SimulatedCamera(render(scenario_short(), width=640, height=360)) as cam:
...     print(cam.url, cam.truth_at(time.time()).kind)

``stop()`` kills the process (the camera goes away: connection refused); ``start()`` brings it back on
the same port with the same epoch, so footage time stays ``(wall - epoch) % loop_duration`` across
outages and :meth:`truth_at` keeps working.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import av

from .footage import Event, Footage

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = os.environ.get("DUALCHECK_GST_PYTHON", "/usr/bin/python3")


class CameraError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def probe(url: str, packets: int = 3, timeout: float = 5.0) -> bool:
    """True when ``url`` answers over RTSP/TCP and delivers ``packets`` video packets."""

    try:
        with av.open(url, options={"rtsp_transport": "tcp"}, timeout=timeout) as c:
            n = 0
            for pkt in c.demux(c.streams.video[0]):
                if pkt.size:
                    n += 1
                if n >= packets:
                    return True
    except (av.error.FFmpegError, OSError, IndexError):
        return False
    return False


class SimulatedCamera:
    """Context manager running one RTSP camera serving ``footage`` (a :class:`Footage`, or its
    directory / footage.h264 path)."""

    def __init__(
        self,
        footage: Footage | str | os.PathLike,
        port: int | None = None,
        mount: str = "/cam",
        user: str | None = None,
        password: str | None = None,
        *,
        host: str = "127.0.0.1",
        epoch: float | None = None,
        ready_timeout: float = 20.0,
        wait_readable: bool = True,
        log_path: str | os.PathLike | None = None,
        clock_jumps: list[tuple[float, float]] | None = None,
        sub_footage: Footage | str | os.PathLike | None = None,
        sub_mount: str = "/sub",
    ):
        self.footage = footage if isinstance(footage, Footage) else Footage.load(footage)
        # the sub-stream: the same scene at a lower resolution, same frames, served on ``sub_mount``
        self.sub_footage = (sub_footage if isinstance(sub_footage, Footage) or sub_footage is None
                            else Footage.load(sub_footage))
        if self.sub_footage is not None and (self.sub_footage.n_frames, self.sub_footage.fps) != (
                self.footage.n_frames, self.footage.fps):
            raise CameraError("the sub-stream's footage must have the main footage's frames and frame rate")
        self.sub_mount = sub_mount if sub_mount.startswith("/") else "/" + sub_mount
        self.host = host
        self.port = port
        self.mount = mount if mount.startswith("/") else "/" + mount
        self.user, self.password = user, password
        self.epoch = epoch
        self.ready_timeout = ready_timeout
        self.wait_readable = wait_readable
        self.clock_jumps = clock_jumps or []  # (seconds after each start, jump in seconds) of its clock
        self._tmp = Path(tempfile.mkdtemp(prefix="dualcheck-cam-"))
        self.status_file = self._tmp / "status.json"
        self.log_path = Path(log_path) if log_path else self._tmp / "server.log"
        self.proc: subprocess.Popen | None = None
        self.status: dict | None = None

    # urls
    @property
    def url(self) -> str:
        """RTSP URL, with credentials when the camera has them."""
        cred = ""
        if self.user:
            cred = f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@"
        return f"rtsp://{cred}{self._hostport}{self.mount}"

    @property
    def url_without_credentials(self) -> str:
        return f"rtsp://{self._hostport}{self.mount}"

    @property
    def sub_url(self) -> str | None:
        """The sub-stream's RTSP URL (without credentials: a camera's are given once), if it has one."""
        return f"rtsp://{self._hostport}{self.sub_mount}" if self.sub_footage is not None else None

    @property
    def _hostport(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    # lifecycle
    def start(self) -> "SimulatedCamera":
        """Start (or restart, same port and epoch) the server; returns when the stream is readable."""
        if self.running:
            return self
        if self.port is None:
            self.port = free_port(self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1")
        self.status_file.unlink(missing_ok=True)
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--footage", str(self.footage.directory), "--port", str(self.port),
               "--host", self.host, "--mount", self.mount, "--status-file", str(self.status_file)]
        if self.epoch is not None:
            cmd += ["--epoch", repr(self.epoch)]
        if self.sub_footage is not None:
            cmd += ["--sub-footage", str(self.sub_footage.directory), "--sub-mount", self.sub_mount]
        if self.clock_jumps:
            cmd += ["--clock-jumps", ",".join(f"{at}:{by:+}" for at, by in self.clock_jumps)]
        env = dict(os.environ)
        if self.user:
            cmd += ["--user", self.user]
            env["DUALCHECK_SIM_PASSWORD"] = self.password or ""
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        logf.close()
        deadline = time.monotonic() + self.ready_timeout
        try:
            while not self.status_file.exists():
                if self.proc.poll() is not None:
                    raise CameraError(f"camera server exited with {self.proc.returncode}: {self.log_tail()}")
                if time.monotonic() > deadline:
                    raise CameraError(f"camera server did not come up: {self.log_tail()}")
                time.sleep(0.05)
            self.status = json.loads(self.status_file.read_text())
            if self.epoch is None:
                self.epoch = float(self.status["epoch"])
            if self.wait_readable:
                while not probe(self.url, timeout=5):
                    if self.proc.poll() is not None:
                        raise CameraError(f"camera server exited with {self.proc.returncode}: {self.log_tail()}")
                    if time.monotonic() > deadline:
                        raise CameraError(f"stream {self.url_without_credentials} not readable: {self.log_tail()}")
                    time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the server (SIGKILL after ``timeout``); the port then refuses connections."""
        p, self.proc = self.proc, None
        if p is not None:
            stop_process(p, timeout)

    def restart(self) -> "SimulatedCamera":
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        for f in (self.status_file, self.log_path):
            if f.parent == self._tmp:
                f.unlink(missing_ok=True)
        try:
            self._tmp.rmdir()
        except OSError:
            pass

    def __enter__(self) -> "SimulatedCamera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        except Exception:
            pass

    # truth
    @property
    def loop_duration_s(self) -> float:
        return self.footage.duration_s

    def footage_time(self, wall_time: float) -> float:
        """Footage second shown at wall-clock ``wall_time`` (epoch seconds, UTC)."""
        if self.epoch is None:
            raise CameraError("camera not started yet")
        return (wall_time - self.epoch) % self.footage.duration_s

    def truth_at(self, wall_time: float) -> Event:
        """The truth event (see :meth:`Footage.event_at`) on screen at wall-clock ``wall_time``."""
        return self.footage.event_at(self.footage_time(wall_time))

    def truth_events_at(self, wall_time: float) -> list[Event]:
        return self.footage.events_at(self.footage_time(wall_time))

    def next_time_of(self, kind: str, after: float | None = None, margin: float = 0.0) -> float:
        """Next wall-clock time >= ``after`` (default now) at which an event of ``kind`` starts
        (plus ``margin`` seconds), so a test can wait for it."""
        after = time.time() if after is None else after
        base = after - self.footage_time(after)  # wall time of footage 0 for this loop
        cands = []
        for k in range(2):
            for e in self.footage.events:
                if e.kind == kind:
                    w = base + k * self.footage.duration_s + e.start_s + margin
                    if w >= after:
                        cands.append(w)
                    elif base + k * self.footage.duration_s + e.end_s - margin > after:
                        cands.append(after)  # already inside it
        if not cands:
            raise ValueError(f"no {kind!r} event in this footage")
        return min(cands)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """user+system CPU seconds used so far by the server process (from /proc)."""
        if not self.pid:
            raise CameraError("camera not running")
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __repr__(self) -> str:
        return f"SimulatedCamera({self.url_without_credentials}, running={self.running})"


def stop_process(p: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; returns once the process is gone."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
