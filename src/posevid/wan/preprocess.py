"""Everything Wan2.2-Animate's input folder holds, from frames, a reference image and whole-body keypoints.

One call, :func:`preprocess`, does what Wan's ``process_pipepline.py`` does after its pose model, in its order,
and returns arrays; writing ``src_pose.mp4``, ``src_face.mp4``, ``src_ref.png`` (and ``src_bg.mp4``,
``src_mask.mp4``) is the caller's job. The two modes:

* ``animate``: the frames stay at their size; the reference is ``resize_by_area``'d to the resolution area and
  the pose video has the reference's size: drawn at the frame size and letterboxed into it, or, when
  retargeting, drawn there directly from poses rescaled to the reference body.
* ``replace``: the frames are ``resize_by_area``'d; the pose video is drawn at that size; the person mask is
  dilated and filled, and the background is the frame without the person.

In both, the face video is 512x512 crops of the frames, and ``src_ref.png`` is the reference image exactly as
given (Wan copies the file). Keypoints are given for the frames and the reference as passed in; where Wan
resizes an image, posevid moves the keypoints with its pixels instead of estimating them again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from posevid.errors import InputError
from posevid.utils.progress import Progress, no_progress
from posevid.wan.draw import draw_pose_video
from posevid.wan.faces import face_boxes, face_crops
from posevid.wan.frames import letterbox_keypoints, padding_resize, resize_by_area
from posevid.wan.masks import backgrounds, mask_video_frames, person_masks, replace_masks
from posevid.wan.metas import check_wholebody, metas_from_keypoints, require_person
from posevid.wan.retarget import retarget_poses

MODES = ("animate", "replace")
DEFAULT_AREA = (1280, 720)  # Wan's --resolution_area: width x height of the pixel budget


@dataclass
class WanReport:
    """What a task tells the user about a preprocessing run (and puts in its sidecar)."""

    mode: str
    retargeted: bool
    frames: int
    frame_size: tuple[int, int]  # (width, height) of the frames Wan works on
    pose_size: tuple[int, int]  # (width, height) of the pose video
    face_boxes_filled: int  # frames whose face box came from a neighbour or the head (Wan would crash)
    person_masks_empty: int | None  # replace mode: frames where no person mask was found

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WanInputs:
    """Wan's input folder as arrays (uint8 RGB unless said otherwise)."""

    pose_frames: np.ndarray  # (T, h, w, 3): src_pose.mp4
    face_frames: np.ndarray  # (T, 512, 512, 3): src_face.mp4
    reference: np.ndarray  # src_ref.png: the reference image as given
    reference_resized: np.ndarray  # the reference as Wan uses it (area-resized, or letterboxed in replace mode)
    frames: np.ndarray  # (T, H, W, 3): the driving frames Wan works on (area-resized in replace mode)
    face_boxes: np.ndarray  # (T, 4) int64 [x1, x2, y1, y2] in ``frames``
    masks: np.ndarray | None  # (T, H, W) 0/1, replace mode: where the model generates
    background_frames: np.ndarray | None  # (T, H, W, 3), replace mode: src_bg.mp4
    report: WanReport

    @property
    def mask_frames(self) -> np.ndarray | None:
        """src_mask.mp4's frames: the masks as white on black (replace mode)."""
        return None if self.masks is None else mask_video_frames(self.masks)


def _check_frames(frames: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
        raise InputError(f"{name}: expected (T, H, W, 3) uint8 RGB frames, got {arr.shape} {arr.dtype}")
    return arr


def preprocess(
    frames: np.ndarray,
    reference: np.ndarray,
    keypoints: np.ndarray,
    reference_keypoints: np.ndarray | None = None,
    *,
    mode: str = "animate",
    retarget: bool = False,
    area: tuple[int, int] = DEFAULT_AREA,
    masks: np.ndarray | None = None,
    progress: Progress = no_progress,
) -> WanInputs:
    """Wan2.2-Animate's model-free preprocessing of one clip.

    ``frames``: (T, H, W, 3) uint8 RGB driving frames (already resampled with :func:`frame_indices`).
    ``reference``: (h, w, 3) uint8 RGB image of the character. ``keypoints``: (T, 133, 3) COCO-WholeBody
    points in pixels of ``frames``; ``reference_keypoints``: (1, 133, 3) in pixels of ``reference``, needed
    only to retarget. ``area``: Wan's resolution area (width, height). ``masks``: replace mode's (T, H', W')
    0/1 person masks for the frames Wan works on; by default MediaPipe's selfie segmentation inside the
    person's box (:func:`posevid.wan.masks.person_masks`). ``progress(stage, done, total)`` is called after
    each stage. Bad input (no person, a reference without a person when retargeting, an unknown mode) is
    a one-line :class:`~posevid.errors.InputError`.
    """
    if mode not in MODES:
        raise InputError(f"unknown Wan-Animate mode {mode!r}", hint=f"choose one of {', '.join(MODES)}")
    if retarget and mode != "animate":
        raise InputError("retargeting works in animate mode only", hint="drop --retarget or use --mode animate")
    frames = _check_frames(frames, "driving frames")
    reference = _check_frames(np.asarray(reference)[None], "reference image")[0]
    keypoints = check_wholebody(keypoints, "driving keypoints")
    if len(keypoints) != len(frames):
        raise InputError(
            f"{len(keypoints)} keypoint frames for {len(frames)} driving frames", hint="extract keypoints from the same frames"
        )
    require_person(keypoints, "the driving video")
    if retarget:
        if reference_keypoints is None:
            raise InputError("retargeting needs the reference image's keypoints", hint="extract them from the reference image")
        reference_keypoints = check_wholebody(reference_keypoints, "reference keypoints")[:1]
        require_person(reference_keypoints, "the reference image")
    stages = 5 if mode == "replace" else 3
    step = progress

    if mode == "replace":
        work = np.stack([resize_by_area(frame, area[0] * area[1]) for frame in frames])
        keypoints = letterbox_keypoints(keypoints, frames.shape[1:3], work.shape[1:3])
        reference_resized = padding_resize(reference, *work.shape[1:3])
    else:
        work = frames
        reference_resized = resize_by_area(reference, area[0] * area[1])
    height, width = work.shape[1:3]
    metas = metas_from_keypoints(keypoints, width, height)
    step("frames", 1, stages)

    boxes = face_boxes(metas)
    faces = face_crops(work, boxes.boxes)
    step("faces", 2, stages)

    if retarget:
        ref_kp = letterbox_keypoints(reference_keypoints, reference.shape[:2], reference_resized.shape[:2])
        ref_metas = metas_from_keypoints(ref_kp, reference_resized.shape[1], reference_resized.shape[0])
        poses = draw_pose_video(retarget_poses(metas, ref_metas))
    elif mode == "animate":
        poses = draw_pose_video(metas.to_pixels(), fit_hw=reference_resized.shape[:2])
    else:
        poses = draw_pose_video(metas.to_pixels())
    step("poses", 3, stages)

    filled_masks = background = None
    empty = None
    if mode == "replace":
        if masks is None:
            masks = person_masks(work, keypoints).masks
        masks = np.asarray(masks, dtype=np.uint8)
        if masks.shape != work.shape[:3]:
            raise InputError(f"person masks of shape {masks.shape} for frames of shape {work.shape[:3]}")
        empty = int(sum(not m.any() for m in masks))
        step("masks", 4, stages)
        filled_masks = replace_masks(masks)
        background = backgrounds(work, filled_masks)
        step("backgrounds", 5, stages)

    summary = WanReport(
        mode=mode,
        retargeted=retarget,
        frames=len(work),
        frame_size=(width, height),
        pose_size=(poses.shape[2], poses.shape[1]),
        face_boxes_filled=boxes.filled,
        person_masks_empty=empty,
    )
    return WanInputs(poses, faces, reference, reference_resized, work, boxes.boxes, filled_masks, background, summary)
