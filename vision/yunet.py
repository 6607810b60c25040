"""YuNet (OpenCV Zoo, 2023mar) run in ONNX Runtime, with the output decoding of OpenCV's
FaceDetectorYN (modules/objdetect/src/face_detect.cpp) done here in numpy.

Why not cv2.FaceDetectorYN: it is not safe to share between threads and has its own threading;
in ORT every model of a pack shares one way of creating sessions, and ``run`` is thread-safe.
"""
from __future__ import annotations

import cv2
import numpy as np
import onnx

from .base import Detector, Face
from .sessions import create_session

STRIDES = (8, 16, 32)


def _dynamic_input(model_bytes: bytes) -> bytes:
    """The published graph declares a fixed 1x3x640x640 input, but only its input shape is fixed:
    the reshapes use -1 and the upsampling uses scales. Making H and W symbolic lets us run at the
    image's own (padded) size instead of always paying for 640x640."""
    m = onnx.load_from_string(model_bytes)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].ClearField("dim_value"); dims[2].dim_param = "H"
    dims[3].ClearField("dim_value"); dims[3].dim_param = "W"
    return m.SerializeToString()


class YuNetDetector(Detector):
    name = "yunet"
    version = "2023mar"
    # OpenCV Zoo's YuNet demo uses 0.9. Real faces in our test set score 0.91-0.95 even blurred or
    # at 20 px; the false face in scenes/dogs.jpg scores 0.85, an upside-down face 0.87.
    quality_min_score = 0.9

    def __init__(
        self,
        model_bytes: bytes,
        *,
        threads: int = 1,
        max_side: int = 640,
        min_side: int = 320,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 100,
    ):
        self.session = create_session(_dynamic_input(model_bytes), threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.max_side = max_side
        self.min_side = min_side
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k

    # --- raw network ------------------------------------------------------------------------
    def _run(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (n,4 x1y1x2y2), scores (n,), kps (n,5,2) in ``img`` pixels, before NMS."""
        h, w = img.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32  # pad bottom/right to a multiple of 32, as OpenCV does
        canvas = np.zeros((ph, pw, 3), np.uint8)
        canvas[:h, :w] = img
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)  # BGR, 0..255
        outs = dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: blob})))
        boxes, scores, kpss = [], [], []
        for s in STRIDES:
            cols = pw // s
            cls = np.clip(outs[f"cls_{s}"][0, :, 0], 0, 1)
            obj = np.clip(outs[f"obj_{s}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            bbox = outs[f"bbox_{s}"][0, keep]
            kps = outs[f"kps_{s}"][0, keep].reshape(-1, 5, 2)
            c = (keep % cols).astype(np.float32)
            r = (keep // cols).astype(np.float32)
            cx, cy = (c + bbox[:, 0]) * s, (r + bbox[:, 1]) * s
            bw, bh = np.exp(bbox[:, 2]) * s, np.exp(bbox[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
            scores.append(score[keep])
            kpss.append(np.stack([(kps[..., 0] + c[:, None]) * s, (kps[..., 1] + r[:, None]) * s], axis=-1))
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        return np.concatenate(boxes), np.concatenate(scores), np.concatenate(kpss)

    def _nms(self, boxes, scores, kpss):
        if len(scores) == 0:
            return boxes, scores, kpss
        xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
        keep = cv2.dnn.NMSBoxes(xywh, scores.astype(float).tolist(), self.score_threshold,
                                self.nms_threshold, top_k=self.top_k)
        keep = np.asarray(keep, dtype=int).ravel()
        return boxes[keep], scores[keep], kpss[keep]

    def _pass(self, img: np.ndarray, scale: float, pad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect on ``img`` optionally bordered and rescaled; results in ``img`` pixels."""
        h, w = img.shape[:2]
        pad_y, pad_x = (h // 2, w // 2) if pad else (0, 0)
        work = cv2.copyMakeBorder(img, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if pad else img
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            size = (max(1, round(work.shape[1] * scale)), max(1, round(work.shape[0] * scale)))
            work = cv2.resize(work, size, interpolation=interp)
        boxes, scores, kpss = self._nms(*self._run(work))
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = boxes.reshape(-1, 2, 2) / scale - offset
        kpss = kpss / scale - offset
        return boxes.reshape(-1, 4), scores, kpss.astype(np.float32)

    # --- public -------------------------------------------------------------------------------
    def detect(self, img_bgr: np.ndarray, max_side: int | None = None, *, wide: bool = False) -> list[Face]:
        max_side = max_side or self.max_side
        h, w = img_bgr.shape[:2]
        longest = max(h, w)
        if longest <= self.min_side:
            # Small images are usually ID photos / face chips where the face fills the frame. YuNet
            # never saw such framing in training and misses it: add a border of half the image on
            # each side, then upscale so the face is at a size the model likes.
            result = self._pass(img_bgr, (2 * self.min_side) / (2 * longest), pad=True)
        else:
            scale = min(1.0, max_side / longest)  # detect on a downscaled copy, map back
            result = self._pass(img_bgr, scale, pad=False)
            if len(result[1]) == 0 and not wide:
                # Nothing found: maybe a large close-up filling the frame. One more try, bordered.
                result = self._pass(img_bgr, min(1.0, max_side / (2 * longest)), pad=True)
        faces = []
        for b, sc, k in zip(*result):
            x1, y1 = np.clip(b[:2], 0, [w, h])
            x2, y2 = np.clip(b[2:], 0, [w, h])
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            faces.append(Face(float(x1), float(y1), float(x2), float(y2), k, float(sc)))
        return faces
