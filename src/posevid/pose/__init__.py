"""Pose from any video, offline: estimators, keypoint formats, clean-up, rendering, retargeting.

Typical use::

    from posevid.pose import extract_keypoints, render_sequence, skeleton_video_for
    seq = extract_keypoints("dance.mp4")          # KeypointSequence (mediapipe, smoothed)
    seq.to_format("coco17").save("dance.json")
    frames = render_sequence(seq, style="fyp")     # iterator of uint8 RGB frames
    skeleton = skeleton_video_for("dance.mp4")     # cached skeleton mp4 for `posevid generate --pose`
    whole = extract_wholebody("dance.mp4")         # + feet, face, hands (MediaPipe Holistic)
    kp2ds = wholebody_keypoints(whole)             # (T, 133, 3) COCO-WholeBody pixels, what Wan-Animate reads
"""

from posevid.pose.cleanup import OneEuroFilter, fill_missing, select_persons, smooth, smooth_zero_phase
from posevid.pose.estimators import PoseEstimator, available_estimators, get_estimator, register_estimator
from posevid.pose.extract import extract_keypoints, extract_keypoints_from_frames, fit_sequence
from posevid.pose.formats import FORMATS, LINKS, convert
from posevid.pose.geometry import FitTransform
from posevid.pose.mmpose_fit import correct_sequence
from posevid.pose.outputs import write_pose_videos
from posevid.pose.render import STYLES, overlay, render_frame, render_sequence
from posevid.pose.retarget import reference_pose, retarget
from posevid.pose.sequence import KeypointSequence
from posevid.pose.skeleton import is_skeleton_video, skeleton_style_of, skeleton_video_for
from posevid.pose.wholebody import extract_wholebody, part_presence, to_wholebody, wholebody_keypoints

__all__ = [
    "FORMATS", "LINKS", "STYLES", "FitTransform", "KeypointSequence", "OneEuroFilter", "PoseEstimator",
    "available_estimators", "convert", "correct_sequence", "extract_keypoints", "extract_keypoints_from_frames", "extract_wholebody",
    "fill_missing", "fit_sequence", "get_estimator", "is_skeleton_video", "overlay", "part_presence", "reference_pose",
    "register_estimator", "render_frame", "render_sequence", "retarget", "select_persons", "skeleton_style_of", "skeleton_video_for",
    "smooth", "smooth_zero_phase", "to_wholebody", "wholebody_keypoints", "write_pose_videos",
]  # fmt: skip
