"""Wan2.2-Animate's model-free preprocessing, at parity with the official code (commit 42bf4cf).

The official ``wan/modules/animate/preprocess/`` turns a driving video and a reference image into the folder
Wan's ``generate.py --src_root_path`` and ComfyUI workflows read. Given whole-body keypoints, every step here
reproduces its numbers (keypoints exactly, drawings pixel for pixel, resizes as cv2 makes them), and falls back
where it crashes. Typical use::

    from posevid.wan import frame_indices, preprocess, target_frame_count
    idx = frame_indices(n, video_fps, target_frame_count(n, video_fps, 30), 30)   # which frames to decode
    out = preprocess(frames, reference, keypoints, reference_keypoints, mode="animate", retarget=True)
    out.pose_frames, out.face_frames, out.reference     # src_pose.mp4, src_face.mp4, src_ref.png

The steps, each a function: ``frames`` (sizes, letterboxing, frame picking), ``metas`` (Wan's body / hands /
face split), ``faces`` (boxes and 512x512 crops), ``draw`` (the pose video), ``retarget`` (limb rescaling to the
reference body), ``masks`` (replace mode's person mask, dilation, grid fill, background).
"""

from posevid.wan.draw import draw_pose, draw_pose_video, stick_width
from posevid.wan.faces import FaceBoxes, face_box, face_boxes, face_crops
from posevid.wan.frames import (
    area_size,
    frame_indices,
    letterbox_keypoints,
    padding_resize,
    resize_by_area,
    target_frame_count,
)
from posevid.wan.masks import PersonMasks, backgrounds, dilate_mask, grid_fill, mask_video_frames, person_masks, replace_masks
from posevid.wan.metas import WanMetas, WanPoses, metas_from_keypoints
from posevid.wan.preprocess import DEFAULT_AREA, MODES, WanInputs, WanReport, preprocess
from posevid.wan.preview import preview_frame, preview_frames
from posevid.wan.retarget import retarget_poses

__all__ = [
    "DEFAULT_AREA", "MODES", "FaceBoxes", "PersonMasks", "WanInputs", "WanMetas", "WanPoses", "WanReport", "area_size",
    "backgrounds", "dilate_mask", "draw_pose", "draw_pose_video", "face_box", "face_boxes", "face_crops", "frame_indices",
    "grid_fill", "letterbox_keypoints", "mask_video_frames", "metas_from_keypoints", "padding_resize", "person_masks",
    "preprocess", "preview_frame", "preview_frames", "replace_masks", "resize_by_area", "retarget_poses", "stick_width",
    "target_frame_count",
]  # fmt: skip
