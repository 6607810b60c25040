"""The bed map of a hospital's wards: a bed id as the hospital sends it in admissions (2401 ``adm_bed`` /
``wardarea_bed``, within its department ``adm_dept_codg``) -> the ward camera that sees it and the bed's
region in that camera's picture (a polygon drawn on a still frame, fractions of width and height).

Each bed may carry two empty pictures (the bed with nobody in or around it), one in daylight and one in
infrared: a ward camera switches to grey infrared at night, and an empty bed in infrared looks nothing like
the same bed by day. The check compares the bed region at each check time with the picture of its light
(correlate/bed_presence.py); without the picture of that light it says "unknown" rather than guess.
A picture is taken from a recorded moment, as the counter's reference picture is (correlate/reference.py),
and refused when it shows a face in the bed's region: the bed would not be empty.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate import bed_presence
from correlate import reference as reference_mod
from kernel.errors import Refusal
from kernel.timefmt import iso_z
from storage.models import Camera, ClaimAdmission, WardBed, utcnow

MAX_POINTS = 32
MAX_ID = 64
LIGHTS = ("day", "night")
JPEG_QUALITY = 92


class BedRefusal(Refusal):
    def __init__(self, reason: str, status: int = 400, code: str = "bed_invalid"):
        super().__init__(status, code, reason)


def parse_region(raw) -> list[list[float]]:
    """A polygon of 3..32 points, each [x, y] with 0 <= x, y <= 1 (fractions of the frame)."""
    if not isinstance(raw, list) or not 3 <= len(raw) <= MAX_POINTS:
        raise BedRefusal(f"region must be a list of 3 to {MAX_POINTS} points [x, y] (fractions of the frame)")
    out = []
    for p in raw:
        if (not isinstance(p, (list, tuple)) or len(p) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            raise BedRefusal("each point of the region must be [x, y] with numbers")
        x, y = float(p[0]), float(p[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise BedRefusal("region points must lie within the frame: 0 <= x, y <= 1")
        out.append([round(x, 4), round(y, 4)])
    pts = np.asarray(out, np.float32)
    if abs(cv2.contourArea(pts)) < 1e-4:
        raise BedRefusal("the region encloses no area: draw the bed's outline")
    return out


def parse_region_text(text: str) -> list[list[float]]:
    """The command line's form: 'x,y x,y x,y ...'."""
    try:
        pts = [[float(v) for v in p.split(",")] for p in text.split()]
    except ValueError:
        raise BedRefusal("region must be written as 'x,y x,y x,y ...' with fractions of the frame") from None
    return parse_region(pts)


def _clean_id(value, what: str, allow_empty: bool = False) -> str:
    v = (value or "").strip() if isinstance(value, str) or value is None else None
    if v is None or (not v and not allow_empty) or len(v) > MAX_ID or any(ord(c) < 32 for c in v):
        raise BedRefusal(f"{what} must be a text of 1-{MAX_ID} characters")
    return v


def set_bed(db: Session, *, org_id: str, bed_no: str, camera_id: str, region, actor: str,
            dept_codg: str = "") -> WardBed:
    """Map a bed (create or move it). The camera must be one of the organisation's ward cameras."""
    bed_no = _clean_id(bed_no, "bed")
    dept_codg = _clean_id(dept_codg, "dept", allow_empty=True)
    pts = parse_region(region)
    cam = db.get(Camera, camera_id)
    if cam is None or cam.removed_at is not None or cam.org_id != org_id:
        raise BedRefusal(f"organisation {org_id} has no camera {camera_id!r}", status=404, code="camera_not_found")
    if cam.role != "ward":
        raise BedRefusal(f"camera {camera_id} is a {cam.role} camera; beds are seen by ward cameras (role ward)",
                         code="not_a_ward_camera")
    bed = db.scalar(select(WardBed).where(WardBed.org_id == org_id, WardBed.dept_codg == dept_codg,
                                          WardBed.bed_no == bed_no))
    if bed is None:
        bed = WardBed(org_id=org_id, dept_codg=dept_codg, bed_no=bed_no, camera_id=camera_id, region=pts,
                      updated_by=actor)
        db.add(bed)
    else:
        if bed.camera_id != camera_id or bed.region != pts:  # another view: the empty pictures no longer fit
            bed.ref_day = bed.ref_night = None
        bed.camera_id, bed.region, bed.updated_by, bed.updated_at = camera_id, pts, actor, utcnow()
    db.flush()
    return bed


def list_beds(db: Session, org_ids: list[str] | None = None) -> list[WardBed]:
    q = select(WardBed).order_by(WardBed.org_id, WardBed.dept_codg, WardBed.bed_no)
    if org_ids is not None:
        q = q.where(WardBed.org_id.in_(org_ids))
    return list(db.scalars(q))


def find_bed(db: Session, org_id: str, bed_no: str, dept_codg: str = "") -> WardBed | None:
    return db.scalar(select(WardBed).where(WardBed.org_id == org_id, WardBed.dept_codg == (dept_codg or ""),
                                           WardBed.bed_no == bed_no))


def remove_bed(db: Session, store, bucket: str, bed: WardBed) -> None:
    keys = [r["key"] for r in (bed.ref_day, bed.ref_night) if r and r.get("key")]
    if keys:
        store.delete_many(bucket, keys)
    db.delete(bed)
    db.flush()


def bed_of(db: Session, adm: ClaimAdmission) -> WardBed | None:
    """The admission's bed: its department's bed of that id first, else the organisation's bed mapped for
    any department. ``wardarea_bed`` (the ward's own bed id) is tried before ``adm_bed``."""
    for bed_no in (adm.wardarea_bed, adm.adm_bed):
        if not bed_no:
            continue
        for dept in ((adm.adm_dept_codg or ""), ""):
            bed = find_bed(db, adm.org_id, bed_no, dept)
            if bed is not None:
                return bed
    return None


def take_reference(db: Session, store, bucket: str, bed: WardBed, at, actor: str, light: str | None = None,
                   faces: Callable[[np.ndarray], list[tuple[float, float, float, float]]] | None = None) -> dict:
    """Store the recorded frame at ``at`` as the bed's empty picture for ``light`` (None: the frame's own
    light, infrared when grey). Refused when a face shows in the bed's region."""
    if light is not None and light not in LIGHTS:
        raise BedRefusal(f"light must be one of {', '.join(LIGHTS)}")
    try:
        when, img = reference_mod.frame_at(db, store, bucket, bed.camera_id, at)
    except reference_mod.NoFootage as e:
        raise BedRefusal(str(e), status=404, code="no_footage") from None
    except reference_mod.PictureError as e:
        raise BedRefusal(str(e), code="not_decodable") from None
    seen_light = "night" if bed_presence.is_infrared(img) else "day"
    light = light or seen_light
    if light != seen_light:
        raise BedRefusal(f"the frame at {iso_z(when)} is a {seen_light} picture, not a {light} one",
                         code="wrong_light")
    if faces is not None:
        h, w = img.shape[:2]
        mask = bed_presence.region_mask(bed.region, w, h, margin=bed_presence.MARGIN)
        inside = [b for b in faces(img) if mask[min(h - 1, int(b[1] + b[3] / 2)), min(w - 1, int(b[0] + b[2] / 2))]]
        if inside:
            raise BedRefusal(f"the frame at {iso_z(when)} shows {len(inside)} face(s) at bed {bed.bed_no}: "
                             "choose a moment when the bed is empty", code="not_empty")
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise BedRefusal("the frame could not be encoded", code="not_decodable")
    data = jpg.tobytes()
    sha = hashlib.sha256(data).hexdigest()
    key = f"ward-reference/{bed.org_id}/{bed.id}/{light}/{sha[:16]}.jpg"
    store.put_bytes(bucket, key, data, "image/jpeg")
    ref = {"key": key, "sha256": sha, "at": iso_z(when), "set_by": actor, "set_at": iso_z(utcnow())}
    old = getattr(bed, f"ref_{light}")
    setattr(bed, f"ref_{light}", ref)
    if old and old.get("key") and old["key"] != key:
        store.delete_many(bucket, [old["key"]])
    db.flush()
    return ref


def view(bed: WardBed) -> dict:
    def ref(r):
        return None if not r else {k: r.get(k) for k in ("at", "set_by", "set_at", "sha256")}

    return {"id": bed.id, "org_id": bed.org_id, "dept_codg": bed.dept_codg, "bed": bed.bed_no,
            "camera_id": bed.camera_id, "region": bed.region, "reference": {"day": ref(bed.ref_day),
                                                                            "night": ref(bed.ref_night)},
            "updated_by": bed.updated_by, "updated_at": iso_z(bed.updated_at)}
