"""The camera registry: which RTSP cameras an organisation has, what they cover, how to reach them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.credentials import CredentialBox
from storage.models import CAMERA_ROLES, Camera, Organisation, utcnow

CAMERA_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CREDENTIAL_CHARS = 128  # sealed, a 128-character password takes ~280 of the column's 500


class CameraError(ValueError):
    pass


@dataclass(frozen=True)
class RtspTarget:
    url: str  # without credentials: safe to show and log
    username: str | None
    password: str | None

    def with_credentials(self) -> str:
        """The URL to open. Never log it."""
        if not self.username:
            return self.url
        parts = urlsplit(self.url)
        auth = quote(self.username, safe="") + (":" + quote(self.password or "", safe=""))
        return urlunsplit((parts.scheme, f"{auth}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def split_credentials(url: str) -> RtspTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise CameraError("camera URL must be rtsp://host[:port]/path")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    user = unquote(parts.username) if parts.username else None
    pw = unquote(parts.password) if parts.password else None
    return RtspTarget(clean, user, pw)


def add_camera(db: Session, *, camera_id: str, org_id: str, name: str, role: str, url: str,
               covers: list[str] | None = None, segment_seconds: int | None = None,
               username: str | None = None, password: str | None = None,
               box: CredentialBox | None = None) -> Camera:
    """Register (or re-register) a camera. A password, in the URL or given apart, is stored sealed
    with ``box`` (ingest/credentials.py)."""
    if not CAMERA_ID_RE.match(camera_id or ""):
        raise CameraError("camera id must be 1-64 letters, digits, '.', '_' or '-'")
    if role not in CAMERA_ROLES:
        raise CameraError(f"role must be one of {', '.join(CAMERA_ROLES)}")
    if db.get(Organisation, org_id) is None:
        raise CameraError(f"unknown organisation {org_id!r}")
    if segment_seconds is not None and not 10 <= segment_seconds <= 300:
        raise CameraError("segment length must be between 10 and 300 seconds")
    existing = db.get(Camera, camera_id)
    if existing is not None and existing.removed_at is None:
        raise CameraError(f"camera {camera_id!r} exists already")
    target = split_credentials(url)
    user = username if username is not None else target.username
    pw = password if password is not None else target.password
    if len(user or "") > MAX_CREDENTIAL_CHARS or len(pw or "") > MAX_CREDENTIAL_CHARS:
        raise CameraError(f"camera user name and password may have at most {MAX_CREDENTIAL_CHARS} characters")
    if pw is not None and box is None:
        raise ValueError("add_camera: a password needs the CredentialBox to seal it")
    cam = existing or Camera(id=camera_id)
    cam.org_id, cam.name, cam.role = org_id, name, role
    cam.rtsp_url = target.url
    cam.rtsp_username = user
    cam.rtsp_password = box.seal(pw) if pw is not None else None
    cam.covers = list(covers or [])
    cam.segment_seconds = segment_seconds
    cam.enabled, cam.removed_at = True, None
    if existing is None:
        db.add(cam)
    return cam


def remove_camera(db: Session, camera_id: str) -> Camera:
    """Stop recording a camera. Its footage stays until retention removes it."""
    cam = db.get(Camera, camera_id)
    if cam is None or cam.removed_at is not None:
        raise CameraError(f"no camera {camera_id!r}")
    cam.enabled = False
    cam.removed_at = utcnow()
    return cam


def active_cameras(db: Session, org_ids: list[str] | None = None) -> list[Camera]:
    q = select(Camera).where(Camera.removed_at.is_(None), Camera.enabled.is_(True)).order_by(Camera.id)
    if org_ids is not None:
        q = q.where(Camera.org_id.in_(org_ids))
    return list(db.scalars(q))


def public_view(cam: Camera) -> dict:
    """What the API may show: never the credentials."""
    return {
        "id": cam.id, "org_id": cam.org_id, "name": cam.name, "role": cam.role, "rtsp_url": cam.rtsp_url,
        "has_credentials": bool(cam.rtsp_username), "covers": cam.covers,
        "segment_seconds": cam.segment_seconds, "enabled": cam.enabled,
        "created_at": cam.created_at.isoformat() if cam.created_at else None,
    }


def seal_credentials(db: Session, box: CredentialBox) -> int:
    """Re-seal every stored camera password with the box's first key (after a key rotation), sealing
    any still in clear. Returns how many rows were rewritten; opening fails loudly for a password
    that none of the keys can open, before anything is changed."""
    cams = list(db.scalars(select(Camera).where(Camera.rtsp_password.is_not(None))))
    for cam in cams:
        box.open(cam.rtsp_password)  # all-or-nothing: every one must open with the keys given
    for cam in cams:
        cam.rtsp_password = box.reseal(cam.rtsp_password)
    return len(cams)
