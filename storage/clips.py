"""Clips: one camera's footage over a time range, assembled from its segments without transcoding.

Segments are fragmented MP4 (``ftyp moov (moof mdat)* mfra``, one fragment per GOP,
``default_base_moof``), each with timestamps starting at 0 at its ``start_at``. A clip is built at
the box level, not by decoding or even demuxing:

* the *init* is the first segment's ``ftyp`` + ``moov``, with the clip's duration written into
  ``mvhd`` and an ``mvex/mehd`` (so players know the length before reading the end);
* then the ``moof``/``mdat`` fragments of every segment from the GOP at or before ``start`` to the
  GOP that covers ``end``, copied byte for byte, with two fields patched in place in each ``moof``
  (same size): the fragment sequence number (``mfhd``) and the decode time (``tfdt``), moved to the
  segment's wall-clock offset from the clip's first frame. A recording gap is therefore a jump of
  the decode time: timestamps stay wall-clock true and the player holds the last frame.

Because nothing changes size, the clip's byte layout (and total length) is known after reading the
two ends of the range and a few bytes of each segment in between, before any media is sent: a
response can carry ``Content-Length``, answer any ``Range`` by streaming only the parts it covers
straight from the store, and start sending within milliseconds (see docs/benchmarks/replay.md).

Limits (documented): all segments of a clip must share the first segment's track timescale;
codec parameters are taken from the first segment's sample description (H.264 cameras repeat
SPS/PPS in-band, so a mid-clip parameter change still decodes).
"""
from __future__ import annotations

import bisect
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.timefmt import iso_z
from storage.gaps import hole_reason, recorded_reasons, uncovered
from storage.models import Segment

HEAD_READ = 16 * 1024
TAIL_READ = 16
MOVIE_TIMESCALE = 1000

# reader(key, offset, length) -> chunks; length 0 means "to the end"
Reader = Callable[[str, int, int], Iterator[bytes]]


class ClipError(ValueError):
    """A clip cannot be made; ``code`` is the API error code."""

    def __init__(self, code: str, reason: str, gaps: list[dict] | None = None):
        super().__init__(reason)
        self.code, self.reason, self.gaps = code, reason, gaps or []


class BoxError(ClipError):
    def __init__(self, reason: str):
        super().__init__("bad_segment", reason)


# --- time ranges, index holes ---------------------------------------------------------------------



def segments_in(db: Session, camera_id: str, start: datetime, end: datetime, stream: str = "main") -> list[Segment]:
    """The camera's segments of ``stream`` (main: the footage replayed and exported) overlapping
    [start, end), in time order."""
    q = (select(Segment).where(Segment.camera_id == camera_id, Segment.stream == stream, Segment.start_at < end,
                               Segment.end_at > start)
         .order_by(Segment.start_at, Segment.id))
    return list(db.scalars(q))


def index_gaps(db: Session | None, camera_id: str, start: datetime, end: datetime,
               segments: list[Segment] | None = None, tolerance_s: float = 0.5) -> list[dict]:
    """Holes in the index over [start, end): stretches no segment covers (shorter than
    ``tolerance_s`` ignored), each with the reason of an overlapping RecordingGap when one is known."""
    segs = segments if segments is not None else segments_in(db, camera_id, start, end)
    holes, _ = uncovered(((s.start_at, s.end_at) for s in segs), start, end, tolerance_s)
    reasons = recorded_reasons(db, camera_id, start, end) if holes and db is not None else []
    out = []
    for a, b in holes:
        out.append({"start": iso_z(a), "end": iso_z(b), "seconds": round((b - a).total_seconds(), 3),
                    "reason": hole_reason(reasons, a, b)})
    return out


# --- ISO BMFF boxes ---------------------------------------------------------------------------------


def boxes(buf: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int, int]]:
    """Top-level boxes of buf[start:end] as (type, offset, size, header length)."""
    end = len(buf) if end is None else end
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack_from(">I4s", buf, off)
        hdr = 8
        if size == 1:
            if off + 16 > end:
                raise BoxError("truncated box header")
            size = struct.unpack_from(">Q", buf, off + 8)[0]
            hdr = 16
        elif size == 0:
            size = end - off
        if size < hdr:
            raise BoxError(f"bad box size {size} at {off}")
        yield typ, off, size, hdr
        off += size


def child(buf, parent_off: int, parent_size: int, parent_hdr: int, typ: bytes):
    for t, o, s, h in boxes(buf, parent_off + parent_hdr, parent_off + parent_size):
        if t == typ:
            return o, s, h
    return None


@dataclass
class Init:
    data: bytes  # ftyp + moov as stored
    length: int  # bytes before the first fragment
    timescale: int  # track (mdhd)
    movie_timescale: int  # mvhd
    stsd: bytes

    @classmethod
    def parse(cls, head: bytes) -> "Init":
        moov = None
        first_frag = None
        for t, o, s, h in boxes(head):
            if t == b"moov":
                if o + s > len(head):
                    raise BoxError("moov larger than the head read")
                moov = (o, s, h)
            elif t in (b"moof", b"mdat", b"mfra"):
                first_frag = o
                break
            if moov is not None and o + s >= len(head):
                first_frag = o + s
                break
        if moov is None:
            raise BoxError("segment has no moov at its start (not a fragmented MP4 segment)")
        mo, ms, mh = moov
        mvhd = child(head, mo, ms, mh, b"mvhd")
        trak = child(head, mo, ms, mh, b"trak")
        if mvhd is None or trak is None:
            raise BoxError("moov without mvhd/trak")
        v = head[mvhd[0] + mvhd[2]]
        movie_ts = struct.unpack_from(">I", head, mvhd[0] + mvhd[2] + (20 if v == 1 else 12))[0]
        mdia = child(head, *trak, b"mdia")
        mdhd = child(head, *mdia, b"mdhd") if mdia else None
        if mdhd is None:
            raise BoxError("trak without mdhd")
        v = head[mdhd[0] + mdhd[2]]
        ts = struct.unpack_from(">I", head, mdhd[0] + mdhd[2] + (20 if v == 1 else 12))[0]
        minf = child(head, *mdia, b"minf")
        stbl = child(head, *minf, b"stbl") if minf else None
        stsd = child(head, *stbl, b"stsd") if stbl else None
        stsd_bytes = bytes(head[stsd[0]:stsd[0] + stsd[1]]) if stsd else b""
        end = first_frag if first_frag is not None else mo + ms
        return cls(bytes(head[:end]), end, ts, movie_ts, stsd_bytes)

    def with_duration(self, seconds: float) -> bytes:
        """ftyp+moov with the clip duration in mvhd and an mvex/mehd (replacing any present)."""
        buf = self.data
        out = bytearray()
        for t, o, s, h in boxes(buf):
            if t != b"moov":
                out += buf[o:o + s]
                continue
            body = bytearray()
            for ct, co, cs, ch in boxes(buf, o + h, o + s):
                box = bytearray(buf[co:co + cs])
                if ct == b"mvhd":
                    v = box[ch]
                    dur = int(round(seconds * self.movie_timescale))
                    if v == 1:
                        struct.pack_into(">Q", box, ch + 24, dur)
                    else:
                        struct.pack_into(">I", box, ch + 16, min(dur, 0xFFFFFFFF))
                elif ct == b"mvex":
                    inner = bytearray()
                    mehd = struct.pack(">I4sI", 20, b"mehd", 1 << 24) + struct.pack(
                        ">Q", int(round(seconds * self.movie_timescale)))
                    inner += mehd
                    for gt, go, gs, gh in boxes(buf, co + ch, co + cs):
                        if gt != b"mehd":
                            inner += buf[go:go + gs]
                    box = bytearray(struct.pack(">I4s", 8 + len(inner), b"mvex")) + inner
                body += box
            out += struct.pack(">I4s", 8 + len(body), b"moov") + body
        return bytes(out)


@dataclass
class Fragment:
    offset: int  # of its moof in the segment
    end: int  # next fragment / mfra / end of file
    tfdt: int  # decode time, track timescale


def fragments(buf: bytes, start: int, end: int | None = None) -> list[Fragment]:
    frags: list[Fragment] = []
    for t, o, s, h in boxes(buf, start, end):
        if t == b"moof":
            traf = child(buf, o, s, h, b"traf")
            tfdt = child(buf, *traf, b"tfdt") if traf else None
            if tfdt is None:
                raise BoxError("moof without traf/tfdt")
            to, ts_, th = tfdt
            v = buf[to + th]
            dt = struct.unpack_from(">Q" if v == 1 else ">I", buf, to + th + 4)[0]
            if frags:
                frags[-1].end = o
            frags.append(Fragment(o, o + s, dt))
        elif t == b"mdat":
            if frags:
                frags[-1].end = o + s
        elif t == b"mfra":
            break
    return frags


def patch_moof(moof: bytearray, seq: int, tfdt_delta: int, base_shift: int) -> None:
    """In place: mfhd sequence, tfdt += delta, explicit tfhd base_data_offset += base_shift."""
    for t, o, s, h in boxes(moof, 8 if struct.unpack_from(">I", moof, 0)[0] != 1 else 16):
        if t == b"mfhd":
            struct.pack_into(">I", moof, o + h + 4, seq & 0xFFFFFFFF)
        elif t == b"traf":
            for tt, to, ts_, th in boxes(moof, o + h, o + s):
                if tt == b"tfdt":
                    v = moof[to + th]
                    if v == 1:
                        old = struct.unpack_from(">Q", moof, to + th + 4)[0]
                        struct.pack_into(">Q", moof, to + th + 4, old + tfdt_delta)
                    else:
                        new = struct.unpack_from(">I", moof, to + th + 4)[0] + tfdt_delta
                        if not 0 <= new <= 0xFFFFFFFF:
                            raise BoxError("decode time does not fit a version-0 tfdt")
                        struct.pack_into(">I", moof, to + th + 4, new)
                elif tt == b"tfhd" and base_shift:
                    flags = struct.unpack_from(">I", moof, to + th)[0] & 0xFFFFFF
                    if flags & 0x1:
                        old = struct.unpack_from(">Q", moof, to + th + 8)[0]
                        struct.pack_into(">Q", moof, to + th + 8, old + base_shift)


# --- the plan -----------------------------------------------------------------------------------------


@dataclass
class Part:
    out_offset: int
    length: int
    key: str | None = None  # None: `data` holds the bytes
    src_offset: int = 0  # in the segment object
    tfdt_delta: int = 0
    seq_start: int = 1
    data: bytes | None = None  # init, or the whole segment when it was read anyway
    segment_id: int | None = None


@dataclass
class ClipPlan:
    camera_id: str
    org_id: str
    requested_start: datetime
    requested_end: datetime
    clip_start: datetime  # wall time of the clip's first frame (t = 0)
    clip_end: datetime
    timescale: int
    segments: list[Segment]
    gaps: list[dict]
    parts: list[Part] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.parts[-1].out_offset + self.parts[-1].length if self.parts else 0

    @property
    def duration_s(self) -> float:
        return (self.clip_end - self.clip_start).total_seconds()

    def describe(self) -> dict:
        return {
            "camera_id": self.camera_id, "org_id": self.org_id,
            "requested": {"start": iso_z(self.requested_start), "end": iso_z(self.requested_end)},
            "clip_start": iso_z(self.clip_start), "clip_end": iso_z(self.clip_end),
            "duration_s": round(self.duration_s, 3), "bytes": self.size, "gaps": self.gaps,
            "segments": [{"id": s.id, "key": s.object_key, "start_at": iso_z(s.start_at), "end_at": iso_z(s.end_at),
                          "bytes": s.bytes, "sha256": s.sha256} for s in self.segments],
        }

    def iter_bytes(self, reader: Reader, first: int = 0, last: int | None = None) -> Iterator[bytes]:
        """The clip's bytes [first, last] (inclusive), streamed part by part."""
        last = self.size - 1 if last is None else min(last, self.size - 1)
        i = bisect.bisect_right([p.out_offset for p in self.parts], first) - 1
        for p in self.parts[max(i, 0):]:
            if p.out_offset > last:
                break
            lo = max(first - p.out_offset, 0)
            hi = min(last - p.out_offset, p.length - 1)
            if p.key is None and p.src_offset == 0 and p.tfdt_delta == 0 and p.data is not None and p.length == len(p.data):
                yield p.data[lo:hi + 1]
                continue
            yield from _window(self._part_stream(p, reader, hi + 1), lo, hi + 1)

    def _part_stream(self, p: Part, reader: Reader, need: int) -> Iterator[bytes]:
        """The part's patched bytes from its start, up to at least ``need`` bytes."""
        if p.data is not None:
            src: Iterable[bytes] = [memoryview(p.data)[p.src_offset:p.src_offset + p.length]]
        else:
            src = reader(p.key, p.src_offset, p.length)
        yield from _patched(src, p, need)


def _window(chunks: Iterable[bytes], lo: int, hi: int) -> Iterator[bytes]:
    pos = 0
    for c in chunks:
        n = len(c)
        if pos + n > lo and pos < hi:
            yield bytes(c[max(lo - pos, 0):min(hi - pos, n)])
        pos += n
        if pos >= hi:
            break
    if hasattr(chunks, "close"):
        chunks.close()


def _patched(src: Iterable[bytes], p: Part, need: int) -> Iterator[bytes]:
    """Walk top-level boxes of a fragment run, patching each moof, passing mdat payload through."""
    buf = bytearray()
    pos = 0  # bytes emitted so far (relative to the part)
    pending = 0  # payload bytes of the current mdat still to pass through
    seq = p.seq_start
    it = iter(src)
    exhausted = False
    while pos < min(need, p.length):
        if pending:
            if not buf:
                try:
                    buf += next(it)
                except StopIteration:
                    raise BoxError("segment shorter than its index says") from None
            n = min(pending, len(buf))
            yield bytes(buf[:n])
            del buf[:n]
            pending -= n
            pos += n
            continue
        while len(buf) < 16 and not exhausted:
            try:
                buf += next(it)
            except StopIteration:
                exhausted = True
        if len(buf) < 8:
            break
        size, typ = struct.unpack_from(">I4s", buf, 0)
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack_from(">Q", buf, 8)[0], 16
        if typ == b"moof":
            while len(buf) < size:
                try:
                    buf += next(it)
                except StopIteration:
                    raise BoxError("truncated moof") from None
            moof = bytearray(buf[:size])
            del buf[:size]
            # base_data_offset, when explicit, is absolute: shift by where the moof lands
            patch_moof(moof, seq, p.tfdt_delta, (p.out_offset + pos) - (p.src_offset + pos))
            seq += 1
            yield bytes(moof)
            pos += size
        else:
            yield bytes(buf[:hdr])
            del buf[:hdr]
            pos += hdr
            pending = size - hdr
    if hasattr(it, "close"):
        it.close()


def store_reader(store, bucket: str) -> Reader:
    def read(key: str, offset: int, length: int) -> Iterator[bytes]:
        return store.stream(bucket, key, offset=offset, length=length)

    return read


def segment_layout(store, bucket: str, seg: Segment) -> tuple[Init, int]:
    head = store.get_range(bucket, seg.object_key, 0, min(HEAD_READ, seg.bytes))
    try:
        init = Init.parse(head)
    except BoxError:
        head = store.get_bytes(bucket, seg.object_key)
        init = Init.parse(head)
    mfra_len = 0
    if seg.bytes >= TAIL_READ:
        tail = store.get_range(bucket, seg.object_key, seg.bytes - TAIL_READ, TAIL_READ)
        size, typ = struct.unpack_from(">I4s", tail, 0)
        if typ == b"mfro" and size == 16:
            mfra_len = struct.unpack_from(">I", tail, 12)[0]
    return init, seg.bytes - mfra_len


def plan_clip(db: Session, store, bucket: str, camera_id: str, org_id: str, start: datetime, end: datetime,
              *, fetch: Callable[[Segment], bytes] | None = None) -> ClipPlan:
    """Lay out the clip for [start, end): which bytes of which segment go where.

    Reads the first and last segment whole and a few bytes of each segment between (in parallel)."""
    segs = segments_in(db, camera_id, start, end)
    gaps = index_gaps(db, camera_id, start, end, segs)
    if not segs:
        raise ClipError("no_footage", f"no footage of camera {camera_id} between {iso_z(start)} and {iso_z(end)}",
                        gaps)
    fetch = fetch or (lambda s: store.get_bytes(bucket, s.object_key))
    ends = {segs[0].id: segs[0], segs[-1].id: segs[-1]}
    with ThreadPoolExecutor(max_workers=8) as pool:
        whole_f = {sid: pool.submit(fetch, s) for sid, s in ends.items()}
        meta_f = {s.id: pool.submit(segment_layout, store, bucket, s) for s in segs[1:-1]}
        whole = {sid: f.result() for sid, f in whole_f.items()}
        meta = {sid: f.result() for sid, f in meta_f.items()}
    for sid, data in whole.items():
        if len(data) != ends[sid].bytes:
            raise ClipError("bad_segment", f"segment {ends[sid].object_key} has {len(data)} bytes, "
                            f"the index says {ends[sid].bytes}")

    def frag_span(seg: Segment):  # (init, [fragments]) of a segment read whole
        data = whole[seg.id]
        init = Init.parse(data[:HEAD_READ] if len(data) > HEAD_READ else data)
        return init, fragments(data, init.length)

    first_init, first_frags = frag_span(segs[0])
    ts = first_init.timescale
    if not first_frags:
        raise ClipError("bad_segment", f"segment {segs[0].object_key} has no fragments")
    wall = lambda seg, ticks: seg.start_at + timedelta(seconds=ticks / ts)  # noqa: E731
    # the GOP (fragment) at or before `start`
    k = 0
    for i, f in enumerate(first_frags):
        if wall(segs[0], f.tfdt) <= start:
            k = i
    clip_start = wall(segs[0], first_frags[k].tfdt)
    last_init, last_frags = frag_span(segs[-1]) if len(segs) > 1 else (first_init, first_frags)
    if last_init.timescale != ts:
        raise ClipError("mixed_timescales", "segments of this range use different timescales")
    # fragments of the last segment that start before `end`
    lk = 0
    for i, f in enumerate(last_frags):
        if wall(segs[-1], f.tfdt) < end:
            lk = i
    if len(segs) == 1:
        lk = max(lk, k)
    clip_end = (wall(segs[-1], last_frags[lk + 1].tfdt) if lk + 1 < len(last_frags) else segs[-1].end_at)

    plan = ClipPlan(camera_id, org_id, start, end, clip_start, clip_end, ts, segs, gaps)
    init_bytes = first_init.with_duration((clip_end - clip_start).total_seconds())
    plan.parts.append(Part(0, len(init_bytes), data=init_bytes))
    out = len(init_bytes)
    seq = 1

    def delta(seg: Segment) -> int:
        return int(round((seg.start_at - clip_start).total_seconds() * ts))

    for n, seg in enumerate(segs):
        if n == 0:
            lo = first_frags[k].offset
            hi = (last_frags[lk].end if len(segs) == 1 else first_frags[-1].end)
            frags_in = (lk - k + 1) if len(segs) == 1 else len(first_frags) - k
            data = whole[seg.id]
        elif n == len(segs) - 1:
            lo, hi = last_frags[0].offset, last_frags[lk].end
            frags_in = lk + 1
            data = whole[seg.id]
        else:
            init, frag_end = meta[seg.id]
            if init.timescale != ts:
                raise ClipError("mixed_timescales", "segments of this range use different timescales")
            lo, hi = init.length, frag_end
            frags_in = None
            data = None
        part = Part(out, hi - lo, key=None if data is not None else seg.object_key, src_offset=lo,
                    tfdt_delta=delta(seg), seq_start=seq, data=data, segment_id=seg.id)
        plan.parts.append(part)
        out += part.length
        # sequence numbers only need to increase; a middle segment's fragment count is bounded by
        # its bytes / smallest fragment, so leave room instead of reading it
        seq += frags_in if frags_in is not None else (part.length // 64 + 1)
    return plan
