"""Every Prometheus metric of dualcheck, defined here and nowhere else (docs/observability.md lists them).

Rules: names start with ``dualcheck_`` and carry their unit; labels are small, bounded sets (camera id,
organisation id, decision, flag type/level, route template) - never an insured id, a settlement id or
anything biometric.

Counters and histograms live in one process-wide :data:`REGISTRY`; what must be read from the
database (job queue depth and age, open flags, the last retention run) is a collector of the storage
floor (storage/db_metrics.py) queried at scrape time, so every replica shows the same truth without keeping state. Each process
exposes :func:`registry_for` (the global metrics plus its own collectors): the API on ``GET
/metrics``, ``dualcheck record`` / ``correlate worker`` / ``retention run`` on
``DUALCHECK_METRICS_PORT`` through :func:`serve`.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

# no `*_created` series beside every counter: they double the scrape and no panel or alert uses them
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU, memory, open fds of the process
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# --- HTTP API ------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("dualcheck_http_requests", "HTTP requests answered by the API.",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram("dualcheck_http_request_duration_seconds", "Time to answer an HTTP request.",
                          ["method", "route"], registry=REGISTRY,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# --- face-pay verification and enrollment (api/routes/verify.py, api/routes/insured.py) --------------
# 20 ms .. 2 s is where a verification lives (SFace ~30 ms, a queue under load ~1 s); 5 s catches the rest.
VERIFY_DURATION = Histogram("dualcheck_verify_duration_seconds",
                            "Face-pay verification time in the API (decode, detect, embed, store, index).",
                            registry=REGISTRY,
                            buckets=(0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0))
VERIFY_DECISIONS = Counter("dualcheck_verify_decisions", "Face-pay verifications by decision.",
                           ["org", "decision"], registry=REGISTRY)
VERIFY_REFUSED = Counter("dualcheck_verify_refused", "Face-pay requests refused before a decision (4xx), by code.",
                         ["code"], registry=REGISTRY)

# --- admission of face work (kernel/admission.py, api/admission.py): type = verify | enrol ---------------
ADMISSION_ADMITTED = Counter("dualcheck_admission_admitted", "Face-work requests admitted (verifications, photo "
                             "uploads).", ["type"], registry=REGISTRY)
ADMISSION_REFUSED = Counter("dualcheck_admission_refused", "Face-work requests answered 503 overloaded, by reason: "
                            "queue_full, over_budget (expected wait over the latency budget), stale (waited past it).",
                            ["type", "reason"], registry=REGISTRY)
ADMISSION_IN_FLIGHT = Gauge("dualcheck_admission_in_flight", "Face-work requests admitted and not yet answered.",
                            registry=REGISTRY)
ADMISSION_WAIT = Histogram("dualcheck_admission_wait_seconds", "From admission to the start of the analysis.",
                           registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
ANONYMOUS_REFUSALS = Counter("dualcheck_anonymous_refusals", "Requests refused to callers with no valid credential, "
                             "by route template and code (audited by sample: api/errors.py).", ["route", "code"],
                             registry=REGISTRY)

# --- recording (ingest/) ---------------------------------------------------------------------------
CAMERA_BYTES = Counter("dualcheck_camera_recorded_bytes", "Bytes of footage recorded into the spool, per camera.",
                       ["camera", "org"], registry=REGISTRY)
CAMERA_SEGMENTS = Counter("dualcheck_camera_segments", "Segments recorded (closed into the spool), per camera.",
                          ["camera", "org"], registry=REGISTRY)
CAMERA_RECONNECTS = Counter("dualcheck_camera_reconnects", "Times a camera's stream was lost and reconnected.",
                            ["camera", "org"], registry=REGISTRY)
CAMERA_GAPS = Counter("dualcheck_camera_gaps", "Recording gaps opened, per camera and reason "
                      "(camera_offline, camera_stalled, spool_full, lease takeovers).", ["camera", "org", "reason"], registry=REGISTRY)
SEGMENTS_UPLOADED = Counter("dualcheck_segments_uploaded", "Segments uploaded to the store and indexed.",
                            ["camera", "org"], registry=REGISTRY)
UPLOAD_RETRIES = Counter("dualcheck_upload_retries", "Failed upload/index attempts (store or DB down), retried.",
                         registry=REGISTRY)
SEGMENT_INDEX_DELAY = Histogram("dualcheck_segment_index_delay_seconds",
                                "From a segment's end to its index row (spool wait + upload + index).",
                                registry=REGISTRY, buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600))

# --- correlation (correlate/) ------------------------------------------------------------------------
CHECKS = Counter("dualcheck_checks", "Settlement checks run, by resulting status (done, waiting, pending, failed).",
                 ["status"], registry=REGISTRY)
FLAGS_RAISED = Counter("dualcheck_flags_raised", "Flags created, by type and warning level.",
                       ["type", "level"], registry=REGISTRY)

# --- retention (storage/retention.py) -----------------------------------------------------------------
RETENTION_SEGMENTS = Counter("dualcheck_retention_deleted_segments", "Footage segments deleted by retention.",
                             registry=REGISTRY)
RETENTION_BYTES = Counter("dualcheck_retention_deleted_bytes", "Footage bytes deleted by retention.",
                          registry=REGISTRY)
RETENTION_CAPTURES = Counter("dualcheck_retention_deleted_captures", "Face-pay captures deleted by retention.",
                             registry=REGISTRY)
RETENTION_FAILURES = Counter("dualcheck_retention_object_delete_failures",
                             "Objects retention could not delete (kept in the index, retried next run).",
                             registry=REGISTRY)
RETENTION_RUNS = Counter("dualcheck_retention_runs", "Retention runs, by outcome (ok, dry_run, failed).",
                         ["outcome"], registry=REGISTRY)


# --- scrape-time collectors ---------------------------------------------------------------------------
class RecorderCollector:
    """Live state of the recorders of this process: spool depth, upload queue, camera online/last packet.

    Holds recorders weakly: a stopped recorder disappears from the scrape (tests run several per process).
    """

    def __init__(self) -> None:
        self._recorders: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, rec) -> None:
        with self._lock:
            self._recorders.add(rec)

    def remove(self, rec) -> None:
        with self._lock:
            self._recorders.discard(rec)

    def _families(self):
        return (
            GaugeMetricFamily("dualcheck_spool_bytes", "Bytes waiting in the local spool.", labels=["shard"]),
            GaugeMetricFamily("dualcheck_spool_limit_bytes", "Bound of the local spool.", labels=["shard"]),
            GaugeMetricFamily("dualcheck_upload_queue_items", "Segments and gap records waiting for upload/index.",
                              labels=["shard"]),
            GaugeMetricFamily("dualcheck_camera_online", "1 when the camera is delivering video, else 0.",
                              labels=["camera", "org"]),
            GaugeMetricFamily("dualcheck_camera_last_packet_age_seconds", "Seconds since the camera's last packet.",
                              labels=["camera", "org"]),
            # the sub-stream of a camera recording both: its own connection, which can fail alone
            GaugeMetricFamily("dualcheck_camera_sub_online", "1 when the camera's sub-stream is delivering video, "
                              "else 0 (cameras recording their sub-stream too).", labels=["camera", "org"]),
            GaugeMetricFamily("dualcheck_camera_sub_last_packet_age_seconds", "Seconds since the last packet of the "
                              "camera's sub-stream.", labels=["camera", "org"]),
        )

    def describe(self):
        return self._families()

    def collect(self):
        spool, limit, queue, online, age, sub_online, sub_age = self._families()
        now = time.time()
        with self._lock:
            recs = list(self._recorders)
        for rec in recs:
            tag = rec.shard.tag
            spool.add_metric([tag], rec.spool.used)
            limit.add_metric([tag], rec.spool.max_bytes)
            queue.add_metric([tag], rec.uploader.pending())
            for cam_id, cam in list(rec.cameras.items()):
                labels = [cam_id, cam.cfg.org_id]
                online.add_metric(labels, 1.0 if cam.status.state == "online" else 0.0)
                if cam.status.last_packet_at:
                    age.add_metric(labels, max(0.0, now - cam.status.last_packet_at))
                sub = cam.sub
                if sub is not None:
                    sub_online.add_metric(labels, 1.0 if sub.status.state == "online" else 0.0)
                    if sub.status.last_packet_at:
                        sub_age.add_metric(labels, max(0.0, now - sub.status.last_packet_at))
        return [spool, limit, queue, online, age, sub_online, sub_age]


RECORDERS = RecorderCollector()
REGISTRY.register(RECORDERS)


class _Combined:
    """The process registry plus this endpoint's own collectors, as one collector to render."""

    def __init__(self, *collectors) -> None:
        self.collectors = (REGISTRY, *collectors)

    def collect(self):
        for c in self.collectors:
            yield from c.collect()


def registry_for(*collectors):
    """What one endpoint exposes: every metric of the process plus ``collectors`` (e.g. storage.db_metrics.DbCollector)."""
    return _Combined(*collectors)


def render(registry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


def all_metric_names(*extra) -> set[str]:
    """Names of every sample a scrape can contain (``_total``, ``_bucket``... included), for the dashboard
    check; ``extra`` collectors are described without touching their data sources."""
    names: set[str] = set()
    fams = [m for c in (REGISTRY,) for m in c.collect()]
    for c in extra:
        fams += list(c.describe())
    for fam in fams:
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                    "summary": ("_count", "_sum", "_created")}.get(fam.type, ("",))
        names.update(fam.name + s for s in suffixes)
        names.update(s.name for s in fam.samples)
    return names


def serve(port: int, addr: str = "0.0.0.0", *collectors):
    """Expose ``/metrics`` of a non-HTTP process (recorder, worker, retention) on ``port``; 0 = off.
    Returns the server (``.shutdown()``) or None."""
    if not port:
        return None
    server, _thread = start_http_server(port, addr=addr, registry=registry_for(*collectors))
    log.info("metrics on http://%s:%d/metrics", addr, port)
    return server
