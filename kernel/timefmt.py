"""One way to write an instant in JSON, logs and the index: ISO 8601 in UTC with a ``Z``."""
from __future__ import annotations

from datetime import date, datetime, timezone


def iso_z(t: datetime | None) -> str | None:
    """``2026-03-02T01:00:00Z``; naive values are taken as UTC (the index stores UTC); None stays None."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# --- instants and days typed by people and sent by other systems ---------------------------------
# The supported range: wide enough for any real query or record, far enough from datetime's own
# limits (years 1 and 9999) that a day added, a time zone applied or a window widened never
# overflows (which used to surface as 500s).
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)  # exclusive
RANGE_TEXT = "1970-01-01 to 9998-12-31"


class TimeInvalid(ValueError):
    """A user-supplied instant or day that is malformed or outside [EARLIEST, LATEST); ``reason``
    is for the person who sent it."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def parse_instant(value: str, name: str) -> datetime:
    """ISO 8601 with a zone -> aware UTC datetime within the supported range, else TimeInvalid."""
    shown = value[:40]
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise TimeInvalid(f"{name} is not an ISO 8601 time: {shown!r}") from None
    if t.tzinfo is None:
        raise TimeInvalid(f"{name} needs a time zone (Z or +08:00): {shown!r}")
    try:
        t = t.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        t = None
    if t is None or not EARLIEST <= t < LATEST:
        raise TimeInvalid(f"{name} is outside the supported range ({RANGE_TEXT}): {shown!r}")
    return t


def parse_day(value: str, name: str) -> date:
    """YYYY-MM-DD within the supported range, else TimeInvalid."""
    try:
        d = date.fromisoformat(value.strip())
    except ValueError:
        raise TimeInvalid(f"{name} is not a date (YYYY-MM-DD): {value[:20]!r}") from None
    if not EARLIEST.date() <= d < LATEST.date():
        raise TimeInvalid(f"{name} is outside the supported range ({RANGE_TEXT}): {value[:20]!r}")
    return d
