"""InsightFace packs (SCRFD + ArcFace) selected by settings.model_pack = <dir>.

No real SCRFD model is available offline, so the pack is ASSEMBLED here: a SCRFD-format detector made
by graph surgery on YuNet (tests/vision/scrfd_surgery.py) and SFace as the ArcFace-type recogniser.
Detection then really runs through insightface's SCRFD decoding code.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from kernel.settings import Settings
from vision.insightface_pack import ScrfdDetector
from vision.matching import cosine_scores, decide_verification
from vision.packs import YUNET_SFACE, ModelError, ModelIntegrityError
from vision.pipeline import FacePipeline

from .scrfd_surgery import scrfd_from_yunet


def _write_sums(d: Path) -> None:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(d.glob("*.onnx"))]
    (d / "SHA256SUMS").write_text("".join(lines))


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory, models_dir) -> Path:
    d = tmp_path_factory.mktemp("if_pack")
    yunet = (models_dir / YUNET_SFACE.file("detector").name).read_bytes()
    (d / "det_yunet_as_scrfd.onnx").write_bytes(scrfd_from_yunet(yunet))
    shutil.copy(models_dir / YUNET_SFACE.file("recognizer").name, d / "w_sface.onnx")  # ArcFace-type
    _write_sums(d)
    return d


@pytest.fixture(scope="module")
def if_pipeline(pack_dir) -> FacePipeline:
    return FacePipeline.from_settings(Settings(model_pack=str(pack_dir)))


def test_pack_is_identified_by_insightface(if_pipeline, pack_dir):
    info = if_pipeline.model_info
    assert info["pack"] == str(pack_dir.resolve())
    assert info["detector"] == "det_yunet_as_scrfd" and isinstance(if_pipeline.detector, ScrfdDetector)
    assert info["recognizer"] == "sface" and info["embedding_dim"] == 128
    from insightface.model_zoo.scrfd import SCRFD

    assert isinstance(if_pipeline.detector.model, SCRFD) and if_pipeline.detector.model.use_kps


def test_pack_pipeline_same_and_different_person(if_pipeline, load):
    def one(name):
        faces = if_pipeline.analyze(load(f"faces/{name}"))
        assert len(faces) == 1 and faces[0].usable, [f.quality for f in faces]
        return faces[0]

    obama, obama2, biden = one("obama.jpg"), one("obama2.jpg"), one("biden.jpg")
    th = if_pipeline.threshold
    assert cosine_scores(obama.embedding, obama2.embedding[None])[0] > th
    assert cosine_scores(obama.embedding, biden.embedding[None])[0] < th
    d = decide_verification([obama2], obama.embedding[None], th)
    assert d.decision == "match"
    assert decide_verification([biden], obama.embedding[None], th).decision == "mismatch"


def test_pack_pipeline_agrees_with_default_pack(if_pipeline, pipeline, load, id_photo):
    # Same networks underneath, so SCRFD-decoded boxes/landmarks land where YuNet's do.
    img = load("faces/obama3.jpg")
    a, b = if_pipeline.analyze(img)[0].face, pipeline.analyze(img)[0].face
    assert np.abs(a.kps - b.kps).max() < 0.03 * b.width
    faces = if_pipeline.analyze(id_photo)
    assert len(faces) == 1 and faces[0].usable
    templates = if_pipeline.analyze(load("faces/obama.jpg"))[0].embedding[None]
    crowd = if_pipeline.analyze(load("scenes/bald_guys.jpg"), max_embed=1)
    assert decide_verification(crowd, templates, if_pipeline.threshold).decision == "multiple_faces"


def test_sums_mismatch_refused(pack_dir, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(pack_dir, d)
    det = d / "det_yunet_as_scrfd.onnx"
    data = bytearray(det.read_bytes())
    data[5000] ^= 0xFF
    det.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="det_yunet_as_scrfd.onnx"):
        FacePipeline.from_settings(Settings(model_pack=str(d)))


def test_unlisted_file_refused(pack_dir, tmp_path):
    d = tmp_path / "pack"
    shutil.copytree(pack_dir, d)
    (d / "SHA256SUMS").write_text((d / "SHA256SUMS").read_text().splitlines()[0] + "\n")
    with pytest.raises(ModelError, match="not listed"):
        FacePipeline.from_settings(Settings(model_pack=str(d)))


def test_unknown_pack_refused(tmp_path):
    with pytest.raises(ModelError, match="neither"):
        FacePipeline.from_settings(Settings(model_pack=str(tmp_path / "nope")))
