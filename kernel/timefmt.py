"""One way to write an instant in JSON, logs and the index: ISO 8601 in UTC with a ``Z``."""
from __future__ import annotations

from datetime import datetime, timezone


def iso_z(t: datetime | None) -> str | None:
    """``2026-03-02T01:00:00Z``; naive values are taken as UTC (the index stores UTC); None stays None."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
