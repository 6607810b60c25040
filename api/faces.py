"""Faces side by side: one aligned crop of the same size from any stored face image (an enrolled photo,
a face-pay capture, a footage crop), and where the face is in the original (a box as fractions of its
width and height, for drawing on the enlarged original).

The alignment is the recogniser's own (vision.align: eyes, nose and mouth at fixed places), so the three
crops line up; an image where no face is found is cut to its centre square instead.
"""
from __future__ import annotations

import cv2
import numpy as np

from vision.align import align
from vision.image import ImageRejected, decode_image

FACE_SIZE = 224  # px, every crop shown side by side (the aligner takes multiples of 112)


def aligned_face(data: bytes, pipeline, settings) -> tuple[bytes, list[float] | None]:
    """(JPEG of the aligned FACE_SIZE crop, face box [x1, y1, x2, y2] as fractions, or None)."""
    try:
        img = decode_image(data, max_bytes=max(len(data), 1) + 1, max_pixels=settings.max_image_pixels)
    except ImageRejected:
        return _jpeg(np.full((FACE_SIZE, FACE_SIZE, 3), 200, np.uint8)), None
    h, w = img.shape[:2]
    faces = pipeline.analyze_closeup(img, max_embed=0) if pipeline is not None else []
    if faces:
        f = faces[0].face
        crop = align(img, f, FACE_SIZE)
        box = [max(0.0, f.x1 / w), max(0.0, f.y1 / h), min(1.0, f.x2 / w), min(1.0, f.y2 / h)]
        return _jpeg(crop), [round(v, 4) for v in box]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return _jpeg(cv2.resize(img[y0:y0 + side, x0:x0 + side], (FACE_SIZE, FACE_SIZE))), None


def _jpeg(img: np.ndarray) -> bytes:
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return jpg.tobytes() if ok else b""
