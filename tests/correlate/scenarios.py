"""Footage with known truth for the correlation tests and the benchmark (the simulator's renderer).

A *block* is a stretch of one camera's footage made from one scripted scene; a settlement is placed in
it so that its whole window lies inside the scene. Segments are written the way the recorder writes
them (tests/replay/segmenter.py: fMP4 remux without transcoding, timestamps from 0 at start_at).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

from camsim.footage import Event, render

INSURED = "obama.jpg"  # enrolled from obama2.jpg and obama3.jpg
OTHER = "biden.jpg"

# scene name -> (script, expected outcome)
SCENES: dict[str, tuple[list[Event], str]] = {
    "present": ([Event(0, 40, "face", {"image": INSURED})], "verified_present"),
    "ghost": ([Event(0, 40, "empty")], "ghost_visit"),
    "impostor": ([Event(0, 40, "face", {"image": OTHER})], "impersonation"),
    "back_turned": ([Event(0, 40, "back_turned")], "inconclusive"),
    "blurred": ([Event(0, 40, "blur_face", {"image": OTHER})], "inconclusive"),
    "late_insured": ([Event(0, 14, "empty"), Event(14, 40, "face", {"image": INSURED, "x": 0.4})],
                     "verified_present"),
    "brief_impostor": ([Event(0, 16, "empty"), Event(16, 30, "face", {"image": OTHER, "x": 0.6}),
                        Event(30, 40, "empty")], "impersonation"),
    "camera_off": ([Event(0, 40, "camera_off")], "footage_missing"),
}
BLOCK_S = 40.0
WINDOW = (24.0, 8.0)  # seconds before/after the settlement used by the tests (default is 120/30)
SETTLE_AT = 28.0  # seconds into the block
SIZE = dict(width=640, height=360, fps=25, bitrate=500_000, keyint_s=2.0)
T0 = datetime(2026, 3, 2, 1, 0, 0, tzinfo=timezone.utc)


def cache_dir() -> Path:
    """Renders are cached outside the repository (they are megabytes): ``$DUALCHECK_SIM_CACHE`` or
    ``<tmp>/dualcheck-sim-cache``."""
    env = os.environ.get("DUALCHECK_SIM_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "dualcheck-sim-cache"


def scene_footage(name: str, testdata, **size):
    script, _ = SCENES[name]
    return render(script, cache_dir=cache_dir(), testdata=testdata, **(size or SIZE))


@dataclass
class Block:
    scene: str
    start: datetime
    settled_at: datetime
    expected: str


def write_block(db, store, bucket, footage, *, org_id: str, camera_id: str, start: datetime,
                total_s: float = BLOCK_S, workdir=None, segment_s: float = 10.0):
    from tests.replay.segmenter import make_segments

    return make_segments(db, store, bucket, footage, org_id=org_id, camera_id=camera_id, start=start,
                         total_s=total_s, segment_s=segment_s, workdir=workdir)


def enroll(db, pipeline, testdata, insured_id: str, photos=("obama2.jpg", "obama3.jpg")) -> None:
    """Templates straight from the pipeline (the enrollment API is tested elsewhere)."""
    from storage.models import FaceTemplate, InsuredPerson

    if db.get(InsuredPerson, insured_id) is None:
        db.add(InsuredPerson(id=insured_id))
        db.flush()
    for p in photos:
        img = cv2.imread(str(testdata / "faces" / p))
        face = pipeline.analyze(img, max_embed=1)[0]
        emb = np.asarray(face.embedding, np.float32)
        db.add(FaceTemplate(insured_id=insured_id, photo_key=f"test/{insured_id}/{p}", photo_sha256=(p * 8)[:64],
                            model=pipeline.model_id, dim=int(emb.shape[0]), embedding=emb.tobytes(),
                            quality={}, source="test"))
    db.flush()


def settlement(sid: str, insured: str, org: str, at: datetime, *, terminal: str | None = None,
               counter: str | None = None, verification_id: str | None = None, amount: str = "35.50",
               type: str = "pharmacy") -> dict:
    row = {"settlement_id": sid, "insured_id": insured, "org_id": org, "settled_at": at.isoformat(),
           "amount": amount, "type": type}
    if terminal:
        row["terminal_id"] = terminal
    if counter:
        row["counter"] = counter
    if verification_id:
        row["verification_id"] = verification_id
    return row


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
