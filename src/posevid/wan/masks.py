"""Replace mode's person mask, its dilation and grid fill, and the background video.

Wan's steps after segmentation (``get_mask_body_img`` then ``get_aug_mask`` in ``utils.py``): dilate the 0/1
mask with a 7x7 square ``iterations=3`` times; take the bounding box of the result (``x_min..x_max``,
``y_min..y_max`` inclusive); cut ``[x_min, x_max) x [y_min, y_max)`` into a ``w_len`` x ``h_len`` grid of
``int(size / len)``-pixel cells (the last ones clipped to the box) and fill every cell that holds any mask
pixel. With Wan's defaults ``w_len = h_len = 1`` that is the whole box: the mask becomes the dilated person's
bounding rectangle (its last row and column only where the dilated mask already was). The background is
``frame * (1 - mask)``; the mask video shows the mask as white. Where Wan crashes (an empty mask has no
bounding box; a box thinner than the grid gives a zero step), posevid keeps the mask as it is.

The person mask itself: Wan runs SAM2, which posevid cannot ship. posevid uses what the mediapipe wheel
bundles, its selfie segmentation, limited to the chosen person (see :func:`person_masks`). How the two differ:

* SAM2 is a promptable video segmenter: Wan prompts it with the person's body keypoints on key frames and it
  tracks that one person through the clip with a memory of earlier frames, giving sharp object masks that
  include hair, loose clothes and held objects, at the frame's resolution.
* MediaPipe's selfie segmentation is a small per-frame model (256x256 input, no memory between frames) trained
  to separate people from the background in selfie and video-call footage. It segments every person it sees,
  has soft edges, and tends to miss held objects and thin parts far from the body. posevid runs it on a crop
  of the chosen person's box (their confident whole-body keypoints, padded by 10 % of the box on each side),
  which keeps other people out unless they overlap that box and gives a small person more pixels; what lies
  outside the box is never in the mask. A frame where the person was not found gets an empty mask (the
  background is the whole frame there), and is counted.
* What reaches the model changes less than the masks do: Wan dilates the mask by 9 pixels and, with its
  default grid of one cell, fills the bounding rectangle. The replace-mode mask is thus a rectangle either
  way, and the two segmenters differ in where its edges fall (e.g. a raised held object or a wide skirt that
  SAM2 includes and the selfie model may not).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DILATE_KERNEL = 7
DILATE_ITERATIONS = 3
PERSON_BOX_PAD = 0.1  # of the keypoints' box width / height, on each side
PERSON_MIN_SCORE = 0.3  # keypoints that place the person's box
SEGMENTATION_THRESHOLD = 0.5


def dilate_mask(mask: np.ndarray, kernel: int = DILATE_KERNEL, iterations: int = DILATE_ITERATIONS) -> np.ndarray:
    """Wan's ``get_mask_body_img`` dilation of a 0/1 uint8 mask."""
    return cv2.dilate(np.ascontiguousarray(mask, dtype=np.uint8), np.ones((kernel, kernel), np.uint8), iterations=iterations)


def grid_fill(mask: np.ndarray, w_len: int = 1, h_len: int = 1) -> np.ndarray:
    """Wan's ``get_aug_mask``: fill each cell of a ``w_len`` x ``h_len`` grid over the mask's box that it touches."""
    out = np.array(mask, dtype=np.uint8)
    ys, xs = np.nonzero(out)
    if len(xs) == 0:
        return out
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    w_step, h_step = int((x1 - x0) / w_len), int((y1 - y0) / h_len)
    if w_step < 1 or h_step < 1:
        return out
    for left in range(x0, x1, w_step):
        right = min(left + w_step, x1)
        for top in range(y0, y1, h_step):
            bottom = min(top + h_step, y1)
            if out[top:bottom, left:right].any():
                out[top:bottom, left:right] = 1
    return out


def replace_masks(person: np.ndarray, w_len: int = 1, h_len: int = 1) -> np.ndarray:
    """(T, H, W) 0/1 uint8 person masks -> the masks Wan's replace mode generates in (dilated, grid-filled)."""
    return np.stack([grid_fill(dilate_mask(m), w_len, h_len) for m in person])


def backgrounds(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``frame * (1 - mask)``: the frames with the masked person blacked out (uint8)."""
    return (frames * (1 - masks[..., None])).astype(np.uint8)


def mask_video_frames(masks: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of ``src_mask.mp4``: the 0/1 masks as white on black."""
    return np.repeat((masks * 255).astype(np.uint8)[..., None], 3, axis=-1)


def person_box(keypoints: np.ndarray, height: int, width: int, pad: float = PERSON_BOX_PAD) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` around one frame's confident (133, 3) keypoints, padded and clipped; None if none."""
    points = keypoints[keypoints[:, 2] > PERSON_MIN_SCORE, :2]
    if len(points) == 0:
        return None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad_x, pad_y = pad * (x1 - x0), pad * (y1 - y0)
    box = (
        int(max(np.floor(x0 - pad_x), 0)),
        int(max(np.floor(y0 - pad_y), 0)),
        int(min(np.ceil(x1 + pad_x) + 1, width)),
        int(min(np.ceil(y1 + pad_y) + 1, height)),
    )
    return box if box[2] > box[0] and box[3] > box[1] else None


@dataclass
class PersonMasks:
    """Selfie-segmentation masks (T, H, W) 0/1 uint8, the box each was limited to, and frames left empty."""

    masks: np.ndarray
    boxes: list[tuple[int, int, int, int] | None]

    @property
    def empty(self) -> int:
        return sum(not m.any() for m in self.masks)


def person_masks(frames: np.ndarray, keypoints: np.ndarray, pad: float = PERSON_BOX_PAD) -> PersonMasks:
    """The chosen person's mask in every frame, offline: MediaPipe selfie segmentation inside their box.

    ``keypoints`` are (T, 133, 3) in pixels of ``frames``. Each frame's box (:func:`person_box`) is cropped,
    segmented (general model, threshold 0.5) and pasted back; outside the box the mask is 0. See the module
    docstring for how this differs from Wan's SAM2.
    """
    from posevid.pose.estimators.mediapipe_pose import import_mediapipe, quiet_native_stderr

    height, width = frames.shape[1:3]
    masks = np.zeros(frames.shape[:3], dtype=np.uint8)
    boxes = [person_box(kp, height, width, pad) for kp in keypoints]
    if not any(box is not None for box in boxes):
        return PersonMasks(masks, boxes)
    mp = import_mediapipe()
    with quiet_native_stderr():  # the graph's threads log while it starts
        segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        try:
            for t, box in enumerate(boxes):
                if box is None:
                    continue
                x0, y0, x1, y1 = box
                result = segmenter.process(np.ascontiguousarray(frames[t, y0:y1, x0:x1], dtype=np.uint8))
                masks[t, y0:y1, x0:x1] = result.segmentation_mask > SEGMENTATION_THRESHOLD
        finally:
            segmenter.close()
    return PersonMasks(masks, boxes)
