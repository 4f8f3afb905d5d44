"""The app's back-end adapter on its own: pose-input detection, output conversion, progress callbacks."""

from __future__ import annotations

import numpy as np
import pytest

from posevid.app import backend


def test_pose_input_auto_detection_tells_skeleton_videos_from_footage(examples_dir, fixtures_dir, tmp_path):
    skeleton = examples_dir / "dance_skeleton.mp4"
    assert backend._looks_like_skeleton(skeleton)
    assert not backend._looks_like_skeleton(fixtures_dir / "app" / "charades_3IPI3_cut.mp4")
    assert backend.skeleton_from_pose_input(skeleton, "auto", tmp_path) == skeleton  # used as it is, not re-extracted


@pytest.mark.parametrize(
    "result, shape",
    [
        (np.zeros((1, 4, 8, 6, 3), np.uint8), (4, 8, 6, 3)),  # FYP uint8 (b, f, H, W, 3)
        (np.ones((4, 3, 8, 6), np.float32), (4, 8, 6, 3)),  # (f, 3, H, W) floats in [0, 1]
        (np.ones((3, 4, 8, 6), np.float32), (4, 8, 6, 3)),  # (3, f, H, W)
    ],
)
def test_pipeline_outputs_become_uint8_frames(result, shape):
    class Out:
        videos = result

    video = backend._as_video_array(Out())
    assert video.shape == shape and video.dtype == np.uint8
    if result.dtype != np.uint8:
        assert video.max() == 255


def test_step_callback_reports_both_callback_styles_and_keeps_latents():
    seen = []
    cb = backend._step_callback(lambda step, total, desc: seen.append((step, total)), 10, "denoising")
    assert cb(0, 999, "latents") is None  # posevid style fn(step, t, latents)
    kwargs = {"latents": 1}
    assert cb(object(), 4, 999, kwargs) is kwargs  # diffusers style fn(pipe, step, t, kwargs)
    assert seen == [(1, 10), (5, 10)]


def test_side_by_side_scales_the_skeleton_to_the_result_height():
    skel = np.zeros((256, 144, 3), np.uint8)
    result = np.full((64, 64, 3), 200, np.uint8)
    both = backend._side_by_side(skel, result)
    assert both.shape == (64, 36 + 64, 3) and (both[:, 36:] == 200).all()
