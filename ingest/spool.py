"""The local spool: every segment is written here first and leaves only once uploaded AND indexed.

Layout (one directory per recorder shard, one sub-directory per camera; names sort in time order)::

    <spool_dir>/<shard-i-of-n>/<camera>/<ns>.part        fragmented MP4 being written
    <spool_dir>/<shard-i-of-n>/<camera>/<ns>.part.json   camera, org, start (µs UTC), time base
    <spool_dir>/<shard-i-of-n>/<camera>/<ns>.mp4         finished segment waiting for upload+index
    <spool_dir>/<shard-i-of-n>/<camera>/<ns>.json        its index row (written BEFORE the rename)
    <spool_dir>/<shard-i-of-n>/<camera>/<ns>.gap.json    a recording gap waiting to be indexed

Why a file for everything: a SIGKILL or a power cut loses nothing that reached the disk; on start
:meth:`Spool.recover` salvages ``.part`` files up to their last complete fragment and queues the rest.

The spool is bounded (``spool_max_bytes``, all cameras of the recorder). When it is full the recorders
stop accepting footage (they never delete spooled footage to make room) and record a ``spool_full`` gap;
they resume when it drops under ``RESUME_RATIO`` of the bound.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import av

from ingest.clock import ticks_to_us
from storage.objects import file_sha256

log = logging.getLogger(__name__)

RESUME_RATIO = 0.9
FMP4_OPTIONS = {
    # A fragment per keyframe, flushed to the OS as soon as it is complete: a crash loses at most the
    # GOP being received. empty_moov makes the file readable from its first fragment.
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "flush_packets": "1",
}


def remux_stream(out, in_stream):
    """The output stream of a remux of ``in_stream`` (no transcoding). H.265 is tagged ``hvc1`` (its
    parameter sets in the sample entry), the tag browsers and players that decode HEVC in MP4 expect;
    FFmpeg's default ``hev1`` plays in fewer of them."""
    ost = out.add_stream_from_template(in_stream)
    if in_stream.codec_context.name == "hevc":
        ost.codec_context.codec_tag = "hvc1"
    return ost


class SpoolLockedError(RuntimeError):
    pass


def us_to_dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc).replace(microsecond=us % 1_000_000)


def dt_to_us(dt: datetime) -> int:
    delta = dt.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def object_key(org_id: str, camera_id: str, start_us: int, stream: str = "main") -> str:
    """``<org>/<camera>/YYYY/MM/DD/HH/<start as 20261122T054712.345Z>.mp4`` (``...Z.sub.mp4`` for the
    camera's sub-stream)."""
    t = us_to_dt(start_us)
    tail = "" if stream == "main" else f".{stream}"
    return f"{org_id}/{camera_id}/{t:%Y/%m/%d/%H}/{t:%Y%m%dT%H%M%S}.{t.microsecond // 1000:03d}Z{tail}.mp4"


def spool_name(camera_id: str, stream: str = "main") -> str:
    """A camera's spool directory: its id, ``<id>@sub`` for its sub-stream (never a camera id: no '@')."""
    return camera_id if stream == "main" else f"{camera_id}@{stream}"


@dataclass
class SegmentMeta:
    camera_id: str
    org_id: str
    start_us: int
    end_us: int
    bytes: int
    sha256: str
    key: str
    salvaged: bool = False
    stream: str = "main"

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / 1e6


@dataclass
class GapOp:
    """Insert-or-update of the recording_gaps row identified by (camera, start, reason)."""

    camera_id: str
    start_us: int
    end_us: int | None
    reason: str
    detail: str | None = None
    stream: str = "main"


@dataclass
class SpoolItem:
    """One thing waiting for the uploader: a finished segment (meta + mp4) or a gap op."""

    path: Path  # the .json / .gap.json file
    camera_id: str

    @property
    def is_gap(self) -> bool:
        return self.path.name.endswith(".gap.json")

    @property
    def mp4(self) -> Path:
        return self.path.with_suffix(".mp4")

    def load(self) -> SegmentMeta | GapOp:
        data = json.loads(self.path.read_text())
        return GapOp(**data) if self.is_gap else SegmentMeta(**data)


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Spool:
    def __init__(self, root: Path, max_bytes: int, alert_ratio: float = 0.8):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.alert_ratio = alert_ratio
        self._lock = threading.Lock()
        self._used = 0
        self._lockfile = None
        self._seq = 0

    # --- ownership ------------------------------------------------------------------------
    def acquire(self) -> None:
        """Lock the spool directory: two live recorders of the same shard must not share it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise SpoolLockedError(f"spool {self.root} is in use by another recorder of the same shard") from None
        self._lockfile = fh

    def release(self) -> None:
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    # --- accounting --------------------------------------------------------------------------
    @property
    def used(self) -> int:
        return self._used

    def add(self, n: int) -> None:
        with self._lock:
            self._used += n

    def full(self) -> bool:
        return self._used >= self.max_bytes

    def can_resume(self) -> bool:
        return self._used < self.max_bytes * RESUME_RATIO

    def alert(self) -> str | None:
        if self._used >= self.max_bytes:
            return f"spool full ({self._used} of {self.max_bytes} bytes): not recording new footage"
        if self._used >= self.max_bytes * self.alert_ratio:
            return f"spool {100 * self._used / self.max_bytes:.0f}% full ({self._used} of {self.max_bytes} bytes)"
        return None

    # --- naming ----------------------------------------------------------------------------
    def camera_dir(self, camera_id: str) -> Path:
        d = self.root / camera_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def new_name(self) -> str:
        with self._lock:  # time_ns can repeat between threads; names must stay unique and ordered
            self._seq = max(self._seq + 1, time.time_ns())
            return f"{self._seq:020d}"

    def new_part(self, camera_id: str) -> Path:
        return self.camera_dir(camera_id) / f"{self.new_name()}.part"

    def add_gap_op(self, op: GapOp) -> SpoolItem:
        name = spool_name(op.camera_id, op.stream)
        path = self.camera_dir(name) / f"{self.new_name()}.gap.json"
        write_json_atomic(path, asdict(op))
        return SpoolItem(path, name)

    def finish(self, part: Path, meta: SegmentMeta) -> SpoolItem:
        """Turn a closed ``.part`` into a queued segment: index row first, then the rename (a crash in
        between leaves both files, which :meth:`recover` completes)."""
        meta_path = part.with_suffix(".json")
        write_json_atomic(meta_path, asdict(meta))
        os.replace(part, part.with_suffix(".mp4"))
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        return SpoolItem(meta_path, spool_name(meta.camera_id, meta.stream))

    def remove(self, item: SpoolItem) -> None:
        freed = 0
        if not item.is_gap:
            try:
                freed = item.mp4.stat().st_size
            except FileNotFoundError:
                pass
            item.mp4.unlink(missing_ok=True)
        item.path.unlink(missing_ok=True)
        if freed:
            self.add(-freed)

    # --- restart ---------------------------------------------------------------------------
    def recover(self) -> list[SpoolItem]:
        """Rebuild the queue from disk after a (possibly unclean) stop; salvage unfinished parts."""
        items: list[SpoolItem] = []
        used = 0
        if not self.root.exists():
            return items
        for cam_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            camera_id = cam_dir.name
            for tmp in cam_dir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)
            for part in sorted(cam_dir.glob("*.part")):
                meta_path = part.with_suffix(".json")
                if meta_path.exists():  # crashed between writing the row and the rename
                    os.replace(part, part.with_suffix(".mp4"))
                    part.with_name(part.name + ".json").unlink(missing_ok=True)
                    continue
                meta = salvage(part)
                if meta is not None:
                    self.finish(part, meta)
                    log.info("salvaged %s: %.1f s of camera %s", part.name, meta.duration_s, camera_id)
                else:
                    part.unlink(missing_ok=True)
                    part.with_name(part.name + ".json").unlink(missing_ok=True)
            for sidecar in cam_dir.glob("*.part.json"):
                if not sidecar.with_suffix("").exists():
                    sidecar.unlink(missing_ok=True)
            for f in sorted(cam_dir.iterdir()):
                if f.name.endswith(".gap.json"):
                    items.append(SpoolItem(f, camera_id))
                elif f.suffix == ".json" and not f.name.endswith(".part.json"):
                    if f.with_suffix(".mp4").exists():
                        used += f.with_suffix(".mp4").stat().st_size
                        items.append(SpoolItem(f, camera_id))
                    else:  # the mp4 was already uploaded, indexed and removed
                        f.unlink(missing_ok=True)
            for f in cam_dir.glob("*.mp4"):
                if not f.with_suffix(".json").exists():  # cannot happen by construction; never upload blind
                    log.warning("spooled %s has no index row; left in place", f)
        with self._lock:
            self._used += used
        items.sort(key=lambda it: it.path.name)
        return items


def write_part_sidecar(part: Path, camera_id: str, org_id: str, start_us: int, stream: str = "main") -> None:
    write_json_atomic(part.with_name(part.name + ".json"),
                      {"camera_id": camera_id, "org_id": org_id, "start_us": start_us, "stream": stream})


def salvage(part: Path) -> SegmentMeta | None:
    """Rewrite an unfinished ``.part`` (recorder killed) up to its last complete fragment.

    Returns the index row of the salvaged segment, or None when nothing usable is left.
    """

    sidecar = part.with_name(part.name + ".json")
    try:
        info = json.loads(sidecar.read_text())
    except (FileNotFoundError, ValueError):
        return None
    tmp = part.with_name(part.name + ".salvage.tmp")
    n, end_ticks, tb = 0, 0, Fraction(1, 90000)
    try:
        with av.open(str(part)) as src:
            ist = src.streams.video[0]
            tb = ist.time_base
            with av.open(str(tmp), "w", format="mp4", options=FMP4_OPTIONS) as dst:
                ost = remux_stream(dst, ist)
                try:
                    for pkt in src.demux(ist):
                        if pkt.size == 0 or pkt.dts is None or pkt.is_corrupt:
                            continue
                        end_ticks = max(end_ticks, pkt.pts + (pkt.duration or 0))
                        pkt.stream = ost
                        dst.mux(pkt)
                        n += 1
                except (av.error.FFmpegError, EOFError):
                    pass  # the truncated last fragment
    except (av.error.FFmpegError, IndexError, EOFError, OSError) as e:
        log.warning("could not salvage %s: %s", part.name, e)
        tmp.unlink(missing_ok=True)
        return None
    if n == 0:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, part)
    start_us = int(info["start_us"])
    end_us = start_us + ticks_to_us(end_ticks, Fraction(tb))
    stream = info.get("stream", "main")
    return SegmentMeta(info["camera_id"], info["org_id"], start_us, end_us, part.stat().st_size,
                       file_sha256(part), object_key(info["org_id"], info["camera_id"], start_us, stream),
                       salvaged=True, stream=stream)
