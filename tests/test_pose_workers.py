"""Pose segments and workers (issue 20): the keypoints depend on the video alone, never on the worker count.

The video is cut by its frame count (``plan_segments``); each segment gets a fresh tracker after a warm-up on the
frames before it, whichever process runs it. So 1, 2 and 4 workers (and the Ray engine, tests/test_prepare_ray.py)
give the same keypoints, bit for bit. The real-video tests use a two-person Charades cut, where a tracker restart
can even switch to the other person: before issue 20, 1 and 2 workers disagreed there on 45 of 140 frames, by up
to 163 px.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from posevid.pose._segment_worker import pack, unpack
from posevid.pose.extract import extract_keypoints, extract_keypoints_from_frames
from posevid.video import iter_frames

# (posevid.pose.segments is imported in the tests that use it, so that the worker-count tests above them also run,
# and fail, on the code before issue 20)


@pytest.fixture(scope="module")
def by_workers(charades_two_people):
    """The cut's keypoints with 1, 2 and 4 workers (two segments: 4 workers run 2 processes)."""
    return {n: extract_keypoints(charades_two_people, workers=n, progress=False) for n in (1, 2, 4)}


def test_keypoints_are_the_same_for_1_2_and_4_workers(by_workers, charades_two_people, capsys):
    one = by_workers[1]
    assert "pose worker failed" not in capsys.readouterr().err  # the children did their segments
    for n in (2, 4):
        np.testing.assert_array_equal(by_workers[n].keypoints, one.keypoints)  # bit for bit
        np.testing.assert_array_equal(by_workers[n].frame_indices, one.frame_indices)
        assert by_workers[n].meta == one.meta  # no worker count in the keypoints file: it changes nothing there
    from posevid.pose.segments import plan_segments

    assert one.meta["segments"] == [0, plan_segments(140)[1][1]] and len(one) == 140
    # negative control: the segment boundary is real (an unbroken pass over the same frames gives other keypoints)
    unbroken = extract_keypoints_from_frames(iter_frames(charades_two_people), 204, 360, fps=16.0)
    assert not np.array_equal(unbroken.keypoints, one.keypoints)


def test_segments_match_fresh_trackers_run_alone(charades_two_people):
    """Each segment is exactly a fresh tracker run from its warm-up start: the first equals an unbroken pass over its
    frames, the second a new pass started WARMUP_FRAMES before it (raw detections: no smoothing, no gap filling)."""
    from posevid.pose.segments import WARMUP_FRAMES, plan_segments

    raw = {"smoothing": False, "fill": "none"}
    seq = extract_keypoints(charades_two_people, workers=1, max_frames=120, progress=False, **raw)  # 120: the shortest split
    frames = list(iter_frames(charades_two_people, max_frames=120))
    (_, _, end), (warm, start, _) = plan_segments(len(frames))
    assert start - warm == WARMUP_FRAMES
    first = extract_keypoints_from_frames(frames[:end], 204, 360, fps=16.0, **raw)
    second = extract_keypoints_from_frames(frames[warm:], 204, 360, fps=16.0, **raw)
    np.testing.assert_array_equal(seq.keypoints[:end], first.keypoints)
    np.testing.assert_array_equal(seq.keypoints[start:], second.keypoints[WARMUP_FRAMES:])


def test_broken_worker_is_replaced_in_process(by_workers, charades_two_people, monkeypatch, capsys):
    monkeypatch.setattr("sys.executable", "/bin/false")  # every child exits 1 at once
    seq = extract_keypoints(charades_two_people, workers=2, progress=False)
    assert "pose worker failed" in capsys.readouterr().err
    np.testing.assert_array_equal(seq.keypoints, by_workers[1].keypoints)  # its segment, estimated here: the same bits


def test_estimator_object_runs_the_same_segments(by_workers, charades_two_people):
    from posevid.pose.estimators import get_estimator

    est = get_estimator("mediapipe")
    try:
        seq = extract_keypoints(charades_two_people, estimator=est, workers=2, progress=False)
    finally:
        est.close()
    np.testing.assert_array_equal(seq.keypoints, by_workers[1].keypoints)


def test_short_clip_is_one_segment(charades_cut):
    seq = extract_keypoints(charades_cut, workers=2, max_frames=25, smoothing=False, progress=False)
    frames = list(iter_frames(charades_cut, max_frames=25))
    np.testing.assert_array_equal(seq.keypoints, extract_keypoints_from_frames(frames, 406, 720, smoothing=False).keypoints)
    assert seq.meta["segments"] == [0] and len(seq) == 25


def test_pose_json_records_the_processes_used(charades_two_people, tmp_path):
    from posevid.cli import main

    for n, used in ((1, 1), (4, 2)):
        out = tmp_path / f"w{n}"
        assert main(["pose", str(charades_two_people), "--out", str(out), "--quiet", "--workers", str(n), "--max-frames", "120"]) == 0
        assert json.loads((out / "pose.json").read_text())["settings"]["workers"] == used
    assert (tmp_path / "w1" / "keypoints.json").read_bytes() == (tmp_path / "w4" / "keypoints.json").read_bytes()


def test_plan_depends_on_the_frame_count_alone():
    from posevid.pose.segments import MAX_SEGMENT_FRAMES, MIN_SPLIT_FRAMES, WARMUP_FRAMES, head_start_frames, plan_segments, segment_count

    assert segment_count(MIN_SPLIT_FRAMES - 1) == 1 and plan_segments(10) == [(0, 0, None)]
    assert segment_count(MIN_SPLIT_FRAMES) == 2 and segment_count(2 * MAX_SEGMENT_FRAMES) == 2
    assert segment_count(2 * MAX_SEGMENT_FRAMES + 1) == 4 and segment_count(9 * MAX_SEGMENT_FRAMES) == 16
    # 299 frames (3IPI3): the first segment has the head start (the calling process starts at once), the same cut
    # whatever the worker count; warm-ups start WARMUP_FRAMES before each later segment
    assert head_start_frames(299, 2) == WARMUP_FRAMES + 30 + 7
    assert plan_segments(299) == [(0, 0, 176), (176 - WARMUP_FRAMES, 176, None)]
    for n in (1201, 2401, 5000):
        plan = plan_segments(n)
        sizes = [(end or n) - start for _, start, end in plan]
        assert sum(sizes) == n and len(plan) == segment_count(n) and max(sizes[1:]) - min(sizes[1:]) <= 1
        assert sizes[0] - sizes[1] in (head_start_frames(n, len(plan)), head_start_frames(n, len(plan)) + 1)
        assert all(plan[i][0] >= plan[i - 1][1] for i in range(1, len(plan)))  # a warm-up lies within the segment before


def test_assign_segments_shares_contiguous_blocks():
    from posevid.pose.segments import assign_segments, plan_segments, worker_count

    plan = plan_segments(5000)  # 16 segments
    for workers in (1, 2, 3, 4, 5, 16, 40):
        blocks = assign_segments(plan, workers)
        assert [seg for block in blocks for seg in block] == plan and len(blocks) == worker_count(workers, 16) == min(workers, 16)
        assert len(blocks[0]) == min(len(b) for b in blocks)  # the calling process's block carries the head start
    from posevid.errors import InputError

    with pytest.raises(InputError, match="workers must be >= 1"):
        assign_segments(plan, 0)


class _StatefulEstimator:
    """A stand-in tracker whose output depends on every frame since its last reset (as mediapipe's video mode)."""

    name, keypoint_format = "stateful", "blazepose33"

    def __init__(self) -> None:
        self.state = 0.0

    def reset(self) -> None:
        self.state = 0.0

    def __call__(self, frame):
        self.state = 0.9 * self.state + float(frame[0, 0, 0]) + 1.0
        return np.full((1, 33, 3), self.state, np.float32)


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 7])
def test_blocks_give_what_one_process_gives(workers):
    """Any split of a long plan into blocks, each run by its own fresh estimator from its first warm-up frame, stitches
    into exactly the one-process result, which is exactly a fresh tracker per segment."""
    from posevid.pose.segments import assign_segments, detect_segments, plan_segments

    frames = [np.full((2, 2, 3), i % 251, np.uint8) for i in range(2500)]
    plan = plan_segments(len(frames))  # 8 segments
    one = detect_segments(frames, _StatefulEstimator(), plan, 2, 2)
    blocks = [detect_segments(frames[b[0][0] :], _StatefulEstimator(), b, 2, 2) for b in assign_segments(plan, workers)]
    stitched = [d for block in blocks for d in block]
    assert len(one) == len(stitched) == 2500 and all(np.array_equal(a, b) for a, b in zip(one, stitched, strict=True))
    fresh = []
    for warm, start, end in plan:
        est = _StatefulEstimator()
        fresh += [est(f) for f in frames[warm : end or len(frames)]][start - warm :]
    assert all(np.array_equal(a, b) for a, b in zip(one, fresh, strict=True))


def test_worker_payload_roundtrip():
    dets = [np.zeros((0, 33, 3), np.float32), np.random.rand(1, 33, 3).astype(np.float32), np.random.rand(2, 33, 3).astype(np.float32)]
    out, name, fmt = unpack(pack(dets, "mediapipe", "blazepose33"))
    assert (name, fmt) == ("mediapipe", "blazepose33")
    assert [d.shape for d in out] == [d.shape for d in dets]
    for a, b in zip(out, dets, strict=True):
        np.testing.assert_array_equal(a, b)


def test_workers_must_be_positive(charades_cut):
    from posevid.errors import InputError

    with pytest.raises(InputError, match="workers"):
        extract_keypoints(charades_cut, workers=0, progress=False)


def test_single_thread_decoding_gives_the_same_frames(charades_cut):
    """Workers decode with one thread (less CPU when every core is busy); the frames must not change."""
    auto = list(iter_frames(charades_cut, start=5, stride=2, max_frames=12))
    one = list(iter_frames(charades_cut, start=5, stride=2, max_frames=12, threads=1))
    assert len(auto) == len(one) == 12
    for a, b in zip(auto, one, strict=True):
        np.testing.assert_array_equal(a, b)
