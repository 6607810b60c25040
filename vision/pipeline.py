"""Image -> faces with quality, aligned crop and embedding: the one entry point the API uses.

Thread safety: the pipeline holds no per-call state; ONNX Runtime's ``InferenceSession.run`` may be
called from several threads at once, so request threads share one FacePipeline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernel.settings import get_settings

from .align import align
from .base import Detector, Face, Recognizer
from .insightface_pack import load_insightface_pack
from .packs import DEFAULT_PACK, PACKS, ModelError, read_verified
from .quality import Quality, QualityThresholds, assess_quality
from .sface import sface
from .yunet import YuNetDetector


@dataclass
class AnalyzedFace:
    face: Face
    quality: Quality
    aligned: np.ndarray = field(repr=False)  # 112x112 BGR crop
    embedding: np.ndarray | None = field(default=None, repr=False)  # only for usable faces

    @property
    def usable(self) -> bool:
        return self.quality.usable

    @property
    def area(self) -> float:
        return self.face.area

    def to_dict(self) -> dict:
        return {**self.face.to_dict(), "quality": self.quality.to_dict(), "embedded": self.embedding is not None}


def load_models(settings) -> tuple[str, Detector, Recognizer]:
    """(pack name, detector, recogniser) for ``settings.model_pack``. Hashes are verified here."""
    pack = settings.model_pack
    threads = settings.onnx_threads
    if pack in PACKS:

        spec = PACKS[pack]
        models_dir = settings.effective_models_dir
        det_f, rec_f = spec.file("detector"), spec.file("recognizer")
        detector = YuNetDetector(read_verified(models_dir / det_f.name, det_f.sha256),
                                 threads=threads, max_side=settings.detect_max_side)
        recognizer = sface(read_verified(models_dir / rec_f.name, rec_f.sha256), threads=threads)
        return pack, detector, recognizer
    path = Path(pack).expanduser()
    if path.is_dir():

        detector, recognizer = load_insightface_pack(path, threads=threads, max_side=settings.detect_max_side)
        return str(path.resolve()), detector, recognizer
    raise ModelError(f"model_pack {pack!r} is neither {DEFAULT_PACK!r} nor an existing directory")


class FacePipeline:
    def __init__(
        self,
        detector: Detector,
        recognizer: Recognizer,
        *,
        thresholds: QualityThresholds,
        pack: str,
        match_threshold: float | None = None,
    ):
        self.detector, self.recognizer = detector, recognizer
        self.thresholds = thresholds
        self.pack = pack
        self._match_threshold = match_threshold

    @classmethod
    def from_settings(cls, settings=None) -> "FacePipeline":
        if settings is None:
            settings = get_settings()
        pack, detector, recognizer = load_models(settings)
        return cls(
            detector,
            recognizer,
            thresholds=QualityThresholds.from_settings(settings, detector.quality_min_score),
            pack=pack,
            match_threshold=settings.match_threshold,
        )

    @property
    def threshold(self) -> float:
        return self._match_threshold if self._match_threshold is not None else self.recognizer.default_threshold

    @property
    def model_id(self) -> str:
        """The key templates are stored under: an embedding only compares with one of the same model."""
        return f"{self.pack}/{self.recognizer.name}"

    @property
    def model_info(self) -> dict:
        return {
            "pack": self.pack,
            "detector": self.detector.name,
            "detector_version": self.detector.version,
            "recognizer": self.recognizer.name,
            "recognizer_version": self.recognizer.version,
            "embedding_dim": self.recognizer.dim,
            "threshold": self.threshold,
        }

    def analyze(
        self, img_bgr: np.ndarray, *, max_embed: int | None = None, timings: dict | None = None,
        detect_max_side: int | None = None, wide: bool = False,
    ) -> list[AnalyzedFace]:
        """All faces, largest first; embeddings for usable faces only (at most ``max_embed`` of them,
        the largest: verification needs one, and a crowd costs ~30 ms per embedding). ``timings``
        (optional) receives detect/align/quality/embed milliseconds. ``detect_max_side`` overrides the
        detector's working size for this call (smaller is faster; fine for close-ups); ``wide`` marks a camera
        scene (see ``Detector.detect``)."""
        t0 = time.perf_counter()
        faces = sorted(self.detector.detect(img_bgr, detect_max_side, wide=wide), key=lambda f: f.area, reverse=True)
        t1 = time.perf_counter()
        out: list[AnalyzedFace] = []
        t_align = t_quality = t_embed = 0.0
        for f in faces:
            a = time.perf_counter()
            crop = align(img_bgr, f, self.recognizer.input_size)
            b = time.perf_counter()
            q = assess_quality(f, crop, self.thresholds)
            c = time.perf_counter()
            want = q.usable and (max_embed is None or sum(x.embedding is not None for x in out) < max_embed)
            emb = self.recognizer.embed(crop) if want else None
            d = time.perf_counter()
            t_align += b - a; t_quality += c - b; t_embed += d - c
            out.append(AnalyzedFace(f, q, crop, emb))
        if timings is not None:
            timings.update(detect_ms=(t1 - t0) * 1e3, align_ms=t_align * 1e3,
                           quality_ms=t_quality * 1e3, embed_ms=t_embed * 1e3)
        return out

    def analyze_closeup(self, img_bgr: np.ndarray, *, max_embed: int | None = 1,
                        small_side: int | None = None) -> list[AnalyzedFace]:
        """A terminal capture or a photo where the face is large: detect on a small copy first (fast)
        and search at full working size only when that finds nothing (a small face in a big image)."""
        return (self.analyze(img_bgr, max_embed=max_embed, detect_max_side=small_side)
                or self.analyze(img_bgr, max_embed=max_embed))

    def embed_face(self, img_bgr: np.ndarray, face: Face) -> np.ndarray:
        return self.recognizer.embed(align(img_bgr, face, self.recognizer.input_size))
