"""Wan's per-frame pose metas, from COCO-WholeBody-133 keypoints.

Wan2.2-Animate never uses the 133 points directly. ``load_pose_metas_from_kp2ds_seq`` divides x by the width
and y by the height (the score column is left alone) and splits each frame into:

* body, 20 points: OpenPose-18 order (nose, neck, right arm, left arm, right leg, left leg, eyes, ears) plus
  the two big toes, each the mean of a pair of COCO points. The neck is the mean of the shoulders; every other
  point is the mean of a COCO point with itself, except the toes (big toe with small toe). Scores are averaged
  the same way, so a neck with one shoulder missing scores half;
* face, 69 points: COCO points 22..90, i.e. the right heel followed by the 68 face points (Wan's face box
  skips the first one);
* left hand 91..111 and right hand 112..132, 21 points each.

A frame whose body points all have a negative coordinate reuses the previous frame's body, as Wan does (its
first frame has nothing to reuse and Wan stops with a NameError; posevid keeps that frame as it is).

``WanMetas`` holds these normalised arrays for a whole clip; ``WanPoses`` holds pixel coordinates, which is
what Wan draws (``AAPoseMeta``), made by multiplying the normalised points back by the size, as Wan does, so
that the drawn pixels are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posevid.errors import InputError

WHOLEBODY_POINTS = 133
# OpenPose-18 + big toes, each the mean of two COCO-WholeBody points (the same index twice = the point itself)
BODY_PAIRS_A = (0, 6, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 17, 20)
BODY_PAIRS_B = (0, 5, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 18, 21)
FACE = slice(22, 91)
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)
HEAD = (0, 14, 15, 16, 17)  # nose, eyes, ears in the 20-point body: the face box's last resort


@dataclass
class WanPoses:
    """Pixel keypoints of a clip in Wan's body/hands layout (``AAPoseMeta``): (T, K, 3) arrays of x, y, score.

    Coordinates may be NaN where Wan's retargeting drops a hand point; those points score 0 and are never drawn.
    """

    body: np.ndarray  # (T, 20, 3)
    left_hand: np.ndarray  # (T, 21, 3)
    right_hand: np.ndarray  # (T, 21, 3)
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.body)


@dataclass
class WanMetas:
    """Wan's pose metas for a clip: coordinates divided by the frame size, scores as given."""

    body: np.ndarray  # (T, 20, 3)
    left_hand: np.ndarray  # (T, 21, 3)
    right_hand: np.ndarray  # (T, 21, 3)
    face: np.ndarray  # (T, 69, 3)
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.body)

    def to_pixels(self) -> WanPoses:
        """``AAPoseMeta.from_humanapi_meta``: normalised points times (width, height)."""
        size = np.array([self.width, self.height], dtype=np.float64)

        def pixels(points: np.ndarray) -> np.ndarray:
            out = points.copy()
            out[..., :2] = points[..., :2] * size
            return out

        return WanPoses(pixels(self.body), pixels(self.left_hand), pixels(self.right_hand), self.width, self.height)


def check_wholebody(keypoints: np.ndarray, what: str) -> np.ndarray:
    """``keypoints`` as a float64 (T, 133, 3) array, or a one-line error naming ``what`` they belong to."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (WHOLEBODY_POINTS, 3):
        raise InputError(
            f"{what}: expected COCO-WholeBody keypoints of shape (T, 133, 3), got {tuple(np.shape(keypoints))}",
            hint="extract whole-body keypoints (body, feet, face and hands)",
        )
    return kp


def has_person(keypoints: np.ndarray) -> np.ndarray:
    """Per frame of (T, 133, 3) keypoints: was any body point (COCO 0..16) found (score above 0)?"""
    return (np.asarray(keypoints)[..., :17, 2] > 0).any(axis=-1)


def require_person(keypoints: np.ndarray, what: str) -> None:
    """A one-line error when nobody was found in any frame of ``what`` (Wan would divide by zero later)."""
    if not has_person(keypoints).any():
        raise InputError(f"no person found in {what}", hint="use an image or video where one person is visible")


def metas_from_keypoints(keypoints: np.ndarray, width: int, height: int) -> WanMetas:
    """Wan's ``load_pose_metas_from_kp2ds_seq``: (T, 133, 3) pixel keypoints of ``width`` x ``height`` frames."""
    kp = check_wholebody(keypoints, "keypoints").copy()
    kp[..., 0] /= width
    kp[..., 1] /= height
    body = (kp[:, BODY_PAIRS_A] + kp[:, BODY_PAIRS_B]) / 2
    for t in range(1, len(body)):
        if body[t, :, :2].min(axis=1).max() < 0:  # every body point off the image on the negative side
            body[t] = body[t - 1]
    return WanMetas(
        body=body,
        left_hand=kp[:, LEFT_HAND].copy(),
        right_hand=kp[:, RIGHT_HAND].copy(),
        face=kp[:, FACE].copy(),
        width=int(width),
        height=int(height),
    )
