"""The one settings object. Every knob is an environment variable ``DUALCHECK_<NAME>``.

docs/configuration.md lists them; ``dualcheck config`` prints the effective values
(secrets masked).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SecretsSettingsSource, SettingsConfigDict

# Where Kubernetes (or Docker) mounts the Secret of the service; used when it exists.
DEFAULT_SECRETS_DIR = Path("/run/secrets/dualcheck")
# face-size bands of the match decision (vision/decision.py): terminal >= 150 px, counter 60-150, far < 60
FACE_BANDS = ("terminal", "counter", "far")


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
    s3_region: str = Field("us-east-1", description="S3 region name (MinIO and SeaweedFS accept any).")
    s3_access_key: str | None = Field(
        None, description="Default: generated once for the local SeaweedFS and kept in data_dir."
    )
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret key; never printed.")
    bucket_biometrics: str = Field("dualcheck-biometrics", description="Enrolled photos and face-pay captures.")
    bucket_footage: str = Field("dualcheck-footage", description="Recorded segments and evidence.")
    s3_object_lock: bool = Field(
        True, description="Make new buckets with S3 object lock (versioned): evidence holds then also set S3 "
        "legal holds, so the store itself refuses to delete held footage and captures. An existing bucket keeps "
        "how it was made.")

    # --- local SeaweedFS (dualcheck services up) -------------------------------------
    seaweed_master_port: int = Field(9333, description="Local SeaweedFS master port (gRPC: +10000).")
    seaweed_volume_port: int = Field(8080, description="Local SeaweedFS volume server port (gRPC: +10000).")
    seaweed_filer_port: int = Field(8888, description="Local SeaweedFS filer port (gRPC: +10000).")
    seaweed_start_timeout_s: float = Field(60.0, description="How long `services up` waits for S3 to answer.")
    seaweed_max_procs: int = Field(
        1, ge=0, description="CPU cores the local SeaweedFS may run Go code on at once (GOMAXPROCS; 0: all). It shares "
        "the machine with the face models: on one core it stores a face-pay capture with ~0.7 ms less CPU "
        "(docs/benchmarks.md) and leaves the other cores to them.")

    # --- face models ----------------------------------------------------------------
    models_dir: Path | None = Field(None, description="Default: data_dir/models.")
    model_pack: str = Field(
        "yunet_sface",
        description="'yunet_sface' (default pack) or a path to an InsightFace pack directory (SCRFD + ArcFace).",
    )
    match_threshold: float | None = Field(
        None, description="Cosine similarity for a match. Default: the pack's published threshold (SFace 0.363)."
    )
    match_thresholds: dict[str, dict[str, tuple[float, float]]] = Field(
        # from bench/accuracy.py on East Asian LFW identities (docs/face-accuracy.md): SFace's published
        # 0.363 let 1 % of East Asian impostor pairs match at close-up; 0.47 keeps FAR <= 0.1 % (95 % bound);
        # at counter and far sizes impostor pairs reached 0.469, so nothing below 0.50 is a match there
        {"yunet_sface": {"terminal": (0.30, 0.47), "counter": (0.30, 0.50), "far": (0.30, 0.50)}},
        description="Per model pack (its name; a directory pack by its last path part) and per face-size band "
        "(terminal >= 150 px, counter 60-150 px, far < 60 px): (lower, upper) cosine thresholds. At or above "
        "upper a match, below lower a mismatch, in between uncertain (face-pay answers `uncertain`, the "
        "cross-check refers the person to the inspector). match_threshold, when set, replaces these (one threshold, "
        "no uncertain band); a band not given uses the pack's published threshold for both. "
        "Recommend them with `dualcheck calibrate` (docs/face-accuracy.md). JSON in the environment, e.g. "
        '\'{"yunet_sface": {"counter": [0.3, 0.45]}}\'.',
    )
    onnx_threads: int = Field(1, ge=1, description="Intra-op threads per ONNX session.")
    inference_concurrency: int | None = Field(
        None, description="Face analyses run at once per process (the rest queue). Default: the CPU count.")
    face_processes: int | None = Field(
        None, ge=0, description="Model processes of an API process for face-pay captures (each one analysis at "
        "a time, one ONNX thread): the API's event loop then never waits behind face work. Default: "
        "inference_concurrency; 0: in the API process's request threads.")
    face_process_nice: int = Field(
        5, ge=0, le=19, description="CPU niceness added to the model processes, so that the API process "
        "(answers, refusals, health probes) runs first when the cores are full.")

    # --- face quality gates -----------------------------------------------------------
    quality_min_face_px: int = Field(40, description="Smallest face side (pixels) that may enroll or verify.")
    quality_min_det_score: float | None = Field(
        None, description="Lowest detector score. Default: the detector's own (YuNet 0.9, SCRFD 0.5)."
    )
    quality_min_sharpness: float = Field(
        47.0, description="Detail left in the aligned 112x112 grey face, 0-100: 100 x (1 - Crete-Roffet blur "
        "metric, worse axis); calibrated on H.264 CCTV faces vs blurred ones (docs/face-accuracy.md)."
    )
    quality_max_yaw: float = Field(0.45, description="Landmark-based yaw ratio beyond which a face is 'turned away'.")
    quality_max_roll_deg: float = Field(45.0, description="Largest head tilt (angle of the eye line), degrees.")
    detect_max_side: int = Field(
        640, ge=160, description="Detection runs on a copy downscaled to this longest side (coordinates map back)."
    )

    # --- input limits -----------------------------------------------------------------
    max_upload_bytes: int = Field(8 * 1024 * 1024, description="Largest accepted image upload.")
    max_image_pixels: int = Field(40_000_000, description="Largest declared width*height (decompression bombs).")
    max_decoded_bytes: int = Field(
        100_000_000, ge=1_000_000, description="Memory one image may need to decode, from its header: width x "
        "height x (channels x bytes per sample + 3 for the 8-bit BGR result). A JPEG over it is decoded reduced "
        "(1/2 to 1/8) to fit; a PNG over it is refused (413 too_much_memory). The measured peak is about 1.3x "
        "this (docs/operations.md).")
    decode_memory_bytes: int = Field(
        150_000_000, ge=1_000_000, description="Memory (estimated as for max_decoded_bytes) all the image decodes "
        "of one process may hold at once; a decode waits for room, and after 10 s the upload is refused as busy "
        "(503 on /v1/verify).")
    max_decoded_side: int = Field(
        2048, ge=640, description="Longest side of a decoded upload: larger images are decoded reduced (JPEG) or "
        "scaled down (PNG); a face needs far less, and the face pipeline's memory grows with the image.")
    max_photos_per_request: int = Field(10, description="Most photos in one enrollment request.")

    verify_detect_max_side: int = Field(
        320, description="Detector working size for face-pay captures (close-ups: the face is large). "
        "A capture with no face found at this size is searched again at detect_max_side.")

    # --- verification -----------------------------------------------------------------
    capture_retention_days: int = Field(183, description="How long face-pay captures are kept.")
    verify_dominance_ratio: float = Field(
        2.0, gt=1.0, description="A capture's largest face is the payer only if its area is at least this "
        "multiple of the next face's (people queueing behind); otherwise 'multiple_faces'.",
    )
    verify_attestation_max_age_s: float = Field(
        120.0, gt=0, description="A terminal's signed attestation_signed_at may differ from the server's clock by at "
        "most this (either way); older or later: 403 `signature_stale` (docs/verification.md).")
    verify_attestation_rule_cache_s: float = Field(
        2.0, ge=0, le=60, description="How long an API process keeps a terminal's attestation rule (its own or its "
        "organisation's require_attestation) without asking the index again: a change made through this process "
        "acts at once, one made elsewhere (the CLI, another API process) within this many seconds. 0: every "
        "capture reads the rule.")
    verify_replay_window_s: float = Field(
        7 * 86400.0, ge=0, description="A capture repeating one accepted for the same insured person within this "
        "many seconds (same bytes, or the same picture and face: verify_replay_max_phash_distance and "
        "verify_replay_min_similarity) is refused as 409 `replayed_capture`. The captures' perceptual hashes and "
        "embeddings are kept this long. 0: off.")
    verify_replay_max_phash_distance: int = Field(
        8, ge=0, le=64, description="Most bits (of 64) in which a capture's perceptual hash may differ from an "
        "earlier capture's to be the same picture (a JPEG re-encode or slight resize moves 0-2).")
    verify_replay_min_similarity: float = Field(
        0.98, gt=0, le=1, description="Least cosine similarity of the two subjects' face embeddings for a "
        "near-identical capture to be a replay (re-encodes measured 0.989-0.998; another photo of the same "
        "person about 0.75).")
    verify_replay_grey_max_phash_distance: int = Field(
        16, ge=0, le=64, description="The grey zone of the replay check: a capture whose perceptual hash is within "
        "this many bits of an earlier accepted capture's, with a face similarity of at least "
        "verify_replay_grey_min_similarity but not the near-copy bounds, is compared with that capture's stored "
        "picture (registration, docs/verification.md). Light edits measured 0-16 bits.")
    verify_replay_grey_min_similarity: float = Field(
        0.85, gt=0, le=1, description="Least face similarity of the grey zone (crops, brightness, gamma and 1-3 "
        "degree rotations of a capture measured 0.88-0.99; live frames of one person seconds apart reach 0.97 "
        "and are told apart by the registration).")
    verify_replay_max_residual: float = Field(
        6.0, gt=0, le=255, description="Most grey levels (per cell of the picture, 95th percentile) that may differ "
        "between a grey-zone capture and the earlier picture once registered onto it and retoned, for it to be "
        "the same picture (edited copies measured 0.2-5.5, live frames of a real video 0.17 s or more apart 8.8 "
        "or more: bench/capture_replay.py).")
    template_captures_max: int = Field(
        0, ge=0, le=5, description="Face-pay captures kept as further templates per insured person (0: off). "
        "Only a close-up match whose similarity to the person's enrolled photos reaches the terminal band's upper "
        "threshold plus template_capture_margin; the oldest is replaced; erased with the person "
        "(facepay/capture_templates.py, docs/face-accuracy.md).")
    template_capture_margin: float = Field(
        0.15, ge=0.0, le=1.0, description="How far above the match threshold a capture must score against the "
        "enrolled photos to be kept as a template.")
    verify_max_queue: int = Field(
        16, ge=0, description="Face work (POST /v1/verify, photo uploads) admitted per API process beyond the "
        "analyses running at once (inference_concurrency). Past it a request is answered at once, before its "
        "upload is read: 503 `overloaded` with Retry-After, so the terminal can fall back.")
    verify_latency_budget_ms: int = Field(
        500, ge=1, description="Longest an admitted face request may wait for its analysis to start, from "
        "arrival. A request whose expected wait (requests ahead x the measured interval between analyses "
        "under load) is over it is refused at once; one that waited past it anyway is dropped with 503 "
        "`overloaded` rather than analysed late (nothing is stored).")

    # --- recording (dualcheck record) ------------------------------------------------------
    segment_seconds: int = Field(60, ge=10, le=300, description="Target segment length; cut at the next keyframe.")
    spool_dir: Path | None = Field(None, description="Local spool for segments not yet uploaded. Default: data_dir/spool.")
    spool_max_bytes: int = Field(2 * 1024**3, description="Bound of the local spool (all cameras of a recorder).")
    spool_alert_ratio: float = Field(0.8, description="Health alerts when the spool is this full.")
    reconnect_initial_s: float = Field(1.0, description="First wait before reconnecting a lost camera.")
    reconnect_max_s: float = Field(30.0, description="Cap of the exponential reconnect backoff.")
    rtsp_timeout_s: float = Field(10.0, description="Socket timeout reading a camera.")
    recorder_id: str | None = Field(None, description="Name of this recorder replica. Default: hostname-pid.")
    camera_credentials_key: SecretStr | None = Field(
        None, description="Fernet key(s) sealing camera passwords in the database, comma-separated: the first "
        "seals, every one opens (rotation: put the new key first, run `dualcheck cameras seal`, then drop the "
        "old). Every process of a region needs the same value (`dualcheck cameras new-key` makes one). Unset: "
        "with SQLite a key file made once in data_dir (the embedded default); with PostgreSQL camera passwords "
        "are refused until it is set.")
    camera_offline_after_s: float = Field(30.0, description="No packet for this long: the camera is offline.")
    camera_clock_alert_s: float = Field(
        2.0, gt=0, description="Camera health alerts when a camera's own clock (its RTCP sender reports) is off "
        "the recorder's receive clock by more than this (seconds, either way). Footage times follow the "
        "receive clock whatever the camera's clock says; the alert says the camera's NTP needs fixing.")
    camera_offline_alert_minutes: int = Field(
        10, ge=1, description="A camera offline for longer than this is listed as an alert at the top of the "
        "cameras page, with the time it went down.")
    camera_test_timeout_s: float = Field(
        8.0, gt=0, le=60, description="How long a stream test (`cameras test`, the cameras page) waits for the "
        "camera's first picture.")
    record_poll_s: float = Field(30.0, gt=0, description="How often `dualcheck record` re-reads the camera registry.")
    record_lease_ttl_s: float = Field(
        20.0, ge=3, description="Camera lease lifetime (database clock); renewed every third of it. A dead "
        "recorder's cameras are taken over after about 1.3x this (plus reconnect): shorter fails over faster, "
        "longer tolerates slower database round trips.")
    record_status_interval_s: float = Field(
        5.0, gt=0, description="How often the recorder writes camera_status rows (state changes are written at once).")
    upload_workers: int = Field(
        2, ge=1, description="Upload+index threads of a recorder; a camera always goes through the same one (order).")
    upload_retry_max_s: float = Field(
        10.0, gt=0, description="Cap of the backoff between attempts to upload/index while the store or DB is down.")
    clock_max_latency_s: float = Field(
        2.0, gt=0, description="A camera's RTCP sender-report clock is used only if it puts packets at most this "
        "long before they arrived (and never after); otherwise segment times come from the receive clock.")
    clock_resync_s: float = Field(
        1.0, gt=0, description="Consecutive segments of one connection stay back to back unless the stream clock "
        "drifted this far from the wall clock; then the next segment re-anchors.")
    record_stop_grace_s: float = Field(
        15.0, ge=0, description="On SIGTERM, how long to keep uploading spooled segments before exiting "
        "(the rest stays in the spool for the next start).")

    # --- retention ----------------------------------------------------------------------
    retention_days: int = Field(183, description="Default footage retention (six months); per organisation overridable "
                                "(`dualcheck orgs retention`, PUT /v1/orgs/{id}/retention, the organisations page).")
    retention_batch: int = Field(1000, description="Segments deleted per batch (one S3 multi-object delete).")

    # --- replay and export --------------------------------------------------------------------
    clip_max_seconds: int = Field(1800, ge=10, description="Longest clip (replay or evidence export) one request may ask for.")
    hls_max_seconds: int = Field(12 * 3600, ge=60, description="Longest time range one HLS playlist may cover.")
    transcode_concurrency: int = Field(
        1, ge=1, description="H.265 clips transcoded to H.264 at once for browsers without HEVC (each takes about a "
        "core while it runs); a request beyond that is answered 503 busy at once.")
    transcode_cache_bytes: int = Field(
        2 * 1024**3, ge=0, description="Bound of the cache of H.264 copies (data_dir/transcode), oldest used first out.")

    # --- correlation: settlements vs footage and face-pay (correlate/, docs/correlation.md) ------------
    correlate_window_s: dict[str, tuple[float, float]] = Field(
        {"default": (120.0, 30.0)}, description="Seconds (before, after) a settlement's time to look at, per camera "
        "role (settlement_counter, pharmacy_counter, consulting_room, ward, entrance); 'default' for the others. "
        "JSON, e.g. {\"default\": [120, 30], \"consulting_room\": [900, 60]}.")
    correlate_sample_interval_s: float = Field(
        2.0, gt=0, description="Target spacing of the frames examined. Keyframes are used when the camera's "
        "keyframe interval is at most this (no full decode); otherwise every frame is decoded and sampled.")
    correlate_detect_max_side: int = Field(
        480, ge=160, description="Face detector working size for footage frames (smaller is faster; faces of "
        "40 px in a 640x360 frame still found at 480).")
    correlate_min_presence_area: float = Field(
        0.004, gt=0, lt=1, description="Smallest changed region (fraction of the frame, after denoising) that "
        "counts as a person when no face is found (background difference or motion).")
    correlate_embed_per_track: int = Field(
        3, ge=1, description="Most faces of one tracked person that are embedded and compared (best quality first).")
    correlate_min_coverage: float = Field(
        0.9, gt=0, le=1, description="Fraction of the window the footage must cover for ghost_visit or "
        "impersonation; less is footage_missing (unless the insured person is seen).")
    correlate_footage_grace_s: float = Field(
        150.0, ge=0, description="After the window ends, how long a check waits for segments in any case "
        "(a segment is uploaded when it closes: segment_seconds plus upload time).")
    correlate_footage_max_wait_s: float = Field(
        3600.0, ge=0, description="Longest wait for footage past the window end while the camera is recording "
        "(online or spooling); after that the check decides with what is there.")
    correlate_recheck_s: float = Field(30.0, gt=0, description="How soon a waiting settlement is checked again.")
    correlate_max_attempts: int = Field(5, ge=1, description="Attempts of a failing check (errors, not waiting) "
                                        "before the settlement is marked failed.")
    correlate_job_poll_s: float = Field(2.0, gt=0, description="Poll interval of the in-process worker (SQLite).")
    correlate_levels: dict[str, int] = Field(
        {}, description="Overrides of the flag type -> warning level mapping (1-5), JSON; see correlate/levels.py "
        "and docs/correlation.md for the defaults.")
    report_font: str = Field(
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", description="A TrueType font with Chinese glyphs for the "
        "PDF case report (Debian: fonts-wqy-microhei).")
    inquiry_ack_working_days: int = Field(
        3, ge=1, le=60, description="An online inquiry (网上质询) is to be acknowledged (签收) by the institution "
        "within this many working days (Monday-Friday in web_timezone).")
    inquiry_answer_working_days: int = Field(
        15, ge=1, le=120, description="An online inquiry is to be answered within this many working days.")
    inquiry_deadlines_by_level: dict[int, tuple[int, int]] = Field(
        {}, description="Per warning level, (acknowledge, answer) working days overriding the two above, JSON, "
        "e.g. '{\"4\": [2, 10]}'.")
    inquiry_attachment_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest file an institution may attach to an answer (PDF, JPEG, PNG; "
        "the type is read from the content).")
    inquiry_attachment_max_files: int = Field(5, ge=1, le=50, description="Most files attached to one answer.")
    correlate_many_cards_min: int = Field(
        3, ge=2, description="One face settling for at least this many different insured people at one "
        "organisation within correlate_many_cards_days is flagged (代刷套现).")
    correlate_many_cards_days: float = Field(7.0, gt=0, description="Time span of the one-face-many-cards rule.")
    correlate_footage_missing_repeat: int = Field(
        3, ge=2, description="This many footage_missing outcomes at one organisation within "
        "correlate_footage_missing_days raise a repeated_footage_missing flag.")
    correlate_footage_missing_days: float = Field(7.0, gt=0, description="Time span of the repeated footage_missing rule.")
    correlate_import_max_rows: int = Field(10000, ge=1, description="Most settlements in one POST /v1/settlements.")
    claims_max_lines: int = Field(
        20000, ge=1, description="Most records (lines) in one POST /v1/claims request (the body is also bounded by "
        "max_upload_bytes, about 20,000 fee lines): fee details, visits, "
        "prescription lines, stock records and settlements in the national platform's field names (docs/claims.md).")
    claims_timezone: str = Field(
        "Asia/Shanghai", description="Time zone of the platform's times, which carry none ('yyyy-MM-dd HH:mm:ss'); "
        "a time with a zone or offset keeps its own.")
    claims_check_max_days: int = Field(
        31, ge=1, description="Longest period one run of the data checks (dualcheck claims check, POST /v1/claims/check) "
        "covers.")
    watch_idet_types: dict[str, str] = Field(
        {"7131": "tekun", "7019": "dibao", "7202": "jiance", "7203": "jiance", "7204": "jiance", "7205": "jiance"},
        description="Watch rules (docs/inpatient.md): which population category (tekun 特困供养, dibao 低保, tuopin "
        "脱贫人口, jiance 监测对象) each code of the platform's psn_idet_type (1101 idetinfo) means, JSON. The codes "
        "are the province's dictionary; set them to yours. The categories' names themselves are always understood.")
    watch_schedule_day: int = Field(
        1, ge=1, le=28, description="Watch rules: on this day of each month (in claims_timezone) the worker runs the "
        "past month's watch rules, once (a month already run is not run again by the schedule).")
    watch_schedule: bool = Field(True, description="Watch rules: whether the worker runs them monthly.")
    ward_schedule: bool = Field(
        True, description="Bed-hanging (docs/inpatient.md): whether the worker checks the open admissions' beds "
        "daily, at the previous day's check times of the rule (each check time once).")
    ward_schedule_time: str = Field(
        "01:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Bed-hanging: local time (claims_timezone, "
        "HH:MM) from which the worker checks the previous day's beds; later than the last check time's footage "
        "upload.")
    ward_schedule_days: int = Field(
        2, ge=1, le=31, description="Bed-hanging: days before today the daily run looks back over (a worker that "
        "was down catches up; check times already checked are not checked again).")
    watch_max_lines: int = Field(
        100000, ge=1, description="Watch rules: most records in one population import (POST /v1/watch/population).")
    correlate_regulars_days: float = Field(
        7.0, gt=0, description="Unknown regulars: how many days of one camera's unrecognised faces are looked at after "
        "each check to find a face present at that counter most of the time (an unenrolled member of staff?).")
    correlate_regulars_min_share: float = Field(
        0.5, gt=0, le=1, description="Unknown regulars: a face seen in at least this share of one camera's checks "
        "within correlate_regulars_days is suggested to operators as a likely staff member.")
    correlate_regulars_min_checks: int = Field(
        5, ge=2, description="Unknown regulars: the least number of checks a face must be seen in to be suggested.")
    correlate_regulars_min_days: int = Field(
        2, ge=1, description="Unknown regulars: the least number of distinct days (in web_timezone) a face must be "
        "seen on to be suggested.")

    # --- embedded demo (dualcheck run) ------------------------------------------------------
    demo_testdata: Path | None = Field(
        None, description="Portraits and scenes the demo enrolls and films. Default: ../shared/testdata beside the repo.")

    # --- web UI (api/web/, users and browser sessions) --------------------------------------------
    web_session_hours: float = Field(
        8.0, gt=0, description="A browser session expires this long after login (one working day); then log in again.")
    web_login_max_failures: int = Field(
        5, ge=1, description="Failed logins of one username from one address within web_login_window_s before "
        "further attempts are refused (429) until the window has passed.")
    web_login_max_failures_per_address: int = Field(
        20, ge=1, description="Failed logins from one address, whatever the usernames, within web_login_window_s "
        "before that address is refused (429): guessing across accounts.")
    web_login_max_account_failures: int = Field(
        20, ge=1, description="Failed logins of one username from browsers it never logged in from, within "
        "web_login_window_s, before such browsers are refused (429) for it. A browser where the user logged in "
        "before (its device cookie) still gets in with the right password: an attacker cannot lock the user out.")
    web_login_window_s: float = Field(300.0, gt=0, description="Window of the login rate limit, seconds.")
    web_cookie_secure: bool = Field(
        False, description="Mark the session cookie Secure (set true when the UI is served over HTTPS).")
    web_default_lang: Literal["zh", "en"] = Field(
        "zh", description="Language of the web UI until a user switches (remembered in a cookie).")
    web_timezone: str = Field("Asia/Shanghai", description="Time zone in which the web UI shows times.")

    # --- API ----------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8000, description="Port the API listens on.")
    api_workers: int = Field(1, description="API processes (uvicorn workers); each loads the models once.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    # --- observability (kernel/logs.py, kernel/metrics.py, docs/observability.md) -------------------------
    log_format: Literal["text", "json"] = Field(
        "text", description="'json': one JSON object per line (timestamp, level, logger, message, role, "
        "request_id) for log collectors, as deployed; 'text' for a terminal.")
    metrics_port: int = Field(
        0, ge=0, description="Port of the Prometheus /metrics endpoint of `record`, `correlate worker` and "
        "`retention run` (the API serves /metrics on its own port). 0 = off.")
    metrics_addr: str = Field("0.0.0.0", description="Address the metrics endpoint of those processes binds to.")
    metrics_token: SecretStr | None = Field(
        None, description="If set, the API's GET /metrics requires 'Authorization: Bearer <token>'. Unset: "
        "open (keep /metrics off the public Ingress; Prometheus scrapes pods directly).")

    # --- hardening (api/ratelimit.py, api/security.py, docs/operations.md) --------------------------
    secrets_dir: Path | None = Field(
        None, description="Directory of secret files, one per setting, named like the variable (e.g. "
        "DUALCHECK_S3_SECRET_KEY; a Kubernetes Secret volume); a trailing newline is stripped. An environment "
        "variable of the same name wins over the file. Default: /run/secrets/dualcheck when it exists.")
    rate_limit_terminal: str = Field(
        "60/minute", description="Requests per terminal (all keys of one terminal together, e.g. its verify calls), "
        "moving window, e.g. '60/minute' or '10/second;100/minute'. Empty: no limit.")
    rate_limit_user: str = Field(
        "600/minute", description="Requests per user or service key for every other authenticated call "
        "(API and web UI). Empty: no limit.")
    rate_limit_storage_uri: str = Field(
        "memory://", description="Where rate-limit counters live (limits library URI): memory:// counts per "
        "API process; a shared redis://host:6379 gives one limit across all API replicas of a region.")
    api_forwarded_allow_ips: str = Field(
        "", description="Addresses or networks (comma-separated, e.g. 10.244.0.0/16) of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's forwarded_allow_ips). Empty: none, the "
        "client address is the peer's. Set it to the ingress/TLS proxy only: a trusted header names the client "
        "the login limits count.")
    api_key_cache_s: float = Field(
        2.0, ge=0, le=60, description="How long an API process trusts an API key it has checked, without asking "
        "the index again: a revoked key (dualcheck keys revoke, terminals revoke) is refused within this many "
        "seconds. 0: every request checks the index.")
    api_hsts_max_age_s: int = Field(
        0, ge=0, description="Above 0: Strict-Transport-Security with this max-age on responses to HTTPS "
        "requests (direct TLS, or X-Forwarded-Proto: https from the TLS proxy). Set 31536000 in production.")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # Secret files come after init and the environment (env wins). The directory itself can only
        # come from init or the environment: it decides where the other values are read from.
        if getattr(file_secret_settings, "secrets_dir", None) is None:
            d = (init_settings.init_kwargs.get("secrets_dir") or os.environ.get("DUALCHECK_SECRETS_DIR")
                 or (DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None))
            if d:
                file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=Path(d))
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("rate_limit_terminal", "rate_limit_user")
    @classmethod
    def _rate(cls, v: str) -> str:

        if v.strip():
            parse_many(v)  # refuse a malformed limit at start-up, not at the first request
        return v.strip()

    @field_validator("match_thresholds")
    @classmethod
    def _check_match_thresholds(cls, v: dict) -> dict:
        for pack, bands in v.items():
            for band, (lo, up) in bands.items():
                if band not in FACE_BANDS:
                    raise ValueError(f"match_thresholds[{pack!r}]: unknown band {band!r} (one of {', '.join(FACE_BANDS)})")
                if not -1.0 <= lo <= up <= 1.0:
                    raise ValueError(f"match_thresholds[{pack!r}][{band!r}]: need -1 <= lower <= upper <= 1, "
                                     f"got ({lo}, {up})")
        return v

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


def settings_table() -> str:
    """docs/configuration.md's table, made from the fields so the docs cannot drift."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, f in Settings.model_fields.items():
        default = f.default
        if isinstance(default, Path):
            default = str(default)
        shown = "—" if default is None else f"`{default}`"
        rows.append(f"| `DUALCHECK_{name.upper()}` | {shown} | {(f.description or '').replace('|', '/')} |")
    return "\n".join(rows) + "\n"
