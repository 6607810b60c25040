"""Request rate limits per terminal and per user or service key (the `limits` library, moving window).

A terminal's keys share one budget (rotation does not double it); every other caller is counted by
its actor (``key:<id>`` or ``user:<name>``). Counters live where ``rate_limit_storage_uri`` says:
``memory://`` counts per API process, a shared ``redis://`` counts across every replica of a region.
Over the limit: 429 with Retry-After, refused (and audited) like any other refusal. When the counter
storage is unreachable the request is let through (fail open, logged): face-pay must not stop because
Redis did.
"""
from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError
from api.keys import Principal
from kernel.settings import Settings

log = logging.getLogger("dualcheck.api")


class RateLimiter:
    def __init__(self, settings: Settings):
        self.terminal: list[RateLimitItem] = parse_many(settings.rate_limit_terminal) \
            if settings.rate_limit_terminal else []
        self.user: list[RateLimitItem] = parse_many(settings.rate_limit_user) if settings.rate_limit_user else []
        self.storage = storage_from_string(settings.rate_limit_storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._warned_at = 0.0

    def _bucket(self, who: Principal) -> tuple[str, list[RateLimitItem]]:
        if who.role == "terminal" and who.terminal_id:
            return f"terminal:{who.terminal_id}", self.terminal
        return who.actor, self.user

    def check(self, who: Principal) -> None:
        """Count one request of ``who``; raise the 429 ApiError when a limit is exceeded."""
        bucket, items = self._bucket(who)
        for item in items:
            try:
                allowed = self.strategy.hit(item, "dualcheck", bucket)
            except Exception as e:  # storage down (e.g. Redis): let the request through
                if time.monotonic() - self._warned_at > 60:
                    self._warned_at = time.monotonic()
                    log.warning("rate-limit storage unreachable, requests are not limited: %s", type(e).__name__)
                return
            if not allowed:
                reset_at, _ = self.strategy.get_window_stats(item, "dualcheck", bucket)
                wait = max(1, math.ceil(reset_at - time.time()))
                raise ApiError(429, "rate_limited",
                               f"more than {item} requests for {bucket.split(':', 1)[0]}: retry in {wait} s",
                               headers={"Retry-After": str(wait)}, retry_after_s=wait)


def check_rate(request, who: Principal) -> None:
    """Count the request once (a request may resolve its caller more than once)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or getattr(request.state, "rate_counted", False):
        return
    request.state.rate_counted = True
    limiter.check(who)
