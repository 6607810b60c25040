"""The real pipeline (YuNet + SFace) on the shared test images: what a terminal/user would notice."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from vision.base import Face
from vision.matching import (
    EnrollmentRefused,
    cosine_scores,
    decide_verification,
    select_enrollment_face,
)
from vision.quality import assess_quality

PORTRAITS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "biden.jpg"]


def _one(pipeline, img):
    faces = pipeline.analyze(img)
    assert len(faces) == 1, [f.face for f in faces]
    return faces[0]


def _sim(a, b) -> float:
    return float(cosine_scores(a.embedding, b.embedding[None])[0])


def test_model_info_and_threshold(pipeline):
    info = pipeline.model_info
    assert info["pack"] == "yunet_sface" and info["detector"] == "yunet" and info["recognizer"] == "sface"
    assert info["embedding_dim"] == 128
    assert pipeline.threshold == pytest.approx(0.363)


@pytest.mark.parametrize("name", PORTRAITS)
def test_portraits_one_usable_face(pipeline, load, name):
    img = load(f"faces/{name}")
    af = _one(pipeline, img)
    assert af.quality.usable, af.quality.to_dict()
    e = af.embedding
    assert e.dtype == np.float32 and e.shape == (128,) and abs(np.linalg.norm(e) - 1) < 1e-4
    # Coordinates are in original pixels: the box lies inside the image and the eyes inside the box.
    h, w = img.shape[:2]
    f = af.face
    assert 0 <= f.x1 < f.x2 <= w and 0 <= f.y1 < f.y2 <= h
    assert f.kps.shape == (5, 2) and f.kps.dtype == np.float32
    assert f.kps[0, 0] < f.kps[1, 0]  # InsightFace order: image-left eye first
    assert f.kps[2, 1] > f.kps[:2, 1].mean()  # nose below the eyes


def test_same_person_above_threshold_other_below(pipeline, load):
    obama, obama2, biden = (_one(pipeline, load(f"faces/{n}")) for n in ("obama.jpg", "obama2.jpg", "biden.jpg"))
    assert _sim(obama, obama2) > pipeline.threshold + 0.2
    assert _sim(obama, biden) < pipeline.threshold - 0.1
    assert _sim(obama2, biden) < pipeline.threshold


def test_id_size_photo_is_found_usable_and_matches(pipeline, load, id_photo):
    assert id_photo.shape[:2] == (126, 102)
    af = _one(pipeline, id_photo)
    assert af.quality.usable, af.quality.to_dict()
    assert af.face.width > 50  # the face fills most of the picture
    obama2 = _one(pipeline, load("faces/obama2.jpg"))
    biden = _one(pipeline, load("faces/biden.jpg"))
    assert _sim(af, obama2) > pipeline.threshold
    assert _sim(af, biden) < pipeline.threshold


def test_heavily_blurred_capture_refused(pipeline, load):
    img = cv2.GaussianBlur(load("faces/obama.jpg"), (0, 0), 5)
    af = _one(pipeline, img)  # still detected...
    assert not af.quality.usable and af.quality.reasons == ["blurry"]  # ...but refused
    assert af.embedding is None


def test_tiny_face_refused(pipeline, load):
    img = load("faces/obama.jpg")
    f = _one(pipeline, img).face
    s = 20 / f.width
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    af = _one(pipeline, small)
    assert "face_too_small" in af.quality.reasons and not af.quality.usable


def test_rotated_face_refused(pipeline, load):
    img = load("faces/obama.jpg")
    h, w = img.shape[:2]
    rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 60, 1.0), (w, h))
    faces = pipeline.analyze(rot)
    assert faces and not any(f.quality.usable for f in faces)


def _with_kps(face: Face, kps) -> Face:
    return Face(face.x1, face.y1, face.x2, face.y2, np.asarray(kps, np.float32), face.det_score)


def test_turned_and_implausible_landmarks(pipeline, load):
    img = load("faces/obama.jpg")
    af = _one(pipeline, img)
    k = af.face.kps.copy()
    th = pipeline.thresholds
    # Strongly turned: the nose sits almost under one eye (profile-like).
    turned = k.copy()
    turned[2, 0] = k[1, 0] - 0.05 * (k[1, 0] - k[0, 0])
    q = assess_quality(_with_kps(af.face, turned), af.aligned, th)
    assert q.reasons == ["pose_out_of_range"] and q.yaw > th.max_yaw
    # Implausible: nose above the eyes, mouth above the nose (e.g. a false detection).
    upside = k.copy()
    upside[:, 1] = 2 * k[:, 1].mean() - k[:, 1]
    upside[[0, 1]] = upside[[1, 0]]  # keep the eye line pointing right, so it is not "roll 180"
    upside[[3, 4]] = upside[[4, 3]]
    upside[:, 0] = k[:, 0]
    q = assess_quality(_with_kps(af.face, upside), af.aligned, th)
    assert "landmarks_implausible" in q.reasons
    # Head tilted 90 degrees (eye line vertical).
    c = k.mean(axis=0)
    r90 = (k - c) @ np.array([[0, 1], [-1, 0]], np.float32) + c
    q = assess_quality(_with_kps(af.face, r90), af.aligned, th)
    assert "pose_out_of_range" in q.reasons


def test_quality_to_dict(pipeline, load):
    d = _one(pipeline, load("faces/obama.jpg")).quality.to_dict()
    assert d["usable"] is True and d["reasons"] == []
    assert set(d) >= {"face_px", "det_score", "sharpness", "yaw", "roll_deg"}


# --- decisions ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def obama_templates(pipeline, load):
    return np.stack([_one(pipeline, load(f"faces/{n}")).embedding for n in ("obama.jpg", "obama3.jpg")])


def _decide(pipeline, img, templates, ratio=2.0):
    return decide_verification(pipeline.analyze(img), templates, pipeline.threshold, ratio)


def test_verification_decisions(pipeline, load, obama_templates):
    d = _decide(pipeline, load("faces/obama2.jpg"), obama_templates)
    assert d.decision == "match" and d.score > pipeline.threshold and d.face is not None
    d = _decide(pipeline, load("faces/obama_partial_face.jpg"), obama_templates)
    assert d.decision == "match"
    d = _decide(pipeline, load("faces/biden.jpg"), obama_templates)
    assert d.decision == "mismatch" and d.score < pipeline.threshold
    d = _decide(pipeline, np.full((480, 640, 3), 127, np.uint8), obama_templates)
    assert d.decision == "no_face" and d.score is None
    d = _decide(pipeline, cv2.GaussianBlur(load("faces/obama2.jpg"), (0, 0), 5), obama_templates)
    assert d.decision == "low_quality" and "blurry" in d.reason


@pytest.mark.parametrize("scene", ["2008_002470.jpg", "2008_004176.jpg", "2009_004587.jpg", "bald_guys.jpg"])
def test_group_photo_is_multiple_faces(pipeline, load, obama_templates, scene):
    d = _decide(pipeline, load(f"scenes/{scene}"), obama_templates)
    assert d.decision == "multiple_faces"


def test_dogs_false_face_is_not_a_match(pipeline, load, obama_templates):
    # YuNet reports one face on a dog (score ~0.85). YuNet's recommended 0.9 score gate refuses it.
    faces = pipeline.analyze(load("scenes/dogs.jpg"))
    assert len(faces) == 1 and faces[0].quality.reasons == ["low_detector_score"]
    d = decide_verification(faces, obama_templates, pipeline.threshold)
    assert d.decision == "low_quality"
    with pytest.raises(EnrollmentRefused) as e:
        select_enrollment_face(faces)
    assert e.value.code == "low_quality" and e.value.reasons == ["low_detector_score"]


def _queue_scene(load, payer_scale: float) -> np.ndarray:
    """A payer (obama2) in front, someone queueing behind (biden, smaller), side by side."""
    payer = load("faces/obama2.jpg")
    behind = load("faces/biden.jpg")
    behind = cv2.resize(behind, None, fx=0.3 / payer_scale, fy=0.3 / payer_scale, interpolation=cv2.INTER_AREA)
    payer = cv2.resize(payer, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    h = max(payer.shape[0], behind.shape[0])
    canvas = np.full((h, payer.shape[1] + behind.shape[1], 3), 90, np.uint8)
    canvas[: payer.shape[0], : payer.shape[1]] = payer
    canvas[: behind.shape[0], payer.shape[1]:] = behind
    return canvas


def test_payer_in_front_of_queue_is_verified(pipeline, load, obama_templates):
    img = _queue_scene(load, payer_scale=1.0)
    faces = pipeline.analyze(img)
    assert len(faces) == 2 and faces[0].face.area > 2 * faces[1].face.area
    d = decide_verification(faces, obama_templates, pipeline.threshold, 2.0)
    assert d.decision == "match" and d.face is faces[0]


def test_two_similar_faces_is_multiple_faces(pipeline, load, obama_templates):
    img = _queue_scene(load, payer_scale=0.45)  # the second face is about as large as the payer's
    faces = pipeline.analyze(img)
    assert len(faces) == 2
    assert decide_verification(faces, obama_templates, pipeline.threshold, 2.0).decision == "multiple_faces"


def test_unusable_subject_is_never_skipped_for_a_face_behind(pipeline, load, obama_templates):
    # The payer's face is blurred; a sharp enrolled face behind must NOT be verified instead.
    img = _queue_scene(load, payer_scale=1.0)
    w_payer = int(load("faces/obama2.jpg").shape[1] * 0.6)
    img[:, :w_payer] = cv2.GaussianBlur(img[:, :w_payer], (0, 0), 5)
    faces = pipeline.analyze(img)
    biden_templates = np.stack([_one(pipeline, load("faces/biden.jpg")).embedding])
    d = decide_verification(faces, biden_templates, pipeline.threshold, 2.0)
    assert d.decision == "low_quality"


def test_enrollment_selection(pipeline, load, id_photo):
    f = select_enrollment_face(pipeline.analyze(id_photo))
    assert f.embedding is not None
    with pytest.raises(EnrollmentRefused) as e:
        select_enrollment_face(pipeline.analyze(load("scenes/bald_guys.jpg")))
    assert e.value.code == "multiple_faces"
    with pytest.raises(EnrollmentRefused) as e:
        select_enrollment_face(pipeline.analyze(np.zeros((200, 200, 3), np.uint8)))
    assert e.value.code == "no_face"
    with pytest.raises(EnrollmentRefused) as e:
        select_enrollment_face(pipeline.analyze(cv2.GaussianBlur(load("faces/obama.jpg"), (0, 0), 5)))
    assert e.value.code == "low_quality" and e.value.reasons == ["blurry"]


def test_max_embed_limits_work_on_crowds(pipeline, load):
    faces = pipeline.analyze(load("scenes/bald_guys.jpg"), max_embed=1)
    assert sum(f.embedding is not None for f in faces) == 1 and faces[0].embedding is not None
    areas = [f.face.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_concurrent_analyze_matches_sequential(pipeline, load):
    imgs = [load(f"faces/{n}") for n in ("obama.jpg", "obama2.jpg", "biden.jpg")] + [load("scenes/2009_004587.jpg")]
    jobs = imgs * 3

    def summary(img):
        return [(round(f.face.x1, 2), round(f.face.y1, 2), f.quality.reasons,
                 None if f.embedding is None else f.embedding.copy()) for f in pipeline.analyze(img)]

    sequential = [summary(i) for i in jobs]
    with ThreadPoolExecutor(max_workers=4) as ex:
        parallel = list(ex.map(summary, jobs))
    assert len(parallel) == len(sequential)
    for seq, par in zip(sequential, parallel):
        assert len(seq) == len(par)
        for a, b in zip(seq, par):
            assert a[:3] == b[:3]
            assert (a[3] is None) == (b[3] is None)
            if a[3] is not None:
                assert np.allclose(a[3], b[3], atol=1e-5)
