"""People for the counter scenes: faces taken at run time from photos that installed packages ship.

Nothing here is committed as an image. Sources (each loaded from where its package installed it):

* ``obama``, ``biden``      shared/testdata/faces (the enrolled insured person and the usual impostor)
* ``astronaut``             scikit-image ``skimage/data/astronaut.png`` (NASA photo, public domain)
* ``t1_0`` .. ``t1_5``      InsightFace wheel ``insightface/data/images/t1.jpg`` (group photo)
* ``bald_00`` .. ``bald_23`` shared/testdata/scenes/bald_guys.jpg (group photo, 24 faces)

Face boxes were measured once with YuNet and are kept here (like camsim.footage._KNOWN_FACES); a file
whose size differs from the measured one is measured again with YuNet when the model is available.

A person is drawn as a *sprite*: the head cut out of the photo with a soft ellipse, on a synthetic
neck and clothed torso (the photo's own shoulders would bring neighbours' faces from group photos).
Three views: ``front`` (face visible), ``down`` (looking down at the till: crown of the head, no
face) and ``away`` (turned away from the camera: back of the head).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .footage import REPO, default_testdata


@dataclass(frozen=True)
class Identity:
    label: str
    path: Path
    box: tuple[int, int, int, int]  # face x, y, w, h in the source photo
    source: str


def _pkg_file(module: str, rel: str) -> Path | None:

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / rel
    return p if p.exists() else None


# (source photo size) -> face boxes, measured with YuNet (score >= 0.9), left to right / top to bottom
_T1 = ((1280, 886), [(60, 268, 106, 128), (267, 150, 105, 126), (466, 266, 102, 145), (748, 352, 98, 123),
                     (906, 58, 99, 143), (1125, 272, 95, 123)])
_ASTRONAUT = ((512, 512), [(178, 62, 89, 113)])
_BALD = ((1986, 1545), sorted([
    (1081, 1268, 166, 232), (1455, 1314, 116, 162), (1063, 712, 171, 251), (66, 34, 159, 229),
    (565, 390, 166, 237), (70, 660, 152, 217), (59, 338, 165, 225), (774, 771, 165, 246),
    (762, 1196, 171, 241), (321, 423, 135, 186), (1832, 416, 97, 138), (73, 1257, 161, 236),
    (1125, 1043, 120, 184), (1457, 47, 277, 384), (880, 359, 156, 235), (340, 27, 106, 146),
    (338, 226, 97, 133), (55, 963, 132, 180), (354, 1171, 202, 313), (546, 45, 178, 281),
    (1790, 1295, 149, 191), (1649, 687, 93, 124), (383, 753, 224, 315), (878, 60, 154, 224)],
    key=lambda b: (b[1] // 200, b[0])))
_TESTDATA_FACES = {"obama": (373, 94, 231, 321), "biden": (429, 175, 276, 382)}


def _measured(path: Path, known: tuple[tuple[int, int], list]) -> list[tuple[int, int, int, int]]:
    size, boxes = known
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return []
    if (img.shape[1], img.shape[0]) == size:
        return list(boxes)
    model = Path(os.environ.get("DUALCHECK_TEST_MODELS", REPO / "var" / "models")) / "face_detection_yunet_2023mar.onnx"
    if not model.exists():
        return []
    det = cv2.FaceDetectorYN.create(str(model), "", (img.shape[1], img.shape[0]), 0.9)
    _, faces = det.detect(img)
    return sorted((tuple(int(v) for v in f[:4]) for f in (faces if faces is not None else [])),
                  key=lambda b: (b[1] // 200, b[0]))


@functools.lru_cache(maxsize=4)
def identities(testdata: str | None = None) -> dict[str, Identity]:
    """Every identity available on this machine, by label."""
    td = Path(testdata) if testdata else default_testdata()
    out: dict[str, Identity] = {}
    for label, box in _TESTDATA_FACES.items():
        p = td / "faces" / f"{label}.jpg"
        if p.exists():
            out[label] = Identity(label, p, box, "shared/testdata")
    p = _pkg_file("skimage", "data/astronaut.png")
    if p:
        for b in _measured(p, _ASTRONAUT)[:1]:
            out["astronaut"] = Identity("astronaut", p, b, "scikit-image")
    p = _pkg_file("insightface", "data/images/t1.jpg")
    if p:
        for i, b in enumerate(_measured(p, _T1)):
            out[f"t1_{i}"] = Identity(f"t1_{i}", p, b, "insightface")
    p = td / "scenes" / "bald_guys.jpg"
    if p.exists():
        for i, b in enumerate(_measured(p, _BALD)):
            out[f"bald_{i:02d}"] = Identity(f"bald_{i:02d}", p, b, "shared/testdata")
    return out


def get(label: str, testdata: str | None = None) -> Identity:
    ids = identities(testdata)
    if label not in ids:
        raise KeyError(f"identity {label!r} not available here; have {sorted(ids)}")
    return ids[label]


@functools.lru_cache(maxsize=64)
def _image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return img


def portrait(ident: Identity) -> np.ndarray:
    """A head-and-shoulders crop of the source photo around the face (e.g. to enroll this person as
    insured or as staff): the face is about a third of the crop's width."""
    img = _image(str(ident.path))
    x, y, w, h = ident.box
    x0, x1 = int(x - w), int(x + 2 * w)
    y0, y1 = int(y - 0.6 * h), int(y + 1.8 * h)
    pad = max(0, -x0, -y0, x1 - img.shape[1], y1 - img.shape[0])
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return img[y0 + pad:y1 + pad, x0 + pad:x1 + pad].copy()


@dataclass
class Sprite:
    bgr: np.ndarray  # uint8 HxWx3
    alpha: np.ndarray  # float32 HxWx1, 0..1
    face: tuple[float, float, float, float]  # face box x, y, w, h in sprite pixels
    anchor: tuple[float, float]  # sprite pixel placed at the person's position (the face centre)


VIEWS = ("front", "down", "away")


@functools.lru_cache(maxsize=256)
def sprite(ident: Identity, face_w: int, view: str = "front", shirt: tuple[int, int, int] = (120, 80, 50),
           soften: float = 0.6) -> Sprite:
    """The person at ``face_w`` pixels of face width. ``soften`` (Gaussian sigma, px) stands for the
    softness of a CCTV lens, so that a downscaled studio photo is not sharper than a camera sees."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r}; expected one of {VIEWS}")
    img = _image(str(ident.path))
    fx, fy, fw, fh = ident.box
    k = face_w / fw
    # head region of the source (with hair), scaled
    hx0, hx1, hy0, hy1 = int(fx - 0.5 * fw), int(fx + 1.5 * fw), int(fy - 0.55 * fh), int(fy + 1.35 * fh)
    pad = max(0, -hx0, -hy0, hx1 - img.shape[1], hy1 - img.shape[0])
    src = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else img
    head = src[hy0 + pad:hy1 + pad, hx0 + pad:hx1 + pad]
    head = cv2.resize(head, (max(2, int(round(head.shape[1] * k))), max(2, int(round(head.shape[0] * k)))),
                      interpolation=cv2.INTER_AREA)
    bw, bh = fw * k, fh * k
    W, H = int(bw * 3.6), int(bh * 3.0)
    cx = W / 2
    by = 0.55 * bh + 2  # face top in the sprite
    canvas = np.zeros((H, W, 3), np.float32)
    mask = np.zeros((H, W), np.uint8)
    rng = np.random.default_rng(zlib.crc32(f"{ident.label}/{face_w}/{view}".encode()))  # same pixels in every process
    # torso: clothing with shading and a little fabric texture
    sh_y = by + bh * 1.18
    shirt_c = np.array(shirt, np.float32)
    torso = np.array([[cx - bw * 0.45, sh_y - bh * 0.12], [cx + bw * 0.45, sh_y - bh * 0.12],
                      [cx + bw * 1.45, sh_y + bh * 0.35], [cx + bw * 1.6, H], [cx - bw * 1.6, H],
                      [cx - bw * 1.45, sh_y + bh * 0.35]], np.int32)
    tm = np.zeros((H, W), np.uint8)
    cv2.fillPoly(tm, [torso], 255)
    shade = np.linspace(1.12, 0.78, H, dtype=np.float32)[:, None] * (
        1.0 - 0.25 * np.abs(np.linspace(-1, 1, W, dtype=np.float32))[None, :] ** 2)
    fabric = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 1.2) * 0.05
    canvas[tm > 0] = (shirt_c[None, None, :] * (shade + fabric)[..., None])[tm > 0]
    mask |= tm
    # the head from the photo, placed so its face box lands at (cx - bw/2, by)
    ox, oy = int(round(cx - bw / 2 - 0.5 * fw * k)), int(round(by - 0.55 * fh * k))
    hh, hw = head.shape[:2]
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(W, ox + hw), min(H, oy + hh)
    hm = np.zeros((H, W), np.uint8)
    hc = (int(cx), int(by + bh * 0.40))
    cv2.ellipse(hm, hc, (int(bw * 0.56), int(bh * 0.70)), 0, 0, 360, 255, -1)
    neck = np.zeros((H, W), np.uint8)
    cv2.rectangle(neck, (int(cx - bw * 0.24), int(by + bh * 0.8)), (int(cx + bw * 0.24), int(sh_y)), 255, -1)
    photo = np.zeros((H, W, 3), np.float32)
    photo[y0:y1, x0:x1] = head[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    sel = (hm > 0) | (neck > 0)
    canvas[sel] = photo[sel]
    mask |= hm | neck
    if view in ("down", "away"):
        # no face: the crown (looking down) or the back of the head, in the colour of the hair/scalp
        top = photo[max(0, int(by - 0.35 * bh)):max(1, int(by - 0.1 * bh)), int(cx - bw * 0.2):int(cx + bw * 0.2)]
        hair = np.median(top.reshape(-1, 3), axis=0) if top.size else np.array([40, 45, 55], np.float32)
        cov = np.zeros((H, W), np.uint8)
        if view == "down":  # head tilted forward: crown fills the face, chin hidden, head a bit lower
            cv2.ellipse(cov, (hc[0], int(hc[1] + bh * 0.08)), (int(bw * 0.62), int(bh * 0.72)), 0, 0, 360, 255, -1)
        else:
            cv2.ellipse(cov, hc, (int(bw * 0.64), int(bh * 0.8)), 0, 0, 360, 255, -1)
        strands = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), sigmaX=0.8, sigmaY=bh * 0.06)
        strands /= np.abs(strands).max() + 1e-6
        lum = 1.0 + 0.35 * strands + 0.2 * np.clip((hc[1] - np.arange(H, dtype=np.float32)[:, None]) / bh, -1, 1)
        canvas[cov > 0] = np.clip(hair[None, None, :] * lum[..., None], 0, 255)[cov > 0]
        mask |= cov
    kk = max(3, int(bw * 0.06) | 1)
    alpha = cv2.GaussianBlur(mask, (kk, kk), 0).astype(np.float32)[..., None] / 255.0
    bgr = np.clip(canvas, 0, 255).astype(np.uint8)
    if soften > 0:
        bgr = cv2.GaussianBlur(bgr, (0, 0), soften)
    return Sprite(bgr, alpha, (cx - bw / 2, by, bw, bh), (cx, by + bh / 2))
