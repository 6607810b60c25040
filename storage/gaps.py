"""Where a camera's footage is missing: the holes of the segment index and the recorder's reasons.

One computation for camera health (ingest/health.py) and for clips and HLS (storage/clips.py)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import RecordingGap

TOLERANCE_S = 0.5  # holes shorter than this are timestamp rounding, not gaps
# A hole of the index that no recorder gave a reason for: one name in health, clips and HLS.
NOT_RECORDED = "not_recorded"


def uncovered(spans: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime,
              tolerance_s: float = TOLERANCE_S) -> tuple[list[tuple[datetime, datetime]], float]:
    """The stretches of [start, end) that no span covers (longer than ``tolerance_s``), and the seconds
    covered. ``spans`` (segment start/end pairs) in order of start."""
    holes: list[tuple[datetime, datetime]] = []
    cursor, covered = start, 0.0
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= end:
            break
        if (s - cursor).total_seconds() > tolerance_s:
            holes.append((cursor, s))
        if e > cursor:
            covered += (e - max(s, cursor)).total_seconds()
            cursor = e
    if (end - cursor).total_seconds() > tolerance_s:
        holes.append((cursor, end))
    return holes, covered


def recorded_reasons(db: Session, camera_id: str, start: datetime, end: datetime,
                     stream: str = "main") -> list[RecordingGap]:
    """The recorder's gap records (camera_offline, camera_stalled, spool_full...) of ``stream``
    overlapping [start, end)."""
    return list(db.scalars(select(RecordingGap).where(
        RecordingGap.camera_id == camera_id, RecordingGap.stream == stream, RecordingGap.start_at < end,
        (RecordingGap.end_at.is_(None)) | (RecordingGap.end_at > start)).order_by(RecordingGap.start_at)))


def reasons_over(reasons: list[RecordingGap], a: datetime, b: datetime) -> list[str]:
    """The reasons of the records overlapping the hole [a, b), sorted, each once."""
    return sorted({g.reason for g in reasons if g.start_at < b and (g.end_at is None or g.end_at > a)})


def hole_reason(reasons: list[RecordingGap], a: datetime, b: datetime) -> str:
    """What a hole [a, b) is called: the recorded reasons, comma-separated, or ``not_recorded``."""
    return ",".join(reasons_over(reasons, a, b)) or NOT_RECORDED
