"""InsightFace model packs (e.g. buffalo_l: SCRFD det_10g.onnx + ArcFace w600k_r50.onnx) behind our
Detector/Recognizer interfaces. Selected with settings.model_pack = <directory>.

InsightFace's ``model_zoo.get_model`` tells which file is which (it routes on the graph's inputs and
outputs). If the directory has a ``SHA256SUMS`` file (``sha256sum`` format), every ONNX file we use
must be listed there and match, or the pack is refused. The sessions we run are built from the very
bytes we hashed; get_model's own sessions are only used to identify the task and then dropped
(the price is loading each file twice at startup).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np

from .base import Detector, Face, Recognizer
from .packs import ModelError, ModelIntegrityError, read_verified
from .sessions import PROVIDERS, create_session, session_options
from .sface import OnnxRecognizer

log = logging.getLogger(__name__)
SUMS_FILE = "SHA256SUMS"
# SFace's published threshold; for other ArcFace models there is no official one, so 0.363 is only a
# starting point: calibrate and set DUALCHECK_MATCH_THRESHOLD (see docs/face-accuracy.md).
SFACE_SHA256 = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
GENERIC_ARCFACE_THRESHOLD = 0.363


def read_sums(directory: Path) -> dict[str, str] | None:
    path = directory / SUMS_FILE
    if not path.is_file():
        return None
    sums: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ModelError(f"{path}:{n}: not a sha256sum line: {line!r}")
        sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _verified_bytes(path: Path, sums: dict[str, str] | None) -> bytes:
    if sums is None:
        return path.read_bytes()
    if path.name not in sums:
        raise ModelError(f"{path} is not listed in {path.parent / SUMS_FILE}; refusing to load it")
    return read_verified(path, sums[path.name])


class ScrfdDetector(Detector):
    """InsightFace's SCRFD decoding (anchors, distance2bbox/kps, NMS) around our verified session."""

    quality_min_score = 0.5  # InsightFace's default det_thresh

    def __init__(self, scrfd, *, name: str, version: str, max_side: int = 640, min_side: int = 320):
        self.model, self.name, self.version = scrfd, name, version
        self.max_side, self.min_side = max_side, min_side
        size = scrfd.static_input_size or (max_side, max_side)
        self.input_size = tuple(int(v) for v in size)

    def _run(self, img: np.ndarray, pad: bool):
        h, w = img.shape[:2]
        py, px = (h // 2, w // 2) if pad else (0, 0)
        work = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if pad else img
        det, kpss = self.model.detect(work, input_size=self.input_size)
        if kpss is None:
            raise ModelError(f"detector {self.name} gives no landmarks; alignment needs 5 points")
        off = np.array([px, py], np.float32)
        return det[:, :4] - np.tile(off, 2), det[:, 4], kpss - off

    def detect(self, img_bgr: np.ndarray, max_side: int | None = None, *, wide: bool = False) -> list[Face]:
        # SCRFD resizes to its fixed input size itself: max_side does not apply
        h, w = img_bgr.shape[:2]
        small = max(h, w) <= self.min_side
        boxes, scores, kpss = self._run(img_bgr, pad=small)  # SCRFD resizes to its input size itself
        if len(scores) == 0 and not small:
            boxes, scores, kpss = self._run(img_bgr, pad=True)
        faces = []
        for b, s, k in zip(boxes, scores, kpss):
            x1, y1 = np.clip(b[:2], 0, [w, h])
            x2, y2 = np.clip(b[2:], 0, [w, h])
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                faces.append(Face(float(x1), float(y1), float(x2), float(y2), k.astype(np.float32), float(s)))
        return faces


def load_insightface_pack(directory: Path, *, threads: int = 1, max_side: int = 640) -> tuple[Detector, Recognizer]:
    # optional heavy dependency: InsightFace's model zoo is loaded only when such a pack is configured
    from insightface.model_zoo import model_zoo
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD

    directory = Path(directory)
    sums = read_sums(directory)
    if sums is None:
        log.warning("%s has no %s: model files are loaded unverified", directory, SUMS_FILE)
    detector: Detector | None = None
    recognizer: Recognizer | None = None
    for path in sorted(directory.glob("*.onnx")):
        data = _verified_bytes(path, sums)
        digest = hashlib.sha256(data).hexdigest()
        model = model_zoo.get_model(str(path), providers=PROVIDERS, sess_options=session_options(threads))
        if isinstance(model, SCRFD) and detector is None:
            model.session = create_session(data, threads=threads)  # run what we hashed
            model.static_shape_sessions = False  # never rebuild sessions from the path
            model._init_vars()
            model._reset_resolution_session_pool()
            model.prepare(-1, det_thresh=0.5, nms_thresh=0.4)
            detector = ScrfdDetector(model, name=path.stem, version=digest[:12], max_side=max_side)
        elif isinstance(model, ArcFaceONNX) and recognizer is None:
            is_sface = digest == SFACE_SHA256
            recognizer = OnnxRecognizer(
                data,
                name="sface" if is_sface else path.stem,
                version="2021dec" if is_sface else digest[:12],
                default_threshold=GENERIC_ARCFACE_THRESHOLD,
                input_mean=model.input_mean,
                input_std=model.input_std,
                threads=threads,
            )
        else:
            log.info("%s: %s not used", path.name, type(model).__name__)
        del model
    if detector is None or recognizer is None:
        missing = " and ".join(n for n, m in (("a SCRFD detector", detector), ("an ArcFace recogniser", recognizer))
                               if m is None)
        raise ModelError(f"InsightFace pack {directory} lacks {missing}")
    return detector, recognizer


__all__ = ["ScrfdDetector", "load_insightface_pack", "read_sums", "ModelIntegrityError", "SUMS_FILE"]
