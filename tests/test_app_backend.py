"""The app's back-end adapter on its own: pose-input detection, output conversion, progress callbacks."""

from __future__ import annotations

from posevid.app import backend


def test_pose_input_auto_detection_tells_skeleton_videos_from_footage(examples_dir, fixtures_dir, tmp_path):
    skeleton = examples_dir / "dance_skeleton.mp4"
    from posevid.pose import is_skeleton_video  # the one test the back end relies on (through skeleton_video_for)

    assert is_skeleton_video(skeleton)
    assert not is_skeleton_video(fixtures_dir / "app" / "charades_3IPI3_cut.mp4")
    assert backend.skeleton_from_pose_input(skeleton, "auto", tmp_path) == skeleton  # used as it is, not re-extracted
