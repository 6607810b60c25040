"""Timestamps of a camera's packets as the recorder needs them: a DTS for every packet, and one
continuous timeline through the camera's clock jumps (:class:`ClockHealer`).

The first packets of every RTSP connection come without a DTS (FFmpeg learns the decode order only
after a few frames), the very first without a PTS either. Without B-frames PTS = DTS and the PTS
stands in. With B-frames it cannot: the packet after the key frame (a P-frame shown after the
B-frames that follow it) has a PTS ahead of the next packets', which looked like the camera's clock
stepping backwards and threw away the whole first key-frame interval of each connection.

:func:`stamp` holds the unstamped packets until the first packet with a DTS comes, then gives them
the DTS one frame apart before it, each at most its own PTS (decode never after display).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

log = logging.getLogger(__name__)

JUMP_EARLY_S = 1.0  # frames arriving this much "earlier" than ever: the camera's clock jumped ahead
JUMP_MIN_S = 0.8  # a step back longer than this is the clock jumping (B-frames reorder only a few frames)
OFFSET_WINDOW_S = 60.0  # the lower bound follows a camera clock running a little fast over this
REORDER_FRAMES = 4  # B-frames shown at most this many frames before the frame sent ahead of them
MAX_HELD = 16  # a stream that never sends a DTS: after this many packets PTS stands in, as before


@dataclass(slots=True)
class Stamped:
    pkt: object  # av.Packet
    pts: int
    dts: int
    received: float  # time.time() when the demuxer handed it over


def stamp(packets: Iterable, clock=time.time) -> Iterator[Stamped]:
    """Packets (non-empty) with a PTS and a DTS, strictly increasing DTS at connect."""
    held: list[tuple[object, int | None, float]] = []
    last_pts: int | None = None
    frame = 0  # ticks between frames, from the packets' durations
    stamped = False  # a packet with a DTS came: from then on pass through as they come
    for pkt in packets:
        if pkt.size == 0:
            continue
        now = clock()
        frame = pkt.duration or frame
        if stamped:
            pts = pkt.pts if pkt.pts is not None else pkt.dts
            if pts is None:
                pts = last_pts + frame if last_pts is not None else 0
            dts = pkt.dts if pkt.dts is not None else pts
            last_pts = pts
            yield Stamped(pkt, pts, dts, now)
            continue
        if pkt.dts is None and len(held) < MAX_HELD:
            held.append((pkt, pkt.pts, now))
            continue
        stamped = True
        yield from _release(held, pkt.dts, frame)
        held = []
        pts = pkt.pts if pkt.pts is not None else pkt.dts
        if pts is None:
            pts = 0
        dts = pkt.dts if pkt.dts is not None else pts
        last_pts = pts
        yield Stamped(pkt, pts, dts, now)
    yield from _release(held, None, frame)  # the stream ended before a DTS came


def _release(held: list, next_dts: int | None, frame: int) -> Iterator[Stamped]:
    """Give the held packets PTS (the very first has none: the frame before the next) and DTS."""
    if not held:
        return
    step = frame or 1
    pts = [p for _, p, _ in held]
    for i in range(len(pts)):  # FFmpeg leaves the very first unstamped; it is displayed first
        if pts[i] is None:
            known = [p for p in pts if p is not None] + ([next_dts] if next_dts is not None else [])
            pts[i] = (min(known) - step) if known else i * step
    if next_dts is None:  # no DTS ever came: PTS stands in (right without B-frames)
        dts = list(pts)
    else:
        dts = [0] * len(pts)
        nxt = next_dts
        for i in range(len(pts) - 1, -1, -1):
            dts[i] = min(nxt - step, pts[i])
            nxt = dts[i]
    for (pkt, _, received), p, d in zip(held, pts, dts):
        yield Stamped(pkt, p, d, received)


class ClockHealer:
    """Keeps one continuous timeline through the camera's clock jumps (an NTP sync, a reset).

    A camera whose clock jumps while it streams moves its RTP timestamps by the jump, though the
    frames keep coming at their pace. Recorded as such, that is a false gap (forward) or overlapping
    footage (backward). A jump is a PTS step of more than ``JUMP_MIN_S`` back, or ahead with the
    frames arriving at least ``JUMP_EARLY_S`` earlier than physically possible against their
    timestamps (a step ahead without that is the camera pausing or stalling: passed on as it is, the
    recorder records the gap when it is longer than ``stall_ticks``). The
    frames after it are shifted so that the first of them (by PTS, over ``lookahead`` packets: with
    B-frames the packet at the jump may be shown before the ones around it) takes the first free
    frame slot. Ahead or a stall: see :meth:`heal`. FFmpeg derives DTS from recent PTS, which a jump upsets: after one, DTS follow the
    frame rate here, increasing and never after their PTS.
    """

    def __init__(self, stall_ticks: int, tb: float, lookahead: int = 8):
        self.stall_ticks, self.tb, self.lookahead = stall_ticks, tb, lookahead
        self.min_jump_ticks = min(stall_ticks, int(JUMP_MIN_S / tb))
        self.shift = 0  # ticks added to the camera's timestamps
        self.jumps = 0
        self._max_pts: int | None = None
        self._recent: deque[int] = deque(maxlen=16)  # PTS of the latest frames (shifted)
        self._off_min: tuple[float | None, float | None] = (None, None)  # min(received - pts), two windows
        self._win_start: float | None = None
        self._last_dts: int | None = None
        self._frame = 0

    def heal(self, packets: Iterable[Stamped]) -> Iterator[Stamped]:
        it = iter(packets)
        for sp in it:
            self._frame = sp.pkt.duration or self._frame
            if self._max_pts is not None:
                step = sp.pts + self.shift - self._max_pts
                # a stall: the camera's time went on with ours (its frames arrive no earlier than
                # before, relative to their timestamps); a jump ahead makes them arrive "before they
                # were filmed". Judged on the receive clock's lower bound, which a recorder running
                # behind (a backlog) only raises, never lowers.
                # Jumps of a few seconds count too (an NTP sync often moves a clock by 1-3 s): shorter
                # than a stall, they stretched or folded the footage inside a segment and the next one
                # re-anchored onto the receive clock, over the last one or leaving a hole.
                early = self._early_s(sp)
                ahead = step > self.min_jump_ticks and early >= JUMP_EARLY_S
                back = step < -self.min_jump_ticks
                if ahead or back:
                    held = [sp] + list(islice(it, self.lookahead - 1))
                    delta = self._free_slot() - (min(h.pts for h in held) + self.shift)
                    self.shift += delta
                    self.jumps += 1
                    log.warning("camera clock jumped by %+.2f s: timeline kept continuous", -delta * self.tb)
                    for h in held:
                        yield self._fix(h)
                    continue
            yield self._fix(sp)

    def _early_s(self, sp: Stamped) -> float:
        """How much earlier than ever this packet arrived relative to its timestamp (seconds)."""
        mins = [m for m in self._off_min if m is not None]
        off = sp.received - (sp.pts + self.shift) * self.tb
        return (min(mins) - off) if mins else 0.0

    def _observe(self, pts: int, received: float) -> None:
        off = received - pts * self.tb
        if self._win_start is None or received - self._win_start >= OFFSET_WINDOW_S:
            self._off_min = (self._off_min[1], None)  # (previous window, current window)
            self._win_start = received
        cur = self._off_min[1]
        self._off_min = (self._off_min[0], off if cur is None else min(cur, off))

    def _free_slot(self) -> int:
        """The first frame slot no recent frame takes, from a few frames before the latest shown (the
        B-frames still to come are shown before it; older slots may look free only because the
        recent window no longer holds them)."""
        step = self._frame or 1
        v = max(min(self._recent), self._max_pts - REORDER_FRAMES * step)
        while any(abs(r - v) < step / 2 for r in self._recent):
            v += step
        return v

    def _fix(self, sp: Stamped) -> Stamped:
        pts = sp.pts + self.shift
        if self.jumps and self._last_dts is not None:
            # FFmpeg's DTS come from the PTS it saw, and after a backward jump they stay wrong (DTS =
            # PTS, B-frames going back): after a jump one frame per packet, or the silence of a stall
            gap = pts - self._max_pts
            dts = self._last_dts + (gap if gap > self.stall_ticks else (self._frame or 1))
        else:
            dts = sp.dts + self.shift
        dts = min(dts, pts)
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1
        pts = max(pts, dts)
        self._last_dts = dts
        self._max_pts = pts if self._max_pts is None else max(self._max_pts, pts)
        self._recent.append(pts)
        self._observe(pts, sp.received)
        return Stamped(sp.pkt, pts, dts, sp.received)
