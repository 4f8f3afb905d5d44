"""Multi-process pose extraction (``workers``): same track as one pass on a real Charades cut, graceful fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posevid.pose._segment_worker import pack, unpack
from posevid.pose.extract import WARMUP_FRAMES, default_workers, extract_keypoints, head_start_frames, plan_segments

CLIP = Path(__file__).parent / "fixtures" / "pose" / "charades_3IPI3_cut.mp4"  # real Charades, 406x720, 60 frames
BOUNDARY = plan_segments(60, 2, head_start=head_start_frames(60, 2))[1][1]  # first frame of the child's segment


@pytest.fixture(scope="module")
def single():
    return extract_keypoints(CLIP, workers=1, progress=False)


def test_two_workers_match_one_pass(single, capsys):
    seq = extract_keypoints(CLIP, workers=2, progress=False)
    assert "pose worker failed" not in capsys.readouterr().err  # the child did its segment (no in-process fallback)
    assert seq.meta["workers"] == 2 and single.meta["workers"] == 1
    assert len(seq) == len(single) == 60
    np.testing.assert_array_equal(seq.frame_indices, single.frame_indices)
    assert abs(seq.meta["detected_frames"] - single.meta["detected_frames"]) <= 1
    assert 30 < BOUNDARY <= 40  # the calling process's segment got a head start, the child kept >= 20 frames
    # per frame: median distance of the joints both runs see; the second segment starts at BOUNDARY after a warm-up
    both = (seq.keypoints[..., 2] > 0.3) & (single.keypoints[..., 2] > 0.3)
    dist = np.linalg.norm(seq.keypoints[..., :2] - single.keypoints[..., :2], axis=-1)
    med = np.array([np.median(dist[t][both[t]]) if both[t].any() else np.inf for t in range(len(seq))])
    assert np.all(med[:BOUNDARY] == 0)  # the first segment is the very same computation as the single pass
    outside = np.r_[0 : BOUNDARY - 2, BOUNDARY + 3 : 60]  # a few frames either side of the boundary may differ while tracking settles
    assert np.mean(med[outside] <= 4.0) >= 0.95, med.round(1)
    assert np.median(med) < 2.0


def test_short_clip_falls_back_to_one_pass(single):
    seq = extract_keypoints(CLIP, workers=2, max_frames=25, progress=False)
    assert seq.meta["workers"] == 1 and len(seq) == 25
    # the one pass over the first 25 frames: everyone detected and the One-Euro filter is causal, so equal
    np.testing.assert_allclose(seq.keypoints, single.keypoints[:25], atol=1e-4)
    assert default_workers(60) == 1  # automatic choice: short videos stay single-process


def test_broken_worker_is_replaced_in_process(single, monkeypatch, capsys):
    monkeypatch.setattr("sys.executable", "/bin/false")  # every child exits 1 at once
    seq = extract_keypoints(CLIP, workers=2, progress=False)
    assert "pose worker failed" in capsys.readouterr().err
    assert len(seq) == 60 and seq.meta["workers"] == 2
    np.testing.assert_array_equal(seq.keypoints[:BOUNDARY], single.keypoints[:BOUNDARY])


def test_plan_segments():
    assert plan_segments(10, 4) == [(0, 0, None)]
    assert plan_segments(100, 2) == [(0, 0, 50), (50 - WARMUP_FRAMES, 50, None)]
    plan = plan_segments(301, 3, warmup=15)
    assert [p[1] for p in plan] == [0, 100, 201] and plan[-1][2] is None and plan[1][0] == 85


def test_head_start_goes_to_the_calling_process():
    """The in-process segment is longer by the head start; the children split the rest evenly; short clips cap it."""
    assert plan_segments(299, 2, head_start=52) == [(0, 0, 176), (176 - WARMUP_FRAMES, 176, None)]
    plan = plan_segments(674, 3, head_start=56)
    sizes = [(p[2] or 674) - p[1] for p in plan]
    assert sizes[0] - sizes[1] == 56 and abs(sizes[1] - sizes[2]) <= 1 and sum(sizes) == 674
    assert plan_segments(60, 2, head_start=47)[1][1] == 40  # capped: the child keeps MIN_SEGMENT_FRAMES (20)
    assert plan_segments(60, 3, head_start=47) == plan_segments(60, 3)  # no room for a head start
    assert head_start_frames(299, 1) == 0 and head_start_frames(674, 2) > head_start_frames(299, 2) > WARMUP_FRAMES


def test_worker_payload_roundtrip():
    dets = [np.zeros((0, 33, 3), np.float32), np.random.rand(1, 33, 3).astype(np.float32), np.random.rand(2, 33, 3).astype(np.float32)]
    out, name, fmt = unpack(pack(dets, "mediapipe", "blazepose33"))
    assert (name, fmt) == ("mediapipe", "blazepose33")
    assert [d.shape for d in out] == [d.shape for d in dets]
    for a, b in zip(out, dets, strict=True):
        np.testing.assert_array_equal(a, b)


def test_workers_must_be_positive():
    from posevid.errors import InputError

    with pytest.raises(InputError, match="workers"):
        extract_keypoints(CLIP, workers=0, progress=False)


def test_single_thread_decoding_gives_the_same_frames():
    """Workers decode with one thread (less CPU when every core is busy); the frames must not change."""
    from posevid.video import iter_frames

    auto = list(iter_frames(CLIP, start=5, stride=2, max_frames=12))
    one = list(iter_frames(CLIP, start=5, stride=2, max_frames=12, threads=1))
    assert len(auto) == len(one) == 12
    for a, b in zip(auto, one, strict=True):
        np.testing.assert_array_equal(a, b)
