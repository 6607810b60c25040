"""Follow the same face across the sampled frames of one camera.

Frames are ~2 s apart and a person at a counter moves little, so a detection continues the track
whose last box overlaps it best (IoU >= ``IOU_MIN``) within ``MAX_GAP`` frames; the face's size
must also stay within a factor 1.6. When both have embeddings, a similarity below the match
threshold splits them even if the boxes overlap (one person leaves, the next steps into the same
spot). Tracks are identities only within one check; across settlements faces are compared by
embedding (correlate/rules.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from vision.matching import cosine_scores

IOU_MIN = 0.25
MAX_GAP = 3


@dataclass
class Detection:
    frame: int
    at: datetime
    box: tuple[float, float, float, float]  # x, y, w, h
    face: object  # vision.pipeline.AnalyzedFace
    image_index: int = 0
    embedding: np.ndarray | None = None
    insured_score: float | None = None
    capture_score: float | None = None

    @property
    def usable(self) -> bool:
        return bool(self.face.quality.usable)

    @property
    def rank(self) -> float:
        """Which faces of a track to embed first: usable, large, confident."""
        x, y, w, h = self.box
        return (1.0 if self.usable else 0.0) * 1e6 + w * h * float(self.face.face.det_score)


@dataclass
class Track:
    id: int
    camera_id: str
    dets: list[Detection] = field(default_factory=list)

    @property
    def last(self) -> Detection:
        return self.dets[-1]

    @property
    def usable(self) -> list[Detection]:
        return [d for d in self.dets if d.usable]

    @property
    def embedded(self) -> list[Detection]:
        return [d for d in self.dets if d.embedding is not None]

    def best_insured(self) -> float | None:
        s = [d.insured_score for d in self.dets if d.insured_score is not None]
        return max(s) if s else None

    def best_capture(self) -> float | None:
        s = [d.capture_score for d in self.dets if d.capture_score is not None]
        return max(s) if s else None

    def representative(self) -> Detection:
        emb = self.embedded
        return max(emb or self.dets, key=lambda d: d.rank)

    def mean_embedding(self) -> np.ndarray | None:
        emb = [d.embedding for d in self.embedded]
        if not emb:
            return None
        m = np.mean(np.stack(emb), axis=0)
        return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def box_of(face) -> tuple[float, float, float, float]:
    f = face.face
    return float(f.x1), float(f.y1), float(f.width), float(f.height)


class Tracker:
    def __init__(self, camera_id: str, threshold: float, first_id: int = 0):
        self.camera_id, self.threshold = camera_id, threshold
        self.tracks: list[Track] = []
        self.next_id = first_id

    def update(self, frame: int, dets: list[Detection]) -> None:
        live = [t for t in self.tracks if frame - t.last.frame <= MAX_GAP]
        taken: set[int] = set()
        for d in sorted(dets, key=lambda d: -d.box[2] * d.box[3]):
            best, best_iou = None, IOU_MIN
            for t in live:
                if t.id in taken or t.last.frame == frame:
                    continue
                o = iou(t.last.box, d.box)
                size = d.box[2] / max(t.last.box[2], 1e-6)
                if o < best_iou or not (1 / 1.6 <= size <= 1.6):
                    continue
                best, best_iou = t, o
            if best is None:
                best = Track(self.next_id, self.camera_id)
                self.next_id += 1
                self.tracks.append(best)
                live.append(best)
            best.dets.append(d)
            taken.add(best.id)

    def split_on_identity(self) -> None:
        """After embedding: cut a track where consecutive embedded faces are clearly different people."""
        out: list[Track] = []
        for t in self.tracks:
            cur = Track(t.id, t.camera_id)
            ref = None
            for d in t.dets:
                if d.embedding is not None and ref is not None and \
                        float(cosine_scores(d.embedding, ref[None, :])[0]) < self.threshold * 0.5:
                    out.append(cur)
                    cur = Track(self.next_id, t.camera_id)
                    self.next_id += 1
                if d.embedding is not None:
                    ref = d.embedding
                cur.dets.append(d)
            out.append(cur)
        self.tracks = [t for t in out if t.dets]
