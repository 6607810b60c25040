"""Which cameras and which stretch of time a settlement needs.

The cameras are the organisation's active cameras whose ``covers`` list names the settlement's
terminal or counter. The window depends on the camera role (``correlate_window_s``): by default
120 s before to 30 s after the settlement time (people queue, pay, leave); a consulting room or a
ward may be given a longer window.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.timefmt import iso_z
from storage.models import Camera, Settlement


@dataclass(frozen=True)
class CameraWindow:
    camera_id: str
    role: str
    start: datetime
    end: datetime

    def to_dict(self) -> dict:
        return {"camera_id": self.camera_id, "role": self.role, "start": iso_z(self.start), "end": iso_z(self.end)}



def window_for(settings, role: str, settled_at: datetime) -> tuple[datetime, datetime]:
    table = settings.correlate_window_s
    before, after = table.get(role) or table.get("default") or (120.0, 30.0)
    return settled_at - timedelta(seconds=float(before)), settled_at + timedelta(seconds=float(after))


def cameras_for(db: Session, s: Settlement) -> list[Camera]:
    keys = {k for k in (s.terminal_id, s.counter) if k}
    cams = db.scalars(select(Camera).where(Camera.org_id == s.org_id, Camera.removed_at.is_(None),
                                           Camera.enabled.is_(True)).order_by(Camera.id))
    return [c for c in cams if keys & set(c.covers or [])]


def windows(db: Session, settings, s: Settlement) -> list[CameraWindow]:
    out = []
    for cam in cameras_for(db, s):
        a, b = window_for(settings, cam.role, s.settled_at)
        out.append(CameraWindow(cam.id, cam.role, a, b))
    return out


def span(wins: list[CameraWindow], settled_at: datetime, settings) -> tuple[datetime, datetime]:
    if not wins:
        return window_for(settings, "default", settled_at)
    return min(w.start for w in wins), max(w.end for w in wins)
