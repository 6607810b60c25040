"""Wall-clock (UTC) times for stream timestamps.

A camera's RTP timestamps only count ticks; segment times must be wall-clock UTC. Two sources:

* the camera's RTCP sender reports (FFmpeg exposes the first one as ``start_time_realtime``: the
  wall time, in the camera's clock, of pts 0). Exact when the camera's clock is NTP-synced, but cheap
  cameras often have wrong clocks;
* the receive clock: a packet captured at ``t`` arrives at ``t + latency`` with latency >= 0, so the
  smallest ``receive_time - pts`` seen over a recent window is the best upper bound of the true
  offset (bursts after connecting only make single samples late, never early).

The sender report is used when it is plausible against the receive clock: it must not put a packet
after it arrived, nor more than ``max_latency_s`` before. Otherwise the receive clock is used.
The window slides so that a camera clock running at a slightly different rate is followed.
"""
from __future__ import annotations

from fractions import Fraction

US = 1_000_000


class WallClock:
    def __init__(self, time_base: Fraction, max_latency_s: float = 2.0, window_s: float = 30.0):
        self.tb = Fraction(time_base)
        self._tbf = float(self.tb)  # per-packet arithmetic in floats: Fraction is slow
        self.max_latency_s = max_latency_s
        self.window_s = window_s
        self._cur_min: float | None = None  # min(recv - pts_s) in the current window
        self._prev_min: float | None = None  # ... in the previous window
        self._win_start: float | None = None
        self.sr_offset: float | None = None  # wall time of pts 0 from the RTCP sender report
        self.source = "receive"

    def observe(self, pts: int, received: float, start_time_realtime: int | None = None) -> None:
        off = received - pts * self._tbf
        if self._win_start is None:
            self._win_start = received
        if received - self._win_start >= self.window_s:
            self._prev_min, self._cur_min, self._win_start = self._cur_min, None, received
        if self._cur_min is None or off < self._cur_min:
            self._cur_min = off
        if start_time_realtime and self.sr_offset is None:
            self.sr_offset = start_time_realtime / US

    @property
    def ready(self) -> bool:
        return self._cur_min is not None

    def offset(self) -> float:
        """Wall time (epoch seconds) of pts 0."""
        mins = [m for m in (self._cur_min, self._prev_min) if m is not None]
        if not mins:
            raise RuntimeError("no packet observed yet")
        recv = min(mins)
        sr = self.sr_offset
        if sr is not None and recv - self.max_latency_s <= sr <= recv + 0.005:
            self.source = "rtcp"
            return sr
        self.source = "receive"
        return recv

    def camera_offset_s(self) -> float | None:
        """How far the camera's clock (its RTCP sender report) is ahead of the receive clock, in
        seconds (negative: behind); None before a sender report. Includes the network latency, which
        the receive clock's minimum bounds (a few ms on a LAN)."""
        if self.sr_offset is None or not self.ready:
            return None
        return self.sr_offset - min(m for m in (self._cur_min, self._prev_min) if m is not None)

    def wall_us(self, pts: int) -> int:
        """Wall-clock UTC of ``pts`` in integer microseconds since the epoch."""
        return round(self.offset() * US) + ticks_to_us(pts, self.tb)


def ticks_to_us(ticks: int, tb: Fraction) -> int:
    return (ticks * tb.numerator * US) // tb.denominator
