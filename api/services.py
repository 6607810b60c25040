"""What the HTTP API needs from the process that serves it, and nothing more.

The composition root (dualcheck/runtime.py) builds these parts and hands them to ``create_app``; the
API never builds a stage itself, so it never imports the wiring (the floors: docs/architecture.md)."""
from __future__ import annotations

import threading
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from correlate.check import Checker
from correlate.jobs import Jobs
from facepay.enrollment import Enroller
from facepay.verification import Verifier
from ingest.credentials import CredentialBox
from kernel.admission import AdmissionGate
from kernel.settings import Settings
from storage.holds import LegalHolds
from storage.objects import ObjectStore
from storage.playable import PlayableCopies
from vision.pipeline import FacePipeline
from vision.workers import FaceProcesses, InProcessFaces


class Services(Protocol):
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    legal_holds: LegalHolds
    credentials: CredentialBox
    inference_slots: threading.BoundedSemaphore
    admission: AdmissionGate
    pipeline: FacePipeline
    face_work: InProcessFaces | FaceProcesses
    verifier: Verifier
    enroller: Enroller
    jobs: Jobs
    checker: Checker  # the footage checker: the data checks' consulting-room analysis (correlate/consulting.py)
    playable: PlayableCopies  # H.264 copies of H.265 clips for browsers without HEVC

    def close(self) -> None: ...
