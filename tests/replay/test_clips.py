"""Clip assembly straight from the store: what a player gets out of it (checked with ffprobe/PyAV)."""
from __future__ import annotations

import hashlib

import av

from storage.clips import ClipError, plan_clip, store_reader
from storage.db import session_scope
from tests.replay.conftest import GAP, at, ffprobe_packets


def _build(replay, start, end, path):
    rt = replay.rt
    bucket = replay.settings.bucket_footage
    with session_scope(rt.sessions) as db:
        plan = plan_clip(db, rt.store, bucket, "CAM-1", "CLINIC-A", start, end)
    with open(path, "wb") as fh:
        for chunk in plan.iter_bytes(store_reader(rt.store, bucket)):
            fh.write(chunk)
    return plan


def _payloads(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def test_two_minute_clip_across_segments_and_a_gap(replay, tmp_path):
    path = tmp_path / "clip.mp4"
    plan = _build(replay, at(4), at(124), path)
    assert path.stat().st_size == plan.size
    assert plan.duration_s == 120
    info = ffprobe_packets(path)
    assert abs(float(info["format"]["duration"]) - 120) <= 1.0
    pts = [float(p["pts_time"]) for p in info["packets"]]
    assert pts[0] == 0 and "K" in info["packets"][0]["flags"]
    assert all(b > a for a, b in zip(pts, pts[1:])), "timestamps must increase"
    # the recording gap is a jump of the clock, not the end of the clip: wall-clock true timestamps
    jumps = [(a, b) for a, b in zip(pts, pts[1:]) if b - a > 1.0]
    gap_start = GAP[0] - 4
    assert jumps == [(gap_start - 0.04, gap_start + GAP[1])]
    assert pts[-1] > 119
    assert [g["start"] for g in plan.gaps] == ["2025-03-01T02:01:00Z"]
    assert plan.gaps[0]["seconds"] == GAP[1]


def test_clip_is_a_remux_of_the_segments(replay, tmp_path):
    """Byte-identical frames: nothing was transcoded."""
    path = tmp_path / "clip.mp4"
    plan = _build(replay, at(20), at(45), path)  # segments 20-30, 30-40, 40-50
    src = []
    for seg in plan.segments:
        seg_path = tmp_path / f"{seg.id}.mp4"
        seg_path.write_bytes(replay.rt.store.get_bytes(replay.settings.bucket_footage, seg.object_key))
        src += _payloads(seg_path)
    got = _payloads(path)
    assert len(got) == 26 * 25 - 1 + 1  # 20 s .. 46 s (GOP covering 45 s ends at 46 s)
    assert hashlib.sha256(b"".join(got)).digest() == hashlib.sha256(b"".join(src[:len(got)])).digest()


def test_clip_starts_at_the_keyframe_at_or_before_start(replay, tmp_path):
    path = tmp_path / "clip.mp4"
    plan = _build(replay, at(13.7), at(17.1), path)
    assert plan.clip_start == at(12) and plan.clip_end == at(18)
    info = ffprobe_packets(path)
    assert "K" in info["packets"][0]["flags"]
    assert abs(float(info["format"]["duration"]) - 6) < 0.1


def test_range_in_a_gap_has_no_footage(replay):
    rt = replay.rt
    with session_scope(rt.sessions) as db:
        try:
            plan_clip(db, rt.store, replay.settings.bucket_footage, "CAM-1", "CLINIC-A", at(62), at(75))
        except ClipError as e:
            assert e.code == "no_footage"
            assert e.gaps == [{"start": "2025-03-01T02:01:02Z", "end": "2025-03-01T02:01:15Z", "seconds": 13.0,
                               "reason": "not_recorded"}]
        else:
            raise AssertionError("expected no_footage")


def test_any_byte_range_matches_the_whole(replay, tmp_path):
    rt = replay.rt
    bucket = replay.settings.bucket_footage
    with session_scope(rt.sessions) as db:
        plan = plan_clip(db, rt.store, bucket, "CAM-1", "CLINIC-A", at(5), at(100))
    reader = store_reader(rt.store, bucket)
    whole = b"".join(plan.iter_bytes(reader))
    assert len(whole) == plan.size
    for lo, hi in [(0, 10), (5, plan.size - 1), (plan.size // 2, plan.size // 2 + 300_000),
                   (plan.parts[2].out_offset - 3, plan.parts[2].out_offset + 40), (plan.size - 7, plan.size - 1)]:
        assert b"".join(plan.iter_bytes(reader, lo, hi)) == whole[lo:hi + 1], (lo, hi)
