"""Wiring: the long-lived parts one process needs, built once from the settings.

This is the composition root (top floor): it is the only place that knows every stage. Each stage
gets just the parts it uses (a session factory, the store, the pipeline, the settings); nothing
below this floor imports it."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from correlate.check import Checker
from correlate.jobs import Jobs
from facepay.enrollment import Enroller
from facepay.verification import Verifier
from ingest.credentials import CredentialBox
from kernel.admission import AdmissionGate
from kernel.settings import Settings
from storage.db import make_engine, make_sessionmaker
from storage.holds import LegalHolds
from storage.objects import ObjectStore
from storage.playable import PlayableCopies
from vision.pipeline import FacePipeline
from vision.workers import CaptureLimits, FaceProcesses, InProcessFaces


@dataclass
class Runtime:
    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def store(self) -> ObjectStore:
        store = ObjectStore.from_settings(self.settings)
        store.ensure_bucket(self.settings.bucket_biometrics)
        return store

    @cached_property
    def legal_holds(self) -> LegalHolds:
        """Evidence holds are mirrored into the store's legal holds (object-lock buckets) through this."""
        return LegalHolds(self.store, self.settings)

    @cached_property
    def playable(self) -> PlayableCopies:
        """H.264 copies of H.265 clips for browsers without HEVC: bounded CPU, cached in data_dir."""
        s = self.settings
        return PlayableCopies(s.data_dir / "transcode", s.transcode_concurrency, s.transcode_cache_bytes)

    @cached_property
    def credentials(self) -> CredentialBox:
        """Seals and opens camera passwords (ingest/credentials.py)."""
        return CredentialBox.from_settings(self.settings)

    @cached_property
    def inference_slots(self) -> threading.BoundedSemaphore:
        """At most this many face analyses at once: more threads than cores only thrash the caches."""
        return threading.BoundedSemaphore(self.inference_workers)

    @property
    def inference_workers(self) -> int:
        return self.settings.inference_concurrency or os.cpu_count() or 1

    @cached_property
    def admission(self) -> AdmissionGate:
        """Bounds the face work in flight in this process over the same slots (kernel/admission.py)."""
        s = self.settings
        return AdmissionGate(self.inference_slots, workers=self.inference_workers, max_queue=s.verify_max_queue,
                             budget_s=s.verify_latency_budget_ms / 1000)

    @cached_property
    def pipeline(self) -> FacePipeline:
        with self._lock:  # two first requests must not load the models twice
            return FacePipeline.from_settings(self.settings)

    @cached_property
    def face_work(self) -> InProcessFaces | FaceProcesses:
        """Where captures are analysed: model processes (face_processes, default one per inference slot) or
        this process's request threads (vision/workers.py)."""
        s = self.settings
        limits = CaptureLimits.from_settings(s)
        n = self.inference_workers if s.face_processes is None else s.face_processes
        if n == 0:
            return InProcessFaces(self.pipeline, limits)
        return FaceProcesses(s, limits, processes=n, nice=s.face_process_nice)

    @cached_property
    def verifier(self) -> Verifier:
        return Verifier(settings=self.settings, sessions=self.sessions, store=self.store, pipeline=self.pipeline,
                        inference_slots=self.inference_slots, faces=self.face_work)

    @cached_property
    def enroller(self) -> Enroller:
        return Enroller(settings=self.settings, sessions=self.sessions, store=self.store, pipeline=self.pipeline)

    @cached_property
    def checker(self) -> Checker:
        return Checker(settings=self.settings, sessions=self.sessions, store=self.store, pipeline=self.pipeline,
                       legal=self.legal_holds)

    @cached_property
    def jobs(self) -> Jobs:
        """The check queue of this process (keeps its enqueueing connections open); the checker, and so
        the models, are built only if this process runs checks."""
        return Jobs(settings=self.settings, engine=self.engine, sessions=self.sessions, checker=lambda: self.checker)

    def close(self) -> None:
        if "face_work" in self.__dict__:
            self.face_work.close()
        if "jobs" in self.__dict__:
            self.jobs.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
