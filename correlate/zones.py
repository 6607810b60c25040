"""Where a person stands: a camera's zones (customer side, staff side, areas to ignore).

A camera's ``zones`` (storage.models.Camera.zones) are polygons drawn on a still frame, in fractions
of the frame's width and height: ``{"kind": "customer"|"staff"|"ignore", "points": [[x, y], ...],
"label": str}``. ``[]`` means no zones: every detection counts and the whole frame is the customer
side as far as anyone can tell (the checks behave as before zones existed).

A face is placed by the **bottom centre of its box** (the chin): of the face's points it is the one
nearest the body, so a head leaning over the line between two zones counts on the side its body is
on, and a tall customer whose forehead reaches into an ignored window band above the counter still
counts as a customer.

Overlapping zones: ``ignore`` wins (it was drawn to mask something: a TV, a poster, a street window),
then ``staff``, then ``customer``. With zones but no customer zone, anywhere that is neither staff nor
ignored is the customer side; with a customer zone, a face outside every zone is ``outside``
(a waiting area: context, never the payer nor a customer's presence at the counter).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ingest.cameras import ZONE_KINDS

KINDS = ZONE_KINDS  # one definition: the camera registry validates zones when they are set
PRIORITY = ("ignore", "staff", "customer")
OUTSIDE = "outside"


@dataclass(frozen=True)
class Zone:
    kind: str
    points: np.ndarray  # (n, 2) float32, fractions of width/height
    label: str = ""


def parse(raw) -> list[Zone]:
    """The zones of a camera row; malformed entries (unknown kind, fewer than 3 points) are skipped,
    so a bad zone never breaks a check (the zones API validates them when they are set)."""
    out: list[Zone] = []
    for z in raw or []:
        try:
            kind = z.get("kind")
            pts = np.asarray(z.get("points") or [], np.float32).reshape(-1, 2)
        except (AttributeError, TypeError, ValueError):
            continue
        if kind in KINDS and len(pts) >= 3:
            out.append(Zone(kind, pts, str(z.get("label") or "")))
    return out


def has(zones: list[Zone], kind: str) -> bool:
    return any(z.kind == kind for z in zones)


def anchor(box, width: int, height: int) -> tuple[float, float]:
    """The point of a face box (x, y, w, h in pixels) that places it: bottom centre, as fractions."""
    x, y, w, h = box
    return (x + w / 2.0) / max(width, 1), (y + h) / max(height, 1)


def _inside(z: Zone, px: float, py: float) -> bool:
    return cv2.pointPolygonTest(z.points.reshape(-1, 1, 2), (float(px), float(py)), False) >= 0


def zone_of(box, zones: list[Zone], width: int, height: int) -> str | None:
    """``None`` without zones; else ``ignore``, ``staff``, ``customer`` or ``outside``."""
    if not zones:
        return None
    px, py = anchor(box, width, height)
    hit = {z.kind for z in zones if _inside(z, px, py)}
    for kind in PRIORITY:
        if kind in hit:
            return kind
    return OUTSIDE if has(zones, "customer") else "customer"


def customer_side(zone: str | None) -> bool:
    """Is a face placed in ``zone`` (zone_of's answer) on the customer side? No zones: yes."""
    return zone is None or zone == "customer"


def mask(zones: list[Zone], width: int, height: int) -> np.ndarray | None:
    """Where a customer's presence (background difference, motion) counts, as a uint8 0/1 mask of
    ``height`` x ``width``: the customer zones if there are any, else the whole frame; minus staff
    zones and ignored areas. ``None`` when there are no zones (everything counts)."""
    if not zones:
        return None
    scale = np.array([width, height], np.float32)

    def fill(m: np.ndarray, kind: str, value: int) -> None:
        for z in zones:
            if z.kind == kind:
                cv2.fillPoly(m, [np.round(z.points * scale).astype(np.int32)], value)

    if has(zones, "customer"):
        m = np.zeros((height, width), np.uint8)
        fill(m, "customer", 1)
    else:
        m = np.ones((height, width), np.uint8)
    fill(m, "staff", 0)
    fill(m, "ignore", 0)
    return m


def ignore_mask(zones: list[Zone], width: int, height: int) -> np.ndarray | None:
    """1 where changes may count at all (everything but ignored areas); ``None`` without ignore zones."""
    if not has(zones, "ignore"):
        return None
    m = np.ones((height, width), np.uint8)
    scale = np.array([width, height], np.float32)
    for z in zones:
        if z.kind == "ignore":
            cv2.fillPoly(m, [np.round(z.points * scale).astype(np.int32)], 0)
    return m
