"""The one settings object. Every knob is an environment variable ``DUALCHECK_<NAME>``.

docs/configuration.md lists them; ``dualcheck config`` prints the effective values
(secrets masked).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUALCHECK_", env_file=None, extra="ignore")

    # --- where things live ---------------------------------------------------------
    data_dir: Path = Field(Path("var"), description="Local state: SQLite file, SeaweedFS data, spool, models.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite file in data_dir (the embedded default)."
    )

    # --- object storage (S3 API: SeaweedFS here, MinIO in production) -------------------
    s3_endpoint: str = Field("127.0.0.1:8333", description="host:port of the S3 API.")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the S3 API.")
    s3_region: str = Field("us-east-1")
    s3_access_key: str | None = Field(
        None, description="Default: generated once for the local SeaweedFS and kept in data_dir."
    )
    s3_secret_key: SecretStr | None = None
    bucket_biometrics: str = Field("dualcheck-biometrics", description="Enrolled photos and face-pay captures.")
    bucket_footage: str = Field("dualcheck-footage", description="Recorded segments and evidence.")

    # --- local SeaweedFS (dualcheck services up) -------------------------------------
    seaweed_master_port: int = 9333
    seaweed_volume_port: int = 8080
    seaweed_filer_port: int = 8888
    seaweed_start_timeout_s: float = 60.0

    # --- face models ----------------------------------------------------------------
    models_dir: Path | None = Field(None, description="Default: data_dir/models.")
    model_pack: str = Field(
        "yunet_sface",
        description="'yunet_sface' (default pack) or a path to an InsightFace pack directory (SCRFD + ArcFace).",
    )
    match_threshold: float | None = Field(
        None, description="Cosine similarity for a match. Default: the pack's published threshold (SFace 0.363)."
    )
    onnx_threads: int = Field(1, ge=1, description="Intra-op threads per ONNX session.")

    # --- face quality gates -----------------------------------------------------------
    quality_min_face_px: int = Field(40, description="Smallest face side (pixels) that may enroll or verify.")
    quality_min_det_score: float | None = Field(
        None, description="Lowest detector score. Default: the detector's own (YuNet 0.9, SCRFD 0.5)."
    )
    quality_min_sharpness: float = Field(
        8.0, description="Variance of the Laplacian on the aligned 112x112 grey face, contrast-normalised, x100."
    )
    quality_max_yaw: float = Field(0.45, description="Landmark-based yaw ratio beyond which a face is 'turned away'.")
    quality_max_roll_deg: float = Field(45.0, description="Largest head tilt (angle of the eye line), degrees.")
    detect_max_side: int = Field(
        640, ge=160, description="Detection runs on a copy downscaled to this longest side (coordinates map back)."
    )

    # --- input limits -----------------------------------------------------------------
    max_upload_bytes: int = Field(8 * 1024 * 1024, description="Largest accepted image upload.")
    max_image_pixels: int = Field(40_000_000, description="Largest declared width*height (decompression bombs).")
    max_photos_per_request: int = Field(10)

    # --- verification -----------------------------------------------------------------
    capture_retention_days: int = Field(183, description="How long face-pay captures are kept.")
    verify_dominance_ratio: float = Field(
        2.0, gt=1.0, description="A capture's largest face is the payer only if its area is at least this "
        "multiple of the next face's (people queueing behind); otherwise 'multiple_faces'.",
    )

    # --- recording (dualcheck record) ------------------------------------------------------
    segment_seconds: int = Field(60, ge=10, le=300, description="Target segment length; cut at the next keyframe.")
    spool_dir: Path | None = Field(None, description="Local spool for segments not yet uploaded. Default: data_dir/spool.")
    spool_max_bytes: int = Field(2 * 1024**3, description="Bound of the local spool (all cameras of a recorder).")
    spool_alert_ratio: float = Field(0.8, description="Health alerts when the spool is this full.")
    reconnect_initial_s: float = Field(1.0, description="First wait before reconnecting a lost camera.")
    reconnect_max_s: float = Field(30.0, description="Cap of the exponential reconnect backoff.")
    rtsp_timeout_s: float = Field(10.0, description="Socket timeout reading a camera.")
    recorder_id: str | None = Field(None, description="Name of this recorder replica. Default: hostname-pid.")
    camera_offline_after_s: float = Field(30.0, description="No packet for this long: the camera is offline.")

    # --- retention ----------------------------------------------------------------------
    retention_days: int = Field(183, description="Default footage retention (six months); per organisation overridable.")
    retention_batch: int = Field(1000, description="Segments deleted per batch (one S3 multi-object delete).")

    # --- API ----------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    # --- derived --------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'dualcheck.db'}"

    @property
    def effective_models_dir(self) -> Path:
        return (self.models_dir or self.data_dir / "models").expanduser().resolve()

    @property
    def effective_spool_dir(self) -> Path:
        return (self.spool_dir or self.data_dir / "spool").expanduser().resolve()

    @property
    def seaweed_dir(self) -> Path:
        return self.data_dir / "seaweedfs"

    @property
    def s3_port(self) -> int:
        return int(self.s3_endpoint.rsplit(":", 1)[1])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
