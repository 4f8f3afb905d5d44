"""Pose from any video, offline: estimators, keypoint formats, clean-up, rendering, retargeting.

Typical use::

    from posevid.pose import extract_keypoints, render_sequence, skeleton_video_for
    seq = extract_keypoints("dance.mp4")          # KeypointSequence (mediapipe, smoothed)
    seq.to_format("coco17").save("dance.json")
    frames = render_sequence(seq, style="fyp")     # iterator of uint8 RGB frames
    skeleton = skeleton_video_for("dance.mp4")     # cached skeleton mp4 for `posevid generate --pose`
    whole = extract_wholebody("dance.mp4")         # + feet, face, hands (MediaPipe Holistic)
    kp2ds = wholebody_keypoints(whole)             # (T, 133, 3) COCO-WholeBody pixels, what Wan-Animate reads

The names below are imported on first use (PEP 562), so that reading a default such as
``posevid.pose.options.DEFAULT_SMOOTH`` (the CLI does, to build its flags) does not import numpy and the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "cleanup": ("OneEuroFilter", "fill_missing", "select_persons", "smooth", "smooth_zero_phase"),
    "estimators": ("PoseEstimator", "available_estimators", "get_estimator", "register_estimator"),
    "extract": ("extract_keypoints", "extract_keypoints_from_frames", "fit_sequence"),
    "formats": ("FORMATS", "LINKS", "convert"),
    "geometry": ("FitTransform",),
    "mmpose_fit": ("correct_sequence",),
    "outputs": ("write_pose_videos",),
    "render": ("STYLES", "overlay", "render_frame", "render_sequence"),
    "retargeting": ("reference_pose", "retarget"),
    "sequence": ("KeypointSequence",),
    "skeleton": ("is_skeleton_video", "skeleton_style_of", "skeleton_video_for"),
    "wholebody": ("extract_wholebody", "part_presence", "to_wholebody", "wholebody_keypoints"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'posevid.pose' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"posevid.pose.{module}"), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
