"""5-point alignment to the 112x112 ArcFace template (InsightFace's norm_crop), always on the
original-resolution image so a downscaled detection pass costs no recognition accuracy."""
from __future__ import annotations

import warnings

import numpy as np
from insightface.utils import face_align

from .base import Face

# insightface 2.1 calls a scikit-image API deprecated in 0.26; harmless, and noisy in every request.
warnings.filterwarnings("ignore", message=r".*`estimate` is deprecated.*", category=FutureWarning)


def align(img_bgr: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    return face_align.norm_crop(img_bgr, landmark=np.asarray(face.kps, np.float32), image_size=size)
