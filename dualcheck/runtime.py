"""Wiring: the long-lived parts one process needs, built once from the settings."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dualcheck.settings import Settings
from storage.db import make_engine, make_sessionmaker
from storage.objects import ObjectStore


@dataclass
class Runtime:
    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        factory = make_sessionmaker(self.engine)
        # storage/holds.py mirrors evidence holds into S3 legal holds through the session's runtime
        factory.configure(info={"runtime": self})
        return factory

    @cached_property
    def store(self) -> ObjectStore:
        store = ObjectStore.from_settings(self.settings)
        store.ensure_bucket(self.settings.bucket_biometrics)
        return store

    @cached_property
    def credentials(self):
        """Seals and opens camera passwords (ingest/credentials.py)."""
        from ingest.credentials import CredentialBox

        return CredentialBox.from_settings(self.settings)

    @cached_property
    def inference_slots(self) -> threading.BoundedSemaphore:
        """At most this many face analyses at once: more threads than cores only thrash the caches."""
        return threading.BoundedSemaphore(self.settings.inference_concurrency or os.cpu_count() or 1)

    @cached_property
    def pipeline(self):
        from vision.pipeline import FacePipeline

        with self._lock:  # two first requests must not load the models twice
            return FacePipeline.from_settings(self.settings)

    @cached_property
    def jobs(self):
        """The check queue of this process (keeps its enqueueing connections open)."""
        from correlate.jobs import Jobs

        return Jobs(self)

    def close(self) -> None:
        if "jobs" in self.__dict__:
            self.jobs.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
