"""The counter empty: a counter camera's reference picture.

Why: a window's background is the median of its own frames and of the frames around it in the same
segments (correlate/presence.py). At a busy counter a customer who stands at the till with the back to
the camera for most of the window, while others stand around them, is then part of that "empty"
counter: nothing changes where they stand and the only faces left are the queue's, one of which would
be taken for the payer. An operator therefore marks a moment when the counter's customer side stands
empty (the cashier may be there: the staff side does not count); the check compares the frames at the
settlement second with that picture, and a change on the customer side there that no visible face's
head and shoulders explain is someone whose face cannot be seen: the payer's face could not be compared.

The picture only ever moves an outcome towards "could not compare", never towards an accusation; and
it is not used when the window's light does not fit it (more than ``MAX_UNLIKE`` of the customer side
differs from it even in the window's own background: night, infrared, a shelf moved) - the check's
summary says so. Taking a picture with a face on the customer side is refused: it would not be empty.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import av
import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate import presence as presence_mod
from correlate import zones as zones_mod
from kernel.timefmt import iso_z
from storage.models import Camera, Segment, utcnow

MAX_UNLIKE = 0.5  # share of the customer side unlike the picture beyond which the light does not fit
JPEG_QUALITY = 92


class PictureError(ValueError):
    """A picture that cannot be taken: not an empty counter, or not decodable."""


class NoFootage(PictureError):
    """Nothing recorded at the moment asked for."""


def _keyframes(data: bytes) -> list[tuple[float, np.ndarray]]:
    out = []
    with av.open(io.BytesIO(data)) as c:
        st = c.streams.video[0]
        st.codec_context.skip_frame = "NONKEY"
        for fr in c.decode(st):
            if fr.pts is not None:
                out.append((float(fr.pts * fr.time_base), fr.to_ndarray(format="bgr24")))
    return out


def frame_at(db: Session, store, bucket: str, camera_id: str, at: datetime | None) -> tuple[datetime, np.ndarray]:
    """The recorded keyframe at or just before ``at`` (None: the first keyframe of the newest segment,
    the frame the camera's still.jpg and the zones editor show)."""
    q = select(Segment).where(Segment.camera_id == camera_id)
    if at is not None:
        q = q.where(Segment.start_at <= at, Segment.end_at > at)
    seg = db.scalars(q.order_by(Segment.start_at.desc()).limit(1)).first()
    if seg is None:
        when = "at " + iso_z(at) if at is not None else "yet"
        raise NoFootage(f"camera {camera_id} has no recorded footage {when}")
    try:
        frames = _keyframes(store.get_bytes(bucket, seg.object_key))
    except av.error.FFmpegError:
        frames = []
    if not frames:
        raise PictureError(f"the segment of camera {camera_id} at that time has no decodable keyframe")
    start = seg.start_at if seg.start_at.tzinfo else seg.start_at.replace(tzinfo=timezone.utc)
    off = (at - start).total_seconds() if at is not None else frames[0][0]
    before = [f for f in frames if f[0] <= off + 1e-3] or frames[:1]
    t, img = before[-1]
    return start + timedelta(seconds=t), img


def take(db: Session, store, bucket: str, camera: Camera, at: datetime | None, actor: str,
         faces: Callable[[np.ndarray], list[tuple[float, float, float, float]]] | None = None) -> dict:
    """Store the frame at ``at`` as ``camera``'s reference picture and return its description.
    ``faces`` (frame -> face boxes) refuses a picture with a face on the customer side."""
    when, img = frame_at(db, store, bucket, camera.id, at)
    zones = zones_mod.parse(camera.zones)
    if faces is not None:
        h, w = img.shape[:2]
        seen = [b for b in faces(img) if zones_mod.customer_side(zones_mod.zone_of(b, zones, w, h))]
        if seen:
            raise PictureError(f"the frame at {iso_z(when)} shows {len(seen)} face(s) on the customer side: "
                                  "choose a moment when no customer is at the counter")
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PictureError("the frame could not be encoded")
    data = jpg.tobytes()
    sha = hashlib.sha256(data).hexdigest()
    key = f"reference/{camera.org_id}/{camera.id}/{sha[:16]}.jpg"
    store.put_bytes(bucket, key, data, "image/jpeg")
    old = (camera.reference or {}).get("key")
    ref = {"key": key, "sha256": sha, "at": iso_z(when), "set_by": actor, "set_at": iso_z(utcnow()),
           "width": int(img.shape[1]), "height": int(img.shape[0])}
    camera.reference = ref
    if old and old != key:
        store.delete_many(bucket, [old])  # the cashier may be in it: not kept once replaced
    return ref


def clear(store, bucket: str, camera: Camera) -> bool:
    old = (camera.reference or {}).get("key")
    camera.reference = None
    if old:
        store.delete_many(bucket, [old])
    return bool(old)


@lru_cache(maxsize=64)
def _decoded(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def load(store, bucket: str, ref: dict | None) -> np.ndarray | None:
    """The picture (BGR), or None when there is none or it is gone."""
    if not ref or not ref.get("key"):
        return None
    try:
        data = store.get_bytes(bucket, ref["key"])
    except Exception:  # removed by hand or by retention: the check goes on without it
        return None
    if hashlib.sha256(data).hexdigest() != ref.get("sha256"):
        return None  # not the picture the operator chose
    return _decoded(data)


def unlike(picture: np.ndarray, images: list[np.ndarray], keep: np.ndarray | None) -> float:
    """Share of the ``keep`` area (0/1, analysis size) where the window's median differs from the
    picture: how badly the picture fits this window's light."""
    small = [presence_mod.grey_small(i) for i in images]
    ref = presence_mod.grey_small(picture, small[0].shape[::-1])
    med = np.median(np.stack(small), axis=0).astype(np.uint8)
    med = presence_mod.level_to(med, ref)
    diff = cv2.absdiff(med, ref) > presence_mod.DIFF
    area = keep.astype(bool) if keep is not None else np.ones_like(diff)
    return float(diff[area].mean()) if area.any() else 0.0
