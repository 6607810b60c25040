"""Follow the same face across the sampled frames of one camera.

Frames are ~2 s apart and a person at a counter moves little, so a detection continues the track
whose last box overlaps it best (IoU >= ``IOU_MIN``); the face's size must also stay within a factor
1.6. The checker does not search every sample for faces (correlate/check.py: a still scene only every
few samples), so ``Tracker.update`` is called once per *searched* frame and a track ends after
``MAX_MISSED`` searches in a row without its face, not after a number of raw frames: a cashier who does
not move stays one track however sparse the searches. When both have embeddings, a similarity below
half the match threshold splits a track even if the boxes overlap (one person leaves, the next steps
into the same spot); tracks whose faces match (mean embeddings >= the match threshold) and that are
never in the same frame are merged (someone who looked down or stepped away and came back), so people
are counted once. Tracks are identities only within one check; across settlements faces are compared
by embedding (correlate/rules.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from vision.matching import cosine_scores

IOU_MIN = 0.25
MAX_MISSED = 3  # searches in a row that may miss a face (looking down, occluded) before its track ends


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
    last_search: int = 0  # the Tracker's search count when this track last got a detection

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
        self.searches = 0

    def update(self, frame: int, dets: list[Detection]) -> None:
        """The faces found in one searched frame (call it for every frame searched, with or without
        faces, and only for those: the gap a track survives is counted in searches)."""
        self.searches += 1
        live = [t for t in self.tracks if self.searches - t.last_search <= MAX_MISSED + 1]
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
            best.last_search = self.searches
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

    def merge_same_identity(self) -> None:
        """After embedding (and ``split_on_identity``): tracks of one person become one track, so a
        person whose track broke is counted once. Greedy, most similar pair first: two groups of tracks
        merge when the cosine of their mean embeddings is >= the match threshold and they never share a
        frame (one face is never two detections of the same frame). Tracks without an embedded face
        cannot be compared and stay as they are; the merged track keeps the lowest id."""
        groups = [[t] for t in self.tracks]
        while True:
            means = [_mean([d.embedding for t in g for d in t.embedded]) for g in groups]
            frames = [{d.frame for t in g for d in t.dets} for g in groups]
            best = None
            for i in range(len(groups)):
                for j in range(i + 1, len(groups)):
                    if means[i] is None or means[j] is None or frames[i] & frames[j]:
                        continue
                    sim = float(means[i] @ means[j])
                    if sim >= self.threshold and (best is None or sim > best[0]):
                        best = (sim, i, j)
            if best is None:
                break
            _, i, j = best
            groups[i] += groups.pop(j)
        out = []
        for g in groups:
            first = min(g, key=lambda t: t.id)
            out.append(Track(first.id, first.camera_id, sorted((d for t in g for d in t.dets), key=lambda d: d.frame),
                             max(t.last_search for t in g)))
        self.tracks = sorted(out, key=lambda t: t.id)


def _mean(embs: list[np.ndarray]) -> np.ndarray | None:
    if not embs:
        return None
    m = np.mean(np.stack(embs), axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)
