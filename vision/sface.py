"""ArcFace-style recognisers in ONNX Runtime: SFace (default pack) and InsightFace's ArcFace models
share the same contract: a 112x112 crop aligned with InsightFace's 5-point template in, one
embedding out. Only the input normalisation differs (SFace: raw 0..255 RGB; ArcFace: (x-127.5)/127.5).
"""
from __future__ import annotations

import numpy as np

from .base import Recognizer, l2_normalise
from .sessions import create_session


class OnnxRecognizer(Recognizer):
    def __init__(
        self,
        model_bytes: bytes,
        *,
        name: str,
        version: str,
        default_threshold: float,
        input_mean: float = 0.0,
        input_std: float = 1.0,
        threads: int = 1,
    ):
        self.session = create_session(model_bytes, threads=threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else 112
        self.output_name = self.session.get_outputs()[0].name
        out_shape = self.session.get_outputs()[0].shape
        self.dim = int(out_shape[-1]) if isinstance(out_shape[-1], int) else 0
        self.name, self.version, self.default_threshold = name, version, default_threshold
        self.input_mean, self.input_std = input_mean, input_std

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        if aligned_bgr.shape[:2] != (self.input_size, self.input_size):
            raise ValueError(f"expected an aligned {self.input_size}x{self.input_size} crop, got {aligned_bgr.shape}")
        rgb = aligned_bgr[:, :, ::-1].astype(np.float32)
        blob = ((rgb - self.input_mean) / self.input_std).transpose(2, 0, 1)[None]
        out = self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(blob)})[0]
        return l2_normalise(out)


def sface(model_bytes: bytes, *, threads: int = 1) -> OnnxRecognizer:
    # 0.363: cosine threshold published with SFace in OpenCV Zoo (opencv_zoo/models/face_recognition_sface).
    return OnnxRecognizer(model_bytes, name="sface", version="2021dec", default_threshold=0.363,
                          input_mean=0.0, input_std=1.0, threads=threads)
