"""Labelled face photos -> genuine and impostor scores per face-size band, through the pipeline the API uses.

Used by ``bench/accuracy.py`` (error rates per population and band) and ``dualcheck calibrate``
(thresholds for a deployment's own population). Input: identity folders, ``ROOT/<person>/*.jpg|png``,
or labelled pairs (``labelled_pairs``: a CSV of enrolled photo, probe photo, same person or not).
Each person's first photo (sorted by name) is enrolled as face-pay enrolment does it (one usable face,
``select_enrollment_face``); the other photos are probes, analysed as a terminal capture is
(``analyze_closeup``, largest face). Probes are tried at three sizes: as taken (terminal band when the
face is >= 150 px), and downscaled so the face is about 80 px (counter) and 48 px (far) wide,
compressed as cameras do: JPEG at quality 75 for counter sizes and one H.264 intra frame (libx264,
CRF 30, in a 4:2:0 frame) for far sizes. A probe whose face is refused at a size counts as a failure
to acquire there, not as a score. Genuine pairs: probe vs own template; impostor pairs: probe vs every
other person's template. Biometric data stays in memory; nothing is written.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from .decision import BANDS, FAR, TERMINAL, TERMINAL_MIN_PX, Thresholds, band_of
from .image import decode_image
from .matching import EnrollmentRefused, cosine_scores, select_enrollment_face

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# face width (px) a probe is scaled to for each band; None: as taken
BAND_TARGET_PX = {TERMINAL: None, "counter": 80.0, FAR: 48.0}
JPEG_QUALITY_COUNTER = 75
H264_CRF_FAR = 30
# a face box this wide already fills the recogniser's 112 px aligned crop (the crop adds a margin round the
# face): enlarging it adds no detail, so it stands in for a close-up where a set has none
TERMINAL_STANDIN_MIN_PX, TERMINAL_STANDIN_PX = 90.0, 200.0
SAME_LABELS = {"1": True, "true": True, "same": True, "0": False, "false": False, "different": False}


class EvaluationError(ValueError):
    """Input that cannot be evaluated (no identities, too few photos): a message for the user."""


def identity_folders(root: Path, max_photos: int | None = None) -> dict[str, list[Path]]:
    """person -> sorted photo paths (the first ``max_photos``), for every sub-folder of ``root`` holding
    at least one image."""
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root} is not a directory of identity folders")
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            out[d.name] = photos[:max_photos] if max_photos else photos
    if len(out) < 2:
        raise EvaluationError(f"{root}: need at least two identity folders with photos (found {len(out)}); "
                              "impostor pairs need two people")
    if not any(len(v) >= 2 for v in out.values()):
        raise EvaluationError(f"{root}: no identity has two photos; genuine pairs need an enrolled photo and a probe")
    return out


def h264_roundtrip(img: np.ndarray, crf: int = H264_CRF_FAR) -> np.ndarray:
    """``img`` as one H.264 intra frame decodes: the blocking and chroma loss of a camera stream."""
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="bgr24").reformat(format="yuv420p")
    packets = list(enc.encode(frame)) + list(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    out = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    return out[-1].to_ndarray(format="bgr24")


def degrade(img: np.ndarray, face_px: float, band: str, upscale_terminal: bool = False) -> np.ndarray | None:
    """``img`` scaled so its face (``face_px`` wide) has the band's size, then compressed; None when the
    face is already smaller than that (it cannot be upscaled into the band honestly). With
    ``upscale_terminal`` a face of at least 90 px (it fills the recogniser's 112 px crop) is enlarged to 200 px for the
    terminal band: the aligned crop the recogniser sees holds the same detail (a stand-in for close-ups
    where a set has none, reported as such)."""
    target = BAND_TARGET_PX[band]
    if target is None:
        if upscale_terminal and TERMINAL_STANDIN_MIN_PX <= face_px < TERMINAL_MIN_PX:
            f = TERMINAL_STANDIN_PX / face_px
            return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        return img
    scale = target / face_px
    if scale >= 1.0:
        return None
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if band == FAR:
        return h264_roundtrip(small)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY_COUNTER])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@dataclass
class Probe:
    person: str
    path: Path
    band: str  # the band its (degraded) face was judged in
    face_px: float
    embedding: np.ndarray = field(repr=False)


@dataclass
class Scores:
    """Per band: genuine and impostor scores (with each pair's probe face width), failures to acquire."""
    genuine: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {b: [] for b in BANDS})
    impostor: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {b: [] for b in BANDS})
    refused: dict[str, int] = field(default_factory=lambda: {b: 0 for b in BANDS})
    tried: dict[str, int] = field(default_factory=lambda: {b: 0 for b in BANDS})
    enrolled: int = 0
    not_enrolled: list[str] = field(default_factory=list)
    templates: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # person -> (n, d)
    probes: list[Probe] = field(default_factory=list, repr=False)

    def values(self, kind: str, band: str) -> np.ndarray:
        return np.asarray([s for s, _ in getattr(self, kind)[band]], np.float64)


def _decode(path: Path, settings) -> np.ndarray:
    return decode_image(path.read_bytes(), max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)


def _enroll(pipeline, settings, path: Path) -> np.ndarray | None:
    try:
        return select_enrollment_face(pipeline.analyze(_decode(path, settings))).embedding
    except EnrollmentRefused:
        return None


def _probe(pipeline, settings, path: Path, sc: Scores, upscale_terminal: bool) -> dict[str, tuple[np.ndarray, float]]:
    """band -> (embedding, face width) of the photo at ``path`` analysed as a capture at each band's size;
    counts what was tried and refused in ``sc``."""
    img = _decode(path, settings)
    found = pipeline.analyze_closeup(img, max_embed=1, small_side=settings.verify_detect_max_side)
    if not found:
        return {}
    width = found[0].face.width
    out = {}
    for band in BANDS:
        if band == TERMINAL and band_of(width) != TERMINAL and not (
                upscale_terminal and width >= TERMINAL_STANDIN_MIN_PX):
            continue  # a photo with a small face says nothing about close-ups
        im = degrade(img, width, band, upscale_terminal)
        if im is None:
            continue
        sc.tried[band] += 1
        faces = pipeline.analyze_closeup(im, max_embed=1, small_side=settings.verify_detect_max_side)
        f = faces[0] if faces else None
        if f is None or f.embedding is None:
            sc.refused[band] += 1
            continue
        out[band] = (f.embedding, f.face.width)
    return out


def labelled_pairs(path: Path) -> list[tuple[Path, Path, bool]]:
    """Rows ``enrolled_photo,probe_photo,same`` of a CSV (``same``: 1/0, true/false, same/different;
    photo paths relative to the CSV's folder; a first row naming the columns is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path} is not a file of labelled pairs")
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or (n == 1 and row[-1].strip().lower() == "same"):
                continue
            if len(row) != 3:
                raise EvaluationError(f"{path}:{n}: need 3 columns (enrolled_photo, probe_photo, same), got {len(row)}")
            a, b, same = (x.strip() for x in row)
            label = SAME_LABELS.get(same.lower())
            if label is None:
                raise EvaluationError(f"{path}:{n}: 'same' must be 1/0, true/false or same/different, got {same!r}")
            pa, pb = path.parent / a, path.parent / b
            for q in (pa, pb):
                if not q.is_file():
                    raise EvaluationError(f"{path}:{n}: no photo {q}")
            out.append((pa, pb, label))
    if not any(lbl for *_, lbl in out) or all(lbl for *_, lbl in out):
        raise EvaluationError(f"{path}: need both same-person and different-person pairs")
    return out


def collect_pairs(pipeline, settings, pairs: list[tuple[Path, Path, bool]], *,
                  upscale_terminal: bool = False) -> Scores:
    """Scores of labelled pairs per band: the first photo enrolled, the second analysed as a capture."""
    sc = Scores()
    tpl: dict[Path, np.ndarray | None] = {}
    probes: dict[Path, dict[str, tuple[np.ndarray, float]]] = {}
    for a, b, same in pairs:
        if a not in tpl:
            tpl[a] = _enroll(pipeline, settings, a)
            if tpl[a] is None:
                sc.not_enrolled.append(str(a))
        if b not in probes:
            probes[b] = _probe(pipeline, settings, b, sc, upscale_terminal)
        if tpl[a] is None:
            continue
        for band, (emb, px) in probes[b].items():
            s = float(cosine_scores(emb, tpl[a][None, :])[0])
            (sc.genuine if same else sc.impostor)[band].append((s, px))
    sc.enrolled = sum(t is not None for t in tpl.values())
    return sc


def collect(pipeline, settings, people: dict[str, list[Path]], *, templates_per_person: int = 1,
            combine: str = "best", upscale_terminal: bool = False) -> Scores:
    """Scores of every probe against every enrolled person, per band (see the module docstring).
    ``templates_per_person`` photos are enrolled per person (the rest are probes); ``combine`` is how a
    probe is scored against several templates: ``best`` (the maximum, as face-pay does) or ``mean``
    (against the normalised mean template)."""
    tpl: dict[str, np.ndarray] = {}
    probes: list[Probe] = []
    sc = Scores()
    for person, photos in people.items():
        embs = [e for e in (_enroll(pipeline, settings, p) for p in photos[:templates_per_person]) if e is not None]
        if not embs:
            sc.not_enrolled.append(person)
            continue
        t = np.stack(embs)
        if combine == "mean":
            m = t.mean(axis=0)
            t = (m / max(float(np.linalg.norm(m)), 1e-12))[None, :]
        tpl[person] = t
        for p in photos[templates_per_person:]:
            for band, (emb, px) in _probe(pipeline, settings, p, sc, upscale_terminal).items():
                probes.append(Probe(person, p, band, px, emb))
    sc.enrolled, sc.templates, sc.probes = len(tpl), tpl, probes
    for pr in probes:
        for person, t in tpl.items():
            s = float(np.max(cosine_scores(pr.embedding, t)))
            (sc.genuine if person == pr.person else sc.impostor)[pr.band].append((s, pr.face_px))
    return sc


@dataclass(frozen=True)
class Outcomes:
    match: int
    uncertain: int
    mismatch: int

    @property
    def n(self) -> int:
        return self.match + self.uncertain + self.mismatch


def outcomes(pairs: list[tuple[float, float]], thresholds: Thresholds) -> Outcomes:
    """How the product would decide each (score, face width) pair under ``thresholds``."""
    ds = [thresholds.judge(s, px).decision for s, px in pairs]
    return Outcomes(ds.count("match"), ds.count("uncertain"), ds.count("mismatch"))


def snorm(sc: Scores, band: str) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) scores of ``band`` after symmetric score normalisation (S-norm) against an
    impostor cohort from the same population: the enrolled templates of everyone but the two people
    compared (as the templates enrolled at one institution or region would be). Each raw cosine score
    becomes the mean of its z-scores against the probe's and the template's cohort scores."""
    people = list(sc.templates)
    means = np.stack([t.mean(axis=0) / max(float(np.linalg.norm(t.mean(axis=0))), 1e-12) for t in sc.templates.values()])
    tt = means @ means.T  # template vs template
    g, im = [], []
    for pr in (p for p in sc.probes if p.band == band):
        pc = means @ pr.embedding  # probe vs every template
        for j, person in enumerate(people):
            raw = float(np.max(cosine_scores(pr.embedding, sc.templates[person])))
            keep = np.ones(len(people), bool)
            keep[j] = False
            if pr.person in sc.templates:
                keep[people.index(pr.person)] = False
            if keep.sum() < 2:
                continue
            zp = (raw - pc[keep].mean()) / max(pc[keep].std(), 1e-6)
            zt = (raw - tt[j, keep].mean()) / max(tt[j, keep].std(), 1e-6)
            (g if person == pr.person else im).append(0.5 * (zp + zt))
    return np.asarray(g), np.asarray(im)
