"""The app's back-end adapter on its own: pose-input detection, output conversion, progress callbacks."""

from __future__ import annotations

import numpy as np

from posevid.app import backend


def test_pose_input_auto_detection_tells_skeleton_videos_from_footage(examples_dir, fixtures_dir, tmp_path):
    skeleton = examples_dir / "dance_skeleton.mp4"
    from posevid.pose import is_skeleton_video  # the one test the back end relies on (through skeleton_video_for)

    assert is_skeleton_video(skeleton)
    assert not is_skeleton_video(fixtures_dir / "app" / "charades_3IPI3_cut.mp4")
    assert backend.skeleton_from_pose_input(skeleton, "auto", tmp_path) == skeleton  # used as it is, not re-extracted


def test_side_by_side_scales_the_skeleton_to_the_result_height():
    skel = np.zeros((256, 144, 3), np.uint8)
    result = np.full((64, 64, 3), 200, np.uint8)
    both = backend._side_by_side(skel, result)
    assert both.shape == (64, 36 + 64, 3) and (both[:, 36:] == 200).all()
