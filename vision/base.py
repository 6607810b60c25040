"""The two model roles every pack provides, behind one small interface each.

Coordinates are always in ORIGINAL image pixels: detectors may resize internally but map back,
so alignment and quality work on full-resolution data.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face. ``kps`` is (5, 2) float32 in InsightFace order:
    left eye, right eye, nose, left mouth corner, right mouth corner (left/right as seen in the image)."""

    x1: float
    y1: float
    x2: float
    y2: float
    kps: np.ndarray = field(repr=False)
    det_score: float

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def to_dict(self) -> dict:
        return {
            "bbox": [round(float(v), 1) for v in self.bbox],
            "kps": [[round(float(x), 1), round(float(y), 1)] for x, y in self.kps],
            "det_score": round(float(self.det_score), 4),
        }


class Detector(ABC):
    name: str
    version: str
    # Score below which the quality gate calls a detection unreliable (settings may override).
    quality_min_score: float = 0.5

    @abstractmethod
    def detect(self, img_bgr: np.ndarray, max_side: int | None = None, *, wide: bool = False) -> list[Face]:
        """Faces in a BGR uint8 image, coordinates in that image's pixels. ``max_side`` lets a
        caller that expects a close-up detect on a smaller copy (where the detector supports it);
        ``wide`` says the image is a camera scene, never a close-up, so close-up retries are wasted."""


class Recognizer(ABC):
    name: str
    version: str
    dim: int
    default_threshold: float  # cosine similarity at which the model's authors call it the same person
    input_size: int = 112

    @abstractmethod
    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        """L2-normalised float32 vector of length ``dim`` for one aligned BGR crop."""


def l2_normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).ravel()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
