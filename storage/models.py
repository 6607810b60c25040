"""The relational index: organisations, credentials, enrolled templates, verifications, audit.

Biometric bytes never live here: photos and captures are objects in the store; this index keeps
their keys and SHA-256. Templates (embeddings) are here because matching needs them in one read.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator):
    """Always timezone-aware UTC in Python, whatever the backend stores (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class Organisation(Base):
    """A designated clinic, hospital or pharmacy (定点医药机构)."""

    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64), default="default", index=True)
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses_face_pay: Mapped[bool] = mapped_column(Boolean, default=True)
    # every terminal of the organisation must attest its captures (facepay/attestation.py)
    require_attestation: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Terminal(Base):
    """A face-pay terminal at a counter. It may hold several API keys (rotation without downtime)."""

    __tablename__ = "terminals"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    counter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # True/False: this terminal's own rule; None: as its organisation (Organisation.require_attestation)
    require_attestation: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    organisation: Mapped[Organisation] = relationship()


class DeviceKey(Base):
    """A terminal's public signing key (Ed25519): the terminal signs each capture with the private half,
    which never leaves the device (facepay/attestation.py). Revoked keys stay listed."""

    __tablename__ = "device_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # sent by the terminal with each signature
    terminal_id: Mapped[str] = mapped_column(ForeignKey("terminals.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="ed25519")
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw 32 bytes
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the raw key, hex
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ApiKey(Base):
    """A machine credential. Only a SHA-256 of the secret is kept; the key is shown once."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public key id, part of the key
    role: Mapped[str] = mapped_column(String(16))  # terminal | ingest | admin | inspector | institution
    terminal_id: Mapped[str | None] = mapped_column(ForeignKey("terminals.id"), nullable=True, index=True)
    org_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    regions: Mapped[list | None] = mapped_column(JSON, nullable=True)  # inspector (and ingest) scope


class InsuredPerson(Base):
    """An insured person (参保人) who has enrolled photos."""

    __tablename__ = "insured_persons"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    templates: Mapped[list[FaceTemplate]] = relationship(
        back_populates="insured", cascade="all, delete-orphan", passive_deletes=True
    )


class FaceTemplate(Base):
    """One enrolled photo: its object key and hash, and the face embedding made from it."""

    __tablename__ = "face_templates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    insured_id: Mapped[str] = mapped_column(ForeignKey("insured_persons.id", ondelete="CASCADE"), index=True)
    photo_key: Mapped[str] = mapped_column(String(300))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(100))  # templates of another model are not comparable
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    quality: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(32), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    insured: Mapped[InsuredPerson] = relationship(back_populates="templates")

    __table_args__ = (Index("ix_face_templates_insured_sha", "insured_id", "photo_sha256", unique=True),)


STAFF_ROLES = ("doctor", "pharmacist", "cashier", "nurse", "other")


class StaffMember(Base):
    """Someone who works at an organisation (医保医师, 药师, cashier...): seen at the counter all day,
    never a customer. Recognised by their photos' templates; a staff member paying for themselves is
    still checked as the insured person (identity comes from the templates, not the role)."""

    __tablename__ = "staff_members"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    staff_id: Mapped[str] = mapped_column(String(64))  # the organisation's own id (工号)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(32), default="other")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    templates: Mapped[list["StaffTemplate"]] = relationship(back_populates="member", cascade="all, delete-orphan",
                                                            passive_deletes=True)

    __table_args__ = (Index("ix_staff_members_org_staff", "org_id", "staff_id", unique=True),)


class StaffTemplate(Base):
    """One photo of a staff member and its embedding (biometric: scoped to the organisation)."""

    __tablename__ = "staff_templates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    photo_key: Mapped[str] = mapped_column(String(300))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    quality: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(32), default="api")  # api | cli | ui | suggestion
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    member: Mapped[StaffMember] = relationship(back_populates="templates")

    __table_args__ = (Index("ix_staff_templates_member_sha", "member_id", "photo_sha256", unique=True),)


class StaffSuggestion(Base):
    """An unenrolled face seen at one counter in most checks over several days (a new cashier?),
    offered to operators to confirm as staff or dismiss, instead of flagging it again and again."""

    __tablename__ = "staff_suggestions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | dismissed
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()
    checks: Mapped[int] = mapped_column(Integer, default=0)  # checks of this counter the face was in
    checks_total: Mapped[int] = mapped_column(Integer, default=0)  # checks of this counter in the span
    days: Mapped[int] = mapped_column(Integer, default=0)  # distinct days seen
    evidence_ids: Mapped[list] = mapped_column(JSON, default=list)  # face_evidence ids (crops shown)
    model: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # mean of the faces, float32, L2-normalised
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    member_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the staff member confirmed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Verification(Base):
    """One face-pay check. Kept as evidence: later cross-checks read decision, score and capture."""

    __tablename__ = "verifications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    terminal_id: Mapped[str] = mapped_column(ForeignKey("terminals.id"), index=True)
    insured_id: Mapped[str] = mapped_column(String(64), index=True)
    settlement_ref: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    decision: Mapped[str] = mapped_column(String(20))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)  # the match threshold (upper) of the decision's band
    # the face-size band (terminal | counter | far) and the lower threshold the decision used: between
    # lower and threshold the answer is ``uncertain`` (vision/decision.py); None when no score was taken
    band: Mapped[str | None] = mapped_column(String(16), nullable=True)
    threshold_lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    model: Mapped[str] = mapped_column(String(100))
    quality: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    faces_found: Mapped[int] = mapped_column(Integer, default=0)
    capture_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    capture_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    capture_expires_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)


class CaptureAttempt(Base):
    """What a terminal said about one capture sent to POST /v1/verify, and what was made of it: its
    liveness result, its attestation, whether it replayed an earlier capture. One row per attempt that
    reached these checks, accepted (``verification_id`` set) or refused (``outcome`` the refusal code,
    no capture stored). ``phash`` and ``embedding`` identify an accepted capture for the replay check
    (facepay/replay.py) and are erased at ``fingerprint_expires_at`` (storage/retention.py)."""

    __tablename__ = "capture_attempts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    terminal_id: Mapped[str] = mapped_column(String(64), index=True)
    insured_id: Mapped[str] = mapped_column(String(64), index=True)
    settlement_ref: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(40))  # accepted | a refusal code (replayed_capture, attestation_*)
    verification_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    capture_sha256: Mapped[str] = mapped_column(String(64), index=True)
    liveness_method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    liveness_passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    liveness_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    attestation: Mapped[str] = mapped_column(String(40))  # valid | absent | the refusal code
    device_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replay_of: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the earlier verification
    replay: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # kind, phash distance, similarity
    phash: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 64-bit DCT hash, hex
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32, L2-normalised
    fingerprint_expires_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class AuditEvent(Base):
    """Append-only trail of who did what. Never holds images, templates or secrets."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    org_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # whom and what the event concerns, filled by storage/audit.py from the subject and detail, so the
    # trail can be read per insured person, flag or camera with an index (api/routes/audit.py)
    insured_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    flag_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


# --- recording (cameras, segments, gaps, holds) ------------------------------------------------

CAMERA_ROLES = ("settlement_counter", "pharmacy_counter", "consulting_room", "ward", "entrance")
RECORD_STREAMS = ("main", "both")  # what the recorder records of a camera: its main stream, or main and sub
ANALYSE_STREAMS = ("main", "sub")  # which recording the correlation checks read (sub: where it is there)
STREAMS = ("main", "sub")  # the stream a segment or a recording gap belongs to


class Camera(Base):
    """An RTSP camera of an organisation. Its credentials are kept apart from the URL so the URL can
    be shown and logged; they are never returned by the API."""

    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    rtsp_url: Mapped[str] = mapped_column(String(500))  # without user:password
    rtsp_username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rtsp_password: Mapped[str | None] = mapped_column(String(500), nullable=True)  # sealed: ingest/credentials.py
    # the camera's lower-resolution sub-stream (same credentials), where it has one; rtsp_url is the main
    rtsp_sub_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # "both": the sub-stream is recorded too, as segments of stream "sub" (replay and export stay on main)
    record_streams: Mapped[str] = mapped_column(String(8), default="main", server_default="main")
    # "sub": the checks read the sub-stream's recording where it covers the window (less to decode)
    analyse_stream: Mapped[str] = mapped_column(String(8), default="main", server_default="main")
    covers: Mapped[list] = mapped_column(JSON, default=list)  # terminal ids / counter names it sees
    # where people stand in its picture: [{"kind": "customer"|"staff"|"ignore", "points": [[x, y], ...],
    # "label": str}], x and y as fractions of the frame's width and height; [] = the whole frame counts
    zones: Mapped[list] = mapped_column(JSON, default=list)
    # the counter empty (correlate/reference.py): {key, sha256, at, set_by, set_at, width, height} or None
    reference: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    segment_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the setting
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Segment(Base):
    """One object of footage: a fragmented MP4 remuxed as received, start/end in wall-clock UTC."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    duration_s: Mapped[float] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(300), unique=True)  # a segment is indexed once
    recorder_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "main" (replayed, exported) or "sub" (the camera's lower-resolution stream, for the checks)
    stream: Mapped[str] = mapped_column(String(8), default="main", server_default="main")

    __table_args__ = (
        Index("ix_segments_camera_start", "camera_id", "start_at"),
        Index("ix_segments_end", "end_at"),
    )


class RecordingGap(Base):
    """A stretch of time a camera was not recorded, with why (camera offline, spool full …)."""

    __tablename__ = "recording_gaps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), index=True)
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column(nullable=True)  # None while it lasts
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    stream: Mapped[str] = mapped_column(String(8), default="main", server_default="main")  # as Segment.stream


class CameraStatus(Base):
    """What the recorder last reported for a camera (one row per camera, overwritten)."""

    __tablename__ = "camera_status"
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    recorder_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")  # online | offline | connecting
    last_packet_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_segment_end: Mapped[datetime | None] = mapped_column(nullable=True)
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    spool_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # a spool bound is often > 2 GiB
    spool_limit_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the camera's clock (its RTCP sender reports) minus the recorder's receive clock, its jumps included;
    # None where the camera sends no wall clock
    clock_offset_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    clock_jumps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # since its recorder took it
    # the sub-stream's own connection, where the camera records it too (record_streams "both"); None otherwise
    sub_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # online | offline | connecting
    sub_last_packet_at: Mapped[datetime | None] = mapped_column(nullable=True)
    sub_reconnects: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sub_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class CameraLease(Base):
    """Which recorder records a camera now (ingest/leases.py). Times come from the database clock, so
    recorders on hosts with skewed clocks still agree on who holds what."""

    __tablename__ = "camera_leases"
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)  # None: released
    acquired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    previous_holder: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # end of the last segment the previous holder flushed before releasing (the handover gap's start)
    last_end_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RecorderHeartbeat(Base):
    """A live `dualcheck record` process: the fair share of cameras is divided among fresh rows."""

    __tablename__ = "recorders"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    shard: Mapped[str] = mapped_column(String(32), default="0/1")  # recorders share the cameras of a shard
    started_at: Mapped[datetime] = mapped_column()
    seen_at: Mapped[datetime] = mapped_column(index=True)


class EvidenceHold(Base):
    """Keeps footage of a camera over a time range (or one capture) past retention while a case
    needs it. Holds cover time, not segment ids, so footage indexed later in the range is kept too."""

    __tablename__ = "evidence_holds"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id"), nullable=True, index=True)
    start_at: Mapped[datetime | None] = mapped_column(nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(nullable=True)
    verification_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    flag_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RetentionRun(Base):
    """One `dualcheck retention run`: what it deleted, kept and skipped (also an audit event)."""

    __tablename__ = "retention_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(200), default="cli")


# --- correlation (settlements, checks, face evidence, flags) — correlate/ --------------------------

SETTLEMENT_TYPES = ("outpatient", "inpatient", "pharmacy")
SETTLEMENT_STATES = ("pending", "waiting", "done", "failed")
OUTCOMES = ("verified_present", "ghost_visit", "impersonation", "inconclusive", "footage_missing")
FLAG_STATES = ("open", "inquiry", "confirmed", "dismissed", "acknowledged")  # acknowledged: 已阅 (levels 1-2)


class Settlement(Base):
    """One paid claim (结算记录) as imported. ``status`` is the source of truth for the checking jobs:
    pending and waiting rows are (re-)enqueued at every worker start."""

    __tablename__ = "settlements"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the exchange's settlement_id
    insured_id: Mapped[str] = mapped_column(String(64), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    counter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    terminal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    settled_at: Mapped[datetime] = mapped_column(index=True)
    amount: Mapped[str] = mapped_column(String(32))  # decimal as text: exact, same on every backend
    type: Mapped[str] = mapped_column(String(16))
    verification_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))  # a re-import with other content is refused
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    checked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SettlementCheck(Base):
    """The result of checking one settlement against footage (one row per settlement, replaced on a
    re-check): outcome, reason, window, cameras and coverage, people/faces seen, model versions."""

    __tablename__ = "settlement_checks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    settlement_id: Mapped[str] = mapped_column(ForeignKey("settlements.id"), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    cameras: Mapped[list] = mapped_column(JSON, default=list)  # [{camera_id, role, start, end, coverage}]
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # frames, people, tracks, best scores
    best_insured_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    capture_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    model: Mapped[dict] = mapped_column(JSON, default=dict)
    rule_version: Mapped[str] = mapped_column(String(32))
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FaceEvidence(Base):
    """One face seen in the footage of a check: its crop (an object in the biometrics bucket),
    scores against the insured's templates and the face-pay capture, and its embedding (for the
    one-face-many-cards rule; biometric like a template, never logged)."""

    __tablename__ = "face_evidence"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    check_id: Mapped[str] = mapped_column(ForeignKey("settlement_checks.id", ondelete="CASCADE"), index=True)
    settlement_id: Mapped[str] = mapped_column(String(100), index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column()
    track: Mapped[int] = mapped_column(Integer)
    box: Mapped[list] = mapped_column(JSON, default=list)
    crop_key: Mapped[str] = mapped_column(String(300))
    crop_sha256: Mapped[str] = mapped_column(String(64))
    insured_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    capture_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_insured: Mapped[bool] = mapped_column(Boolean, default=False)
    staff_member_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # recognised as staff
    staff_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    zone: Mapped[str | None] = mapped_column(String(16), nullable=True)  # customer | staff | None (no zones)
    is_payer: Mapped[bool] = mapped_column(Boolean, default=False)  # the person paying at the settlement second
    quality: Mapped[dict] = mapped_column(JSON, default=dict)
    model: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Flag(Base):
    """A finding inspectors review: type, level 1-5, settlement(s), evidence, review status."""

    __tablename__ = "flags"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(40), index=True)
    rule: Mapped[str] = mapped_column(String(40), index=True)
    level: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    settlement_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    settlement_ids: Mapped[list] = mapped_column(JSON, default=list)
    occurred_at: Mapped[datetime] = mapped_column(index=True)  # settlement time (latest of a group)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    rule_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[dict] = mapped_column(JSON, default=dict)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)  # a re-check never duplicates a flag
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # its case (correlate/cases.py)
    inquiry_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # sent | answered
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class StatusStep:
    """The columns of one step of an append-only review history (a flag's, a watch warning's): who, in which
    role, when, what, the status before and after, and the note."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class FlagEvent(StatusStep, Base):
    """Append-only history of a flag: created, inquiry sent/answered, confirmed, dismissed."""

    __tablename__ = "flag_events"
    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"), index=True)


class Case(Base):
    """What the queue lists and an inspector decides once: the findings (flags) about one settlement, or
    one group flag (one face many cards). Its level is the highest of its findings' (correlate/cases.py)."""

    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(220), unique=True)  # settlement:<id> | group:<flag dedup_key>
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    settlement_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    insured_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)  # for sorting only; the settlement has it exact
    level: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    inquiry_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # sent | answered
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # the inquiry: when sent, its deadlines (working days), when the institution read and answered it,
    # and when the inspector read the answer (unread counts of both sides)
    inquiry_sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ack_due_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    answer_due_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    answer_read_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CaseEvent(Base):
    """Append-only history of a case: raised, findings added, inquiry sent/read/answered, decisions."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    flag_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the finding it is about, if one
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class CaseAttachment(Base):
    """A file an institution attached to its answer (PDF or image): an object in the footage (evidence)
    bucket, held with the case's other evidence until the case is dismissed."""

    __tablename__ = "case_attachments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(300))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- web users and browser sessions (api/web/, dualcheck/commands/users.py) ---------------------------------

USER_ROLES = ("inspector", "institution", "operator", "admin", "auditor")


class User(Base):
    """A person who logs in to the web UI. Only an argon2 hash of the password is kept.

    ``regions`` scopes an inspector or operator (empty list: none; ``["*"]``: every region);
    ``org_id`` is the one organisation of an institution user."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    regions: Mapped[list] = mapped_column(JSON, default=list)
    org_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebSession(Base):
    """A logged-in browser. The cookie holds the token; only its SHA-256 is kept here."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


# --- the data half (issue 12): records in the national platform's field names (correlate/claims_*.py) -----------
# Each row keeps its natural key (unique) and the SHA-256 of its content: the same record again is
# ``unchanged``, the same key with other content a ``conflict`` (as settlements). docs/claims.md.


class ClaimSettlement(Base):
    """The platform's side of a settlement (2207 outpatient or pharmacy, 2304 inpatient): which visit
    (mdtrt_id) it settles. The settlement itself is the ``settlements`` row of the same id."""

    __tablename__ = "claim_settlements"
    setl_id: Mapped[str] = mapped_column(ForeignKey("settlements.id"), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    infno: Mapped[str] = mapped_column(String(8))
    mdtrt_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    psn_no: Mapped[str] = mapped_column(String(64), index=True)
    med_type: Mapped[str | None] = mapped_column(String(8), nullable=True)
    setl_time: Mapped[datetime] = mapped_column(index=True)
    medfee_sumamt: Mapped[str] = mapped_column(String(32))
    # the person's own burden (个人负担总金额) and its cash part (个人现金支出), as the settlement's output
    # gives them; what the watch rules add up (correlate/watch.py). None when not sent.
    psn_part_amt: Mapped[str | None] = mapped_column(String(32), nullable=True)
    psn_cash_pay: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ClaimVisit(Base):
    """A visit (就诊) as registered (2201) or described (2203): who, when, which department and doctor,
    the diagnoses."""

    __tablename__ = "claim_visits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    infno: Mapped[str] = mapped_column(String(8))
    mdtrt_id: Mapped[str] = mapped_column(String(64), index=True)
    psn_no: Mapped[str] = mapped_column(String(64), index=True)
    med_type: Mapped[str | None] = mapped_column(String(8), nullable=True)
    begntime: Mapped[datetime] = mapped_column(index=True)
    dept_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dept_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    atddr_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dr_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    diag_codes: Mapped[list] = mapped_column(JSON, default=list)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


class ClaimPrescription(Base):
    """One drug line of a prescription (电子处方 7101 rxdrugdetail): what the doctor prescribed."""

    __tablename__ = "claim_prescriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    rxno: Mapped[str] = mapped_column(String(64), index=True)
    mdtrt_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    psn_no: Mapped[str] = mapped_column(String(64))
    prsc_time: Mapped[datetime] = mapped_column(index=True)
    med_list_codg: Mapped[str] = mapped_column(String(64))
    drug_genname: Mapped[str | None] = mapped_column(String(200), nullable=True)
    drug_cnt: Mapped[float] = mapped_column(Float)
    drug_pric: Mapped[float | None] = mapped_column(Float, nullable=True)
    medc_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    prsc_dr_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


class ClaimFeeDetail(Base):
    """One fee line (费用明细, 2204 outpatient / 2301 inpatient feedetail). A refund is a line with a
    negative ``cnt`` naming the refunded line in ``init_feedetl_sn``."""

    __tablename__ = "claim_fee_details"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    infno: Mapped[str] = mapped_column(String(8))
    mdtrt_id: Mapped[str] = mapped_column(String(64), index=True)
    feedetl_sn: Mapped[str] = mapped_column(String(64))
    init_feedetl_sn: Mapped[str | None] = mapped_column(String(64), nullable=True)
    psn_no: Mapped[str] = mapped_column(String(64), index=True)
    rxno: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    rx_circ_flag: Mapped[str | None] = mapped_column(String(3), nullable=True)
    fee_ocur_time: Mapped[datetime] = mapped_column(index=True)
    med_list_codg: Mapped[str] = mapped_column(String(64))
    medins_list_codg: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cnt: Mapped[float] = mapped_column(Float)
    pric: Mapped[float] = mapped_column(Float)
    det_item_fee_sumamt: Mapped[str] = mapped_column(String(32))
    prd_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    bilg_dr_codg: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


STOCK_KINDS = ("count", "change", "purchase", "purchase_return", "sale", "sale_return")


class ClaimStockMove(Base):
    """A pharmacy stock record (进销存, 3501-3506): a stock count, a change, a purchase or its return,
    a sale or its return. ``cnt`` is as sent (positive); ``kind`` says which way it moves stock."""

    __tablename__ = "claim_stock_moves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    infno: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    med_list_codg: Mapped[str] = mapped_column(String(64), index=True)
    fixmedins_hilist_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fixmedins_bchno: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)
    cnt: Mapped[float] = mapped_column(Float)
    pric: Mapped[float | None] = mapped_column(Float, nullable=True)
    inv_chg_type: Mapped[str | None] = mapped_column(String(8), nullable=True)
    rtal_docno: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rxno: Mapped[str | None] = mapped_column(String(64), nullable=True)
    setl_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    psn_no: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    drug_trac_codg: Mapped[list] = mapped_column(JSON, default=list)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


# --- the rule library (correlate/rulebook.py) -------------------------------------------------------------------


class RuleEntry(Base):
    """A rule as it stands now: class, names, level, switch, thresholds, effective dates, version."""

    __tablename__ = "rules"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    rule_class: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    level: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    thresholds: Mapped[dict] = mapped_column(JSON, default=dict)
    effective_from: Mapped[datetime | None] = mapped_column(nullable=True)
    effective_to: Mapped[datetime | None] = mapped_column(nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class RuleChange(Base):
    """One version of a rule: who changed it, when, why (required) and the values before and after."""

    __tablename__ = "rule_changes"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("rules.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict] = mapped_column(JSON)


class RuleReference(Base):
    """A rule's reference data (知识库), imported from CSV (correlate/rule_reference.py): a drug's allowed
    days of supply, a drug's substitution group, a price band per drug or per group. ``version`` is the
    rule's version the row was last set in."""

    __tablename__ = "rule_reference"
    __table_args__ = (UniqueConstraint("rule_id", "kind", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("rules.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(200))
    med_list_codg: Mapped[str | None] = mapped_column(String(64), nullable=True)
    group_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)  # drug_genname, as the file names it
    version: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


# --- inpatients (issue 13): admissions 2401 and discharges 2402 in the platform's field names ------------------


class ClaimAdmission(Base):
    """An admission (入院办理 2401 mdtrtinfo / adminfo): who, where, since when, which ward and bed."""

    __tablename__ = "claim_admissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    mdtrt_id: Mapped[str] = mapped_column(String(64), index=True)
    psn_no: Mapped[str] = mapped_column(String(64), index=True)
    med_type: Mapped[str | None] = mapped_column(String(8), nullable=True)
    begntime: Mapped[datetime] = mapped_column(index=True)
    ipt_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    adm_dept_codg: Mapped[str | None] = mapped_column(String(64), nullable=True)
    adm_dept_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    adm_bed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wardarea_bed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    atddr_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    adm_diag_codes: Mapped[list] = mapped_column(JSON, default=list)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


class ClaimDischarge(Base):
    """A discharge (出院办理 2402 dscginfo): the admission (mdtrt_id) ends at ``endtime``."""

    __tablename__ = "claim_discharges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    mdtrt_id: Mapped[str] = mapped_column(String(64), index=True)
    psn_no: Mapped[str] = mapped_column(String(64), index=True)
    endtime: Mapped[datetime] = mapped_column(index=True)
    dscg_way: Mapped[str | None] = mapped_column(String(8), nullable=True)
    dscg_dept_codg: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


# --- watch rules (issue 13): population categories, households, monthly warnings (correlate/watch.py) ----------


class PersonCategory(Base):
    """A population category of an insured person (人员身份: 特困供养, 低保, 脱贫人口, 监测对象, …) with its
    validity, as the platform's 1101 ``idetinfo`` gives it (``psn_idet_type``, ``psn_type_lv``, ``begntime``,
    ``endtime``) or a civil-affairs list names it. ``psn_idet_type`` is kept as sent; which watch category a
    code means is the ``watch_idet_types`` setting."""

    __tablename__ = "person_categories"
    __table_args__ = (UniqueConstraint("psn_no", "psn_idet_type", "begntime"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(String(64), index=True)
    psn_idet_type: Mapped[str] = mapped_column(String(32))
    psn_type_lv: Mapped[str | None] = mapped_column(String(8), nullable=True)
    begntime: Mapped[datetime] = mapped_column()
    endtime: Mapped[datetime | None] = mapped_column(nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # "1101" or "list"
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


class Household(Base):
    """Which household (户) an insured person belongs to and the unit responsible for it (责任单位: the
    town or street, 镇/街), from the civil-affairs or rural-revitalisation lists. ``region`` scopes who may
    see the household's warnings (an inspector's regions, as organisations')."""

    __tablename__ = "household_members"
    psn_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    household_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(100), index=True)
    region: Mapped[str] = mapped_column(String(64), default="default", index=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200))


class WatchRun(Base):
    """One run of the watch rules for a calendar month (scheduled or on demand); a later run of the same
    month replaces that month's warnings."""

    __tablename__ = "watch_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class WatchWarning(Base):
    """A warning of a watch rule for one month: whose (person or household), the figure, the rule's
    threshold and version, the level (1-2 a reminder needing no inquiry), the responsible unit."""

    __tablename__ = "watch_warnings"
    __table_args__ = (UniqueConstraint("month", "rule_id", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("watch_runs.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(60))
    rule_version: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(80))  # "psn:<psn_no>" or "hh:<household_id>"
    psn_no: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    household_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    unit: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    category: Mapped[str | None] = mapped_column(String(16), nullable=True)
    figure: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[str] = mapped_column(String(32))
    first_month: Mapped[str] = mapped_column(String(7))  # the first month this subject crossed this rule
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the inspectors' work on it (correlate/watch_review.py): 待核查 open -> 核查中 reviewing -> 已核实 confirmed
    # | 已排除 dismissed; who holds it; the note it was closed with. A re-run of the month keeps all of it.
    state: Mapped[str] = mapped_column(String(16), default="open", server_default="open", index=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # a web user's username
    state_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


WATCH_STATES = ("open", "reviewing", "confirmed", "dismissed")


class WatchWarningEvent(StatusStep, Base):
    """Append-only history of a watch warning: who, when, the state and the assignee before and after, the note."""

    __tablename__ = "watch_warning_events"
    warning_id: Mapped[int] = mapped_column(ForeignKey("watch_warnings.id"), index=True)
    from_assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)


# --- ward beds (issue 13): bed ids mapped to ward cameras, and the checks of each inpatient day ----------------


class WardBed(Base):
    """A bed as the hospital names it in admissions (``adm_bed`` / ``wardarea_bed``), within its department
    (``adm_dept_codg``; "" = any department of the organisation), the ward camera that sees it and the bed's
    region in that camera's picture. ``ref_day`` / ``ref_night``: the bed empty in daylight and in infrared,
    taken by an operator from a recorded moment ({key, sha256, at, set_by, set_at}; correlate/beds.py)."""

    __tablename__ = "ward_beds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    dept_codg: Mapped[str] = mapped_column(String(64), default="")
    bed_no: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), index=True)
    region: Mapped[list] = mapped_column(JSON, default=list)  # [[x, y], ...] as fractions of the frame
    ref_day: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    ref_night: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "dept_codg", "bed_no", name="uq_ward_beds_bed"),)


class BedCheck(Base):
    """One sampled moment of an admission's bed (correlate/ward_checks.py): present / absent / unknown."""

    __tablename__ = "bed_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    mdtrt_id: Mapped[str] = mapped_column(String(64), index=True)
    psn_no: Mapped[str] = mapped_column(String(64))
    bed_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    camera_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    day: Mapped[str] = mapped_column(String(10))  # local date (claims_timezone) of the check
    slot: Mapped[str] = mapped_column(String(5))  # the check time, HH:MM local
    at: Mapped[datetime] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(8))  # present | absent | unknown
    why: Mapped[str] = mapped_column(String(32))
    light: Mapped[str | None] = mapped_column(String(8), nullable=True)  # day | night (infrared)
    changed: Mapped[float | None] = mapped_column(Float, nullable=True)  # share of the bed region unlike its empty
    brightness: Mapped[float | None] = mapped_column(Float, nullable=True)  # mean grey of the bed region (0-255)
    face: Mapped[str] = mapped_column(String(8), default="none")  # insured | other | none
    face_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    frame_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "mdtrt_id", "at", name="uq_bed_checks_moment"),)
