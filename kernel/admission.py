"""Admission control for face work (verifications, photo uploads): bounded work in flight, a latency budget.

Past capacity a face-pay terminal is better told at once ("overloaded", try again or fall back) than kept
waiting seconds for an answer it has given up on. One :class:`AdmissionGate` per API process:

- ``try_admit`` decides when a request arrives, before its upload is read: at most ``workers`` analyses run
  (the inference slots) and ``max_queue`` more requests may be in flight; a request is also refused when the
  expected wait for its analysis (requests ahead x measured analysis time / workers) is over the budget.
- ``Ticket.slot()`` is where an admitted request waits for an inference slot, at most until its budget
  (counted from admission) runs out: then it is dropped (:class:`Overloaded`, reason ``stale``) rather than
  analysed for a terminal that has stopped waiting. Nothing is stored for a dropped request.

Threads: ``try_admit``/``leave`` run on the event loop, ``slot`` in worker threads; one lock guards the counts.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kernel import metrics
from kernel.errors import Refusal

_EWMA = 0.2  # weight of the newest analysis time: follows a change of load within ~10 requests


class Overloaded(Refusal):
    """503: the process cannot take (or finish in time) more face work; retry after ``retry_after_s``."""

    def __init__(self, reason: str, retry_after_s: int, cause: str):
        super().__init__(503, "overloaded", reason)
        self.retry_after_s, self.cause = retry_after_s, cause


class AdmissionGate:
    def __init__(self, slots: threading.Semaphore, *, workers: int, max_queue: int, budget_s: float):
        self.slots, self.workers, self.max_queue, self.budget_s = slots, workers, max_queue, budget_s
        self._lock = threading.Lock()
        self.in_flight = 0  # admitted, not yet answered
        self.waiting = 0  # admitted, analysis not started (uploading, authenticating, decoding, queued)
        self.running = 0  # holding an inference slot
        self.analysis_s = 0.0  # moving average of the time one analysis holds a slot (0: none measured yet)
        # moving average of the time between two analyses starting while requests queue: the real pace of
        # the process, which also pays for HTTP, storing and whatever else shares its cores (0: not yet seen)
        self.start_interval_s = 0.0
        self._last_start = 0.0

    def _expected_wait(self) -> float:
        """Seconds a request admitted now would wait for a slot: those admitted and not yet analysed are ahead
        of it (an enrolment, which analyses without a slot, counts as one until it is answered)."""
        ahead = max(0, self.waiting + self.running + 1 - self.workers)
        return ahead * (self.start_interval_s or self.analysis_s / self.workers)

    def try_admit(self, work: str) -> Ticket:
        """A ticket for one request of ``work`` (``verify`` or ``enrol``); :class:`Overloaded` when refused."""
        with self._lock:
            if self.in_flight >= self.workers + self.max_queue:
                cause, wait = "queue_full", self._expected_wait()
            elif (wait := self._expected_wait()) > self.budget_s:
                cause = "over_budget"
            else:
                self.in_flight += 1
                self.waiting += 1
                metrics.ADMISSION_IN_FLIGHT.inc()
                metrics.ADMISSION_ADMITTED.labels(work).inc()
                return Ticket(self, work)
        metrics.ADMISSION_REFUSED.labels(work, cause).inc()
        if cause == "queue_full":
            reason = f"the face service is at capacity ({self.workers} analyses running, {self.max_queue} waiting " \
                     "at most): retry shortly or fall back"
        else:  # room in the queue, but the answer would come after the terminal has stopped waiting
            reason = f"the face service would start this analysis in about {wait:.1f} s, over its latency budget of " \
                     f"{self.budget_s * 1000:.0f} ms: retry shortly or fall back"
        raise Overloaded(reason, _retry_after(wait), cause)

    def _leave(self, waiting: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            self.waiting -= waiting
        metrics.ADMISSION_IN_FLIGHT.dec()

    def _analysed(self, started: bool, took: float = 0.0, was_waiting: bool = False, queued: bool = False) -> None:
        with self._lock:
            if started:
                self.waiting -= was_waiting
                self.running += 1
                now = time.monotonic()
                if queued and self._last_start:  # it waited for this slot to be freed: a saturated interval
                    gap = now - self._last_start
                    self.start_interval_s = gap if not self.start_interval_s else \
                        (1 - _EWMA) * self.start_interval_s + _EWMA * gap
                self._last_start = now
            else:
                self.running -= 1
                self.analysis_s = took if self.analysis_s == 0 else (1 - _EWMA) * self.analysis_s + _EWMA * took


def _retry_after(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))  # Retry-After is whole seconds


class Ticket:
    """One admitted request. ``leave()`` once it is answered (the API's middleware does)."""

    def __init__(self, gate: AdmissionGate, work: str):
        self.gate, self.work = gate, work
        self.admitted_at = time.monotonic()
        self._waiting, self._left = True, False

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold an inference slot for one analysis, waiting at most until the latency budget (counted from
        admission) is spent; :class:`Overloaded` (``stale``) if it is spent first."""
        gate = self.gate
        remaining = self.admitted_at + gate.budget_s - time.monotonic()
        queued = remaining > 0 and not gate.slots.acquire(blocking=False)
        if remaining <= 0 or (queued and not gate.slots.acquire(timeout=remaining)):
            metrics.ADMISSION_REFUSED.labels(self.work, "stale").inc()
            raise Overloaded(f"waited over the latency budget of {gate.budget_s * 1000:.0f} ms for the face "
                             "service: retry shortly or fall back", _retry_after(gate._expected_wait()), "stale")
        metrics.ADMISSION_WAIT.observe(time.monotonic() - self.admitted_at)
        gate._analysed(True, was_waiting=self._waiting, queued=queued)
        self._waiting = False
        t0 = time.monotonic()
        try:
            yield
        finally:
            gate.slots.release()
            gate._analysed(False, time.monotonic() - t0)

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self.gate._leave(self._waiting)
