"""The camera registry: which RTSP cameras an organisation has, what they cover, how to reach them."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.credentials import CredentialBox
from kernel.ids import is_camera_id, is_counter
from storage.models import ANALYSE_STREAMS, CAMERA_ROLES, RECORD_STREAMS, Camera, Organisation, utcnow

# Credentials some cameras take in the query string instead of user:password@ (Dahua:
# realmonitor?channel=1&user=admin&password=...). Stored like userinfo credentials (user name apart, the
# password sealed); the stored URL keeps the parameter with MASK as its value, which says where they go.
QUERY_USER_KEYS = ("user", "username", "usr", "login")
QUERY_PASSWORD_KEYS = ("password", "passwd", "pwd", "pass")
MASK = "***"
MAX_CREDENTIAL_CHARS = 128  # sealed, a 128-character password takes ~280 of the column's 500
MAX_COVERS = 32
ZONE_KINDS = ("customer", "staff", "ignore")
MAX_ZONES = 16
ZONE_POINTS = (3, 32)
MAX_ZONE_LABEL = 100
MIN_ZONE_AREA = 1e-6  # of the frame: a polygon smaller than this is a line or a click twice on one spot


class CameraError(ValueError):
    pass


class CameraIdTaken(CameraError):
    """The id is (or was) another camera's: 409."""


@dataclass(frozen=True)
class RtspTarget:
    url: str  # without credentials: safe to show and log
    username: str | None
    password: str | None

    def with_credentials(self) -> str:
        """The URL to open. Never log it."""
        parts = urlsplit(self.url)
        fields = _query_fields(parts.query)
        if any(k is not None and v == MASK for k, v in fields):  # the camera takes them in the query
            def value(k: str, v: str) -> str:
                if v == MASK and k.lower() in QUERY_USER_KEYS:
                    return quote(self.username or "", safe="")
                if v == MASK and k.lower() in QUERY_PASSWORD_KEYS:
                    return quote(self.password or "", safe="")
                return v
            query = "&".join(raw if k is None else f"{k}={value(k, v)}" for (k, v), raw
                             in zip(fields, parts.query.split("&")))
            return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        if not self.username:
            return self.url
        auth = quote(self.username, safe="") + (":" + quote(self.password or "", safe=""))
        return urlunsplit((parts.scheme, f"{auth}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def _query_fields(query: str) -> list[tuple[str | None, str]]:
    """(name, raw value) per ``&``-separated field; (None, field) for one without ``=``."""
    out: list[tuple[str | None, str]] = []
    for field in query.split("&") if query else []:
        name, eq, val = field.partition("=")
        out.append((name, val) if eq else (None, field))
    return out


def split_credentials(url: str) -> RtspTarget:
    """The URL without credentials (safe to store, show and log), and the user name and password
    taken from its userinfo or from its query string (their values there become MASK)."""
    parts = urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise CameraError("camera URL must be rtsp://host[:port]/path")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    user = unquote(parts.username) if parts.username else None
    pw = unquote(parts.password) if parts.password else None
    fields, query_user, query_pw = [], None, None
    for name, val in _query_fields(parts.query):
        key = (name or "").lower()
        if name is not None and val != MASK and key in QUERY_USER_KEYS + QUERY_PASSWORD_KEYS:
            if key in QUERY_USER_KEYS:
                query_user = unquote(val)
            else:
                query_pw = unquote(val)
            val = MASK
        fields.append(name if name is None else f"{name}={val}")
    if (query_user is not None or query_pw is not None) and (user is not None or pw is not None):
        raise CameraError("give the camera's credentials either as user:password@ or in the query string, not both")
    if query_user is not None or query_pw is not None:
        user, pw = query_user, query_pw
    query = "&".join(fields) if parts.query else ""
    clean = urlunsplit((parts.scheme, host, parts.path, query, ""))
    return RtspTarget(clean, user, pw)


def add_camera(db: Session, *, camera_id: str, org_id: str, name: str, role: str, url: str,
               covers: list[str] | None = None, segment_seconds: int | None = None,
               username: str | None = None, password: str | None = None,
               box: CredentialBox | None = None, sub_url: str | None = None,
               record_streams: str = "main", analyse_stream: str = "main") -> Camera:
    """Register (or re-register) a camera. A password, in the URL or given apart, is stored sealed
    with ``box`` (ingest/credentials.py). ``sub_url``: its sub-stream, reached with the same
    credentials (none in that URL); ``record_streams``/``analyse_stream``: see :func:`check_streams`."""
    if not is_camera_id(camera_id):
        raise CameraError("camera id must be 1-64 letters, digits, '.', '_' or '-'")
    if role not in CAMERA_ROLES:
        raise CameraError(f"role must be one of {', '.join(CAMERA_ROLES)}")
    if db.get(Organisation, org_id) is None:
        raise CameraError(f"unknown organisation {org_id!r}")
    if segment_seconds is not None and not 10 <= segment_seconds <= 300:
        raise CameraError("segment length must be between 10 and 300 seconds")
    existing = db.get(Camera, camera_id)
    if existing is not None and existing.removed_at is None:
        raise CameraIdTaken(f"camera {camera_id!r} exists already")
    if existing is not None and existing.org_id != org_id:
        # footage, holds and health are looked up by camera id: an id once used by one organisation
        # is never given to another, or that organisation's footage would follow the id
        raise CameraIdTaken(f"camera id {camera_id!r} was used by another organisation's camera; camera ids are "
                            "never reused across organisations: choose another id")
    target = split_credentials(url)
    user = username if username is not None else target.username
    pw = password if password is not None else target.password
    if len(user or "") > MAX_CREDENTIAL_CHARS or len(pw or "") > MAX_CREDENTIAL_CHARS:
        raise CameraError(f"camera user name and password may have at most {MAX_CREDENTIAL_CHARS} characters")
    if pw is not None and box is None:
        raise ValueError("add_camera: a password needs the CredentialBox to seal it")
    sub = split_credentials(sub_url) if sub_url else None
    if sub is not None and (sub.username or sub.password):
        raise CameraError("give the camera's credentials once, not in its sub-stream URL")
    check_streams(sub.url if sub else None, record_streams, analyse_stream)
    cam = existing or Camera(id=camera_id)
    cam.org_id, cam.name, cam.role = org_id, name, role
    cam.record_streams, cam.analyse_stream = record_streams, analyse_stream
    cam.rtsp_url = target.url
    cam.rtsp_sub_url = sub.url if sub else None
    cam.rtsp_username = user
    cam.rtsp_password = box.seal(pw) if pw is not None else None
    cam.covers = validate_covers(list(covers or []))
    cam.segment_seconds = segment_seconds
    cam.enabled, cam.removed_at = True, None
    if existing is None:
        db.add(cam)
    return cam


def check_streams(sub_url: str | None, record_streams: str, analyse_stream: str) -> None:
    """``record_streams``: "main" records the main stream only, "both" the sub-stream too (as segments
    of stream "sub"); ``analyse_stream``: "sub" has the checks read the sub-stream's recording where it
    covers the window, else the main one. Both need a sub-stream URL, and "sub" needs it recorded."""
    if record_streams not in RECORD_STREAMS:
        raise CameraError(f"record_streams must be one of {', '.join(RECORD_STREAMS)}, not {str(record_streams)[:20]!r}")
    if analyse_stream not in ANALYSE_STREAMS:
        raise CameraError(f"analyse_stream must be one of {', '.join(ANALYSE_STREAMS)}, not {str(analyse_stream)[:20]!r}")
    if record_streams == "both" and not sub_url:
        raise CameraError("recording both streams needs the camera's sub-stream URL")
    if analyse_stream == "sub" and record_streams != "both":
        raise CameraError("the checks can read the sub-stream only where it is recorded: set record_streams to both")


KEEP = object()  # set_streams: leave the sub-stream URL as it is


def set_streams(db: Session, camera_id: str, *, sub_url: str | None | object = KEEP,
                record_streams: str | None = None, analyse_stream: str | None = None) -> Camera:
    """Change a camera's sub-stream URL (None removes it) and which streams are recorded and analysed;
    the recorder restarts the camera on its next round."""
    cam = _live(db, camera_id)
    url = cam.rtsp_sub_url
    if sub_url is not KEEP:
        sub = split_credentials(sub_url) if sub_url else None
        if sub is not None and (sub.username or sub.password):
            raise CameraError("give the camera's credentials once, not in its sub-stream URL")
        url = sub.url if sub else None
    rec = record_streams if record_streams is not None else cam.record_streams
    ana = analyse_stream if analyse_stream is not None else cam.analyse_stream
    check_streams(url, rec, ana)
    cam.rtsp_sub_url, cam.record_streams, cam.analyse_stream = url, rec, ana
    return cam


def _live(db: Session, camera_id: str) -> Camera:
    cam = db.get(Camera, camera_id)
    if cam is None or cam.removed_at is not None:
        raise CameraError(f"no camera {camera_id!r}")
    return cam


def validate_covers(covers) -> list[str]:
    """The counters / terminal ids a camera sees, trimmed, without repeats, in the given order."""
    if not isinstance(covers, list):
        raise CameraError("covers must be a list of counter names or terminal ids")
    out: list[str] = []
    for c in covers:
        c = c.strip() if isinstance(c, str) else c
        if not is_counter(c):  # what a settlement names as counter or terminal_id
            raise CameraError(f"cover {str(c)[:70]!r} must be 1-64 letters, digits, spaces or . _ : -")
        if c not in out:
            out.append(c)
    if len(out) > MAX_COVERS:
        raise CameraError(f"a camera covers at most {MAX_COVERS} counters or terminals, not {len(out)}")
    return out


def update_camera(db: Session, camera_id: str, *, name: str | None = None,
                  covers: list[str] | None = None) -> Camera:
    """Rename a camera or replace what it covers, without removing it (its footage and leases stay)."""
    cam = _live(db, camera_id)
    if name is not None:
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise CameraError("camera name must be 1-200 characters")
        cam.name = name
    if covers is not None:
        cam.covers = validate_covers(covers)
    return cam


def _area(points: list[list[float]]) -> float:
    """Shoelace area of a polygon (absolute, in frame fractions squared)."""
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                   for i in range(n))) / 2


def validate_zones(zones) -> list[dict]:
    """Normalised zones or CameraError naming the zone (1-based) and the problem.

    A zone is ``{"kind": customer|staff|ignore, "points": [[x, y], ...], "label": str}``, x and y
    fractions of the frame width and height, so zones survive a change of resolution."""
    if not isinstance(zones, list):
        raise CameraError("zones must be a list")
    if len(zones) > MAX_ZONES:
        raise CameraError(f"at most {MAX_ZONES} zones per camera, not {len(zones)}")
    out = []
    for i, z in enumerate(zones, 1):
        if not isinstance(z, dict):
            raise CameraError(f"zone {i}: must be an object with kind, points and label")
        unknown = sorted(set(z) - {"kind", "points", "label"})
        if unknown:
            raise CameraError(f"zone {i}: unknown field(s) {', '.join(unknown)[:80]}")
        kind = z.get("kind")
        if kind not in ZONE_KINDS:
            raise CameraError(f"zone {i}: kind must be one of {', '.join(ZONE_KINDS)}, not {str(kind)[:30]!r}")
        pts = z.get("points")
        lo, hi = ZONE_POINTS
        if not isinstance(pts, list) or not lo <= len(pts) <= hi:
            raise CameraError(f"zone {i}: points must be a list of {lo}-{hi} [x, y] pairs")
        norm = []
        for j, p in enumerate(pts, 1):
            if (not isinstance(p, (list, tuple)) or len(p) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
                raise CameraError(f"zone {i}, point {j}: must be [x, y] with two numbers")
            x, y = float(p[0]), float(p[1])
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # also refuses NaN
                raise CameraError(f"zone {i}, point {j}: x and y are fractions of the frame, within [0, 1] "
                                  f"(got {x:g}, {y:g})")
            norm.append([round(x, 5), round(y, 5)])
        if _area(norm) <= MIN_ZONE_AREA:
            raise CameraError(f"zone {i}: the polygon has no area (its points lie on one line or on one spot)")
        label = z.get("label", "")
        if label is None:
            label = ""
        if not isinstance(label, str) or len(label) > MAX_ZONE_LABEL:
            raise CameraError(f"zone {i}: label must be text of at most {MAX_ZONE_LABEL} characters")
        out.append({"kind": kind, "points": norm, "label": label.strip()})
    return out


def set_zones(db: Session, camera_id: str, zones) -> Camera:
    """Replace all the camera's zones ([] removes them: the check then looks at the whole frame)."""
    cam = _live(db, camera_id)
    cam.zones = validate_zones(zones)
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
        "rtsp_sub_url": cam.rtsp_sub_url, "record_streams": cam.record_streams or "main",
        "analyse_stream": cam.analyse_stream or "main",
        "has_credentials": bool(cam.rtsp_username), "covers": cam.covers, "zones": cam.zones or [],
        "segment_seconds": cam.segment_seconds, "enabled": cam.enabled,
        "created_at": cam.created_at.isoformat() if cam.created_at else None,
    }


def seal_credentials(db: Session, box: CredentialBox) -> int:
    """Re-seal every stored camera password with the box's first key (after a key rotation), sealing
    any still in clear, also credentials stored in clear in a URL's query string (before they were
    taken out of it). Returns how many rows were rewritten; opening fails loudly for a password that
    none of the keys can open, before anything is changed."""
    in_query = []
    for cam in db.scalars(select(Camera)):
        target = split_credentials(cam.rtsp_url)
        if target.url != cam.rtsp_url:
            in_query.append((cam, target))
    cams = list(db.scalars(select(Camera).where(Camera.rtsp_password.is_not(None))))
    for cam in cams:
        box.open(cam.rtsp_password)  # all-or-nothing: every one must open with the keys given
    for cam in cams:
        cam.rtsp_password = box.reseal(cam.rtsp_password)
    for cam, target in in_query:
        cam.rtsp_url, cam.rtsp_username = target.url, target.username
        cam.rtsp_password = box.seal(target.password)
    return len({c.id for c in cams} | {c.id for c, _ in in_query})
