"""Tracking one camera's sampled frames: one still person is one person (issue 11).

Real detections and embeddings: obama.jpg and biden.jpg pasted into a counter frame, run through the
pipeline as correlate/check.py runs it (detect_wide, then the tracker, then embedding)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import cv2
import pytest

from bench.sharpness import compose, counter_background, face_patch
from correlate.check import DETECT_EVERY, detect_wide
from correlate.tracking import MAX_MISSED, Detection, Tracker, box_of
from tests.api.conftest import shared_pipeline  # noqa: F401  (fixture)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SAMPLE_S = 2.0


@pytest.fixture(scope="module")
def frames(shared_pipeline, testdata):
    """Counter frames: obama alone; obama and biden side by side (faces ~120 px in 1280x720)."""
    patches = {n: face_patch(shared_pipeline, cv2.imread(str(testdata / "faces" / f"{n}.jpg")))
               for n in ("obama", "biden")}
    bg = counter_background()
    return {"obama": compose(bg, [patches["obama"]], 120)[0],
            "both": compose(bg, [patches["obama"], patches["biden"]], 120)[0]}


def run(pipeline, tracker: Tracker, frame_of, samples: range, searched) -> None:
    """Feed the tracker as check.py does: only searched samples, with the faces found in them."""
    for i in samples:
        if not searched(i):
            continue
        faces = detect_wide(pipeline, frame_of(i), 480)
        tracker.update(i, [Detection(i, T0 + timedelta(seconds=i * SAMPLE_S), box_of(f), f, image_index=i)
                           for f in faces])


def embed_all(pipeline, tracker: Tracker) -> None:
    for t in tracker.tracks:
        for d in t.usable[:1]:
            d.embedding = pipeline.recognizer.embed(d.face.aligned)


def test_still_person_searched_every_4th_sample_is_one_track(shared_pipeline, frames):
    tr = Tracker("CAM", float(shared_pipeline.threshold))
    run(shared_pipeline, tr, lambda i: frames["obama"], range(40), lambda i: i % DETECT_EVERY == 0)
    assert len(tr.tracks) == 1 and len(tr.tracks[0].dets) == 10


def test_two_people_are_two_tracks(shared_pipeline, frames):
    tr = Tracker("CAM", float(shared_pipeline.threshold))
    run(shared_pipeline, tr, lambda i: frames["both"], range(40), lambda i: i % DETECT_EVERY == 0)
    embed_all(shared_pipeline, tr)
    tr.split_on_identity()
    tr.merge_same_identity()
    assert len(tr.tracks) == 2  # never merged: different faces, and in the same frames


def test_same_face_after_a_long_absence_merges_after_embedding(shared_pipeline, frames):
    # obama, then an empty counter for longer than a track survives, then obama again
    away = range(10, 10 + (MAX_MISSED + 2) * DETECT_EVERY)
    bg = counter_background()
    tr = Tracker("CAM", float(shared_pipeline.threshold))
    run(shared_pipeline, tr, lambda i: bg if i in away else frames["obama"], range(40),
        lambda i: i % DETECT_EVERY == 0)
    assert len(tr.tracks) == 2  # the tracker alone cannot bridge the absence...
    embed_all(shared_pipeline, tr)
    tr.split_on_identity()
    tr.merge_same_identity()
    assert len(tr.tracks) == 1  # ...the faces say it is one person
    assert [d.frame for d in tr.tracks[0].dets] == sorted(d.frame for d in tr.tracks[0].dets)


def test_different_people_in_turn_at_one_spot_stay_apart(shared_pipeline, frames, testdata):
    # obama leaves, biden steps into the same spot: boxes overlap, faces do not match
    patch = face_patch(shared_pipeline, cv2.imread(str(testdata / "faces" / "biden.jpg")))
    biden = compose(counter_background(), [patch], 120)[0]
    tr = Tracker("CAM", float(shared_pipeline.threshold))
    run(shared_pipeline, tr, lambda i: frames["obama"] if i < 20 else biden, range(40),
        lambda i: i % DETECT_EVERY == 0)
    for t in tr.tracks:  # both halves embedded, as check.py embeds the best faces of a track
        for d in (t.usable[:1] + [x for x in t.usable if x.frame >= 20][:1]):
            d.embedding = shared_pipeline.recognizer.embed(d.face.aligned)
    tr.split_on_identity()
    tr.merge_same_identity()
    assert len(tr.tracks) == 2
