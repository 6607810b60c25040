"""The sharpness gate at CCTV sizes (issue 11): a face a person and SFace recognise after H.264 at a
CCTV bitrate is usable; a genuinely blurred one is refused. Real models, the shared portraits pasted
into a 1280x720 counter frame and compressed at test time (bench/sharpness.py, docs/face-accuracy.md)."""
from __future__ import annotations

import pytest

from bench.sharpness import PORTRAITS, blur, compose, counter_background, face_patch, h264_clip, observe, sway


@pytest.fixture(scope="module")
def scene(pipeline, load):
    imgs = [load(f"faces/{n}") for n in PORTRAITS]
    templates = [pipeline.analyze(im, max_embed=1)[0].embedding for im in imgs]
    return counter_background(), [face_patch(pipeline, im) for im in imgs], templates


@pytest.mark.parametrize("size", [60, 100, 160])
def test_compressed_cctv_face_is_usable(pipeline, scene, size):
    bg, patches, templates = scene
    frame, boxes = compose(bg, patches, size)
    clip = h264_clip(lambda i: compose(bg, patches, size, *sway(i))[0], 500_000)  # low end of CCTV 720p
    obs = observe(pipeline, clip, boxes, templates)
    assert all(o.found for o in obs)
    assert all(o.genuine >= pipeline.threshold for o in obs)  # SFace still recognises each one...
    assert all(o.usable for o in obs), [(o.sharpness, o.reasons) for o in obs]  # ...so the gate must let it


# sigma 3 on a 160 px face is ~5 % of the eye distance and SFace still matches it (0.71-0.75): not refused
@pytest.mark.parametrize("size,kind,amount", [(s, k, a) for s in (60, 100) for k, a in
                                              (("gauss", 3.0), ("gauss", 5.0), ("motion", 15))]
                         + [(160, "gauss", 5.0), (160, "motion", 15)])
def test_blurred_cctv_face_is_refused(pipeline, scene, size, kind, amount):
    bg, patches, templates = scene
    frame, boxes = compose(bg, patches, size)
    obs = [o for o in observe(pipeline, blur(frame, kind, amount), boxes, templates) if o.found]
    assert obs and not any(o.usable for o in obs), [(o.sharpness, o.reasons) for o in obs]
    assert all("blurry" in o.reasons for o in obs)
