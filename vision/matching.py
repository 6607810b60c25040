"""Decisions from analysed faces: pure functions, no models, no I/O.

Several-faces policy (verification)
-----------------------------------
A face-pay capture usually shows the payer close to the camera and, often, people queueing behind.
We therefore look at the LARGEST face, usable or not, and call it the subject only if it is clearly
dominant: its area is at least ``dominance_ratio`` (settings.verify_dominance_ratio, default 2.0,
i.e. about 1.4x the side length) times the area of the next-largest face. Otherwise we cannot tell
who is paying and answer ``multiple_faces``; a group photo, where faces are of similar size, lands
here.

Faces that fail the quality gate still count when they could be the subject:
- if the largest face is unusable (blurred, turned, too small...), the answer is ``low_quality``:
  we never fall back to a smaller, usable face behind it, since that would let a bystander (or an
  accomplice holding up a photo) be verified in the payer's place;
- an unusable face that is comparable in size to the largest one makes the capture ambiguous
  (``multiple_faces``) just like a usable one would;
- unusable faces much smaller than a dominant subject (background people, posters, detector false
  positives) are ignored.
The score is the best cosine similarity between the subject's embedding and the insured person's
enrolled templates; ``match`` when it reaches the threshold. ``not_enrolled`` is the caller's.

Enrollment is stricter: exactly one face may be found and it must be usable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MATCH, MISMATCH, NO_FACE, MULTIPLE_FACES, LOW_QUALITY = "match", "mismatch", "no_face", "multiple_faces", "low_quality"
DEFAULT_DOMINANCE_RATIO = 2.0


@dataclass
class Decision:
    decision: str
    score: float | None
    face: object | None  # the AnalyzedFace judged, when there is one
    reason: str

    def to_dict(self) -> dict:
        return {
            "decision": self.decision,
            "score": None if self.score is None else round(float(self.score), 4),
            "reason": self.reason,
            "face": self.face.to_dict() if self.face is not None else None,
        }


class EnrollmentRefused(ValueError):
    def __init__(self, code: str, reason: str, reasons: list[str] | None = None):
        self.code, self.reason, self.reasons = code, reason, list(reasons or [])
        super().__init__(f"{code}: {reason}")


def cosine_scores(embedding: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Cosine similarity of one embedding against (n, d) templates (re-normalised defensively)."""
    t = np.atleast_2d(np.asarray(templates, np.float32))
    e = np.asarray(embedding, np.float32).ravel()
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    e = e / max(float(np.linalg.norm(e)), 1e-12)
    return t @ e


def _by_area(faces: Sequence) -> list:
    return sorted(faces, key=lambda f: f.face.area, reverse=True)


def decide_verification(
    faces: Sequence, templates: np.ndarray, threshold: float, dominance_ratio: float = DEFAULT_DOMINANCE_RATIO
) -> Decision:
    """See the module docstring for the policy. ``faces`` are AnalyzedFace-like (``face``, ``quality``,
    ``embedding``); ``templates`` is (n, d) with n >= 1."""
    faces = _by_area(faces)
    if not faces:
        return Decision(NO_FACE, None, None, "no face found in the capture")
    subject = faces[0]
    if len(faces) > 1:
        nxt = faces[1]
        if subject.face.area < dominance_ratio * nxt.face.area:
            return Decision(
                MULTIPLE_FACES, None, None,
                f"{len(faces)} faces and none clearly closest to the camera "
                f"(largest {subject.face.area:.0f} px², next {nxt.face.area:.0f} px²)",
            )
    if not subject.quality.usable or subject.embedding is None:
        return Decision(LOW_QUALITY, None, subject,
                        "the face is not good enough to verify: " + ", ".join(subject.quality.reasons))
    templates = np.asarray(templates, np.float32)
    if templates.size == 0:
        raise ValueError("no templates: the caller answers not_enrolled")
    score = float(np.max(cosine_scores(subject.embedding, templates)))
    if score >= threshold:
        return Decision(MATCH, score, subject, f"similarity {score:.3f} ≥ threshold {threshold:.3f}")
    return Decision(MISMATCH, score, subject, f"similarity {score:.3f} < threshold {threshold:.3f}")


def select_enrollment_face(faces: Sequence, dominance_ratio: float = DEFAULT_DOMINANCE_RATIO):
    """The one usable face of an enrollment photo, else EnrollmentRefused(no_face | multiple_faces |
    low_quality). A template must be unambiguous: two usable faces refuse the photo, and so does an
    unusable face that is not clearly smaller (``dominance_ratio`` in area) than the usable one;
    only small extra detections (a badge photo, a poster) are ignored."""
    faces = _by_area(faces)
    if not faces:
        raise EnrollmentRefused(NO_FACE, "no face found in the photo")
    usable = [f for f in faces if f.quality.usable and f.embedding is not None]
    if len(usable) > 1:
        raise EnrollmentRefused(MULTIPLE_FACES, f"{len(usable)} usable faces; an enrollment photo must show one person")
    if not usable:
        f = faces[0]
        raise EnrollmentRefused(LOW_QUALITY, "the face is not good enough to enroll: " + ", ".join(f.quality.reasons),
                                f.quality.reasons)
    f = usable[0]
    rivals = [g for g in faces if g is not f and g.face.area * dominance_ratio > f.face.area]
    if rivals:
        raise EnrollmentRefused(MULTIPLE_FACES, f"{len(faces)} faces found; an enrollment photo must show one person")
    return f
