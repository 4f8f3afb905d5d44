"""Keypoint layouts (COCO-17, OpenPose-18, BlazePose-33), limb tables and exact converters.

Why three layouts: Follow-Your-Pose's pose encoder was trained on COCO-17 skeletons drawn MMPose-style;
ControlNet-era tools (and DreamPose-style retargeting) speak OpenPose-18; mediapipe, our offline default,
returns BlazePose-33. Everything is converted through COCO-17.

Arrays are ``(..., K, 3)`` with (x, y, score); a score of 0 means "missing". Converters only copy or
average existing joints, so ``coco17 -> openpose18 -> coco17`` is exact, and ``blazepose33 -> coco17`` is a
pure selection. Joints a layout cannot provide (e.g. BlazePose's heels from COCO) get score 0.
"""

from __future__ import annotations

import numpy as np

from posevid.errors import InputError

COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

OPENPOSE18 = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip

BLAZEPOSE33 = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky",
    "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip

FORMATS: dict[str, tuple[str, ...]] = {"coco17": COCO17, "openpose18": OPENPOSE18, "blazepose33": BLAZEPOSE33}

# COCO-17 links in MMPose order (the order matters: later links are drawn on top).
COCO17_LINKS: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
    (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
# Which side each COCO link belongs to: "left" / "right" of the person, or "center" (torso and head).
COCO17_LINK_SIDES: tuple[str, ...] = tuple(
    "left" if i in (0, 1, 8, 10) else "right" if i in (2, 3, 9, 11) else "center" for i in range(len(COCO17_LINKS))
)

# OpenPose-18 limbs (0-based), the 17 used by OpenPose/ControlNet renderers, in their drawing order.
OPENPOSE18_LINKS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip

# BlazePose-33 connections (mediapipe POSE_CONNECTIONS, body part only plus face outline).
BLAZEPOSE33_LINKS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
    (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31),
    (30, 32), (27, 31), (28, 32),
)  # fmt: skip

LINKS: dict[str, tuple[tuple[int, int], ...]] = {"coco17": COCO17_LINKS, "openpose18": OPENPOSE18_LINKS, "blazepose33": BLAZEPOSE33_LINKS}

# index in the source layout for each COCO-17 joint
BLAZE33_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
# index in COCO-17 for each OpenPose-18 joint; -1 = neck (mid-shoulders)
COCO17_TO_OPENPOSE18 = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)


def num_keypoints(fmt: str) -> int:
    return len(_names(fmt))


def _names(fmt: str) -> tuple[str, ...]:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise InputError(f"unknown keypoint format '{fmt}'", hint=f"use one of {', '.join(FORMATS)}") from None


def _check(kp: np.ndarray, fmt: str) -> np.ndarray:
    kp = np.asarray(kp, dtype=np.float32)
    if kp.ndim < 2 or kp.shape[-1] != 3 or kp.shape[-2] != num_keypoints(fmt):
        raise InputError(f"keypoints of shape {kp.shape} do not match format {fmt} (..., {num_keypoints(fmt)}, 3)")
    return kp


def blazepose33_to_coco17(kp: np.ndarray) -> np.ndarray:
    """Select the 17 COCO joints from BlazePose-33 (exact: same points, same scores)."""
    kp = _check(kp, "blazepose33")
    return kp[..., BLAZE33_TO_COCO17, :].copy()


def coco17_to_blazepose33(kp: np.ndarray) -> np.ndarray:
    """Place COCO joints in the BlazePose layout; the 16 joints COCO lacks get score 0."""
    kp = _check(kp, "coco17")
    out = np.zeros(kp.shape[:-2] + (33, 3), np.float32)
    out[..., BLAZE33_TO_COCO17, :] = kp
    return out


def coco17_to_openpose18(kp: np.ndarray) -> np.ndarray:
    """COCO-17 -> OpenPose-18; neck = midpoint of the shoulders, present only when both shoulders are."""
    kp = _check(kp, "coco17")
    out = np.zeros(kp.shape[:-2] + (18, 3), np.float32)
    for j, src in enumerate(COCO17_TO_OPENPOSE18):
        if src >= 0:
            out[..., j, :] = kp[..., src, :]
    ls, rs = kp[..., 5, :], kp[..., 6, :]
    both = (ls[..., 2] > 0) & (rs[..., 2] > 0)
    out[..., 1, :2] = np.where(both[..., None], (ls[..., :2] + rs[..., :2]) / 2, 0)
    out[..., 1, 2] = np.where(both, np.minimum(ls[..., 2], rs[..., 2]), 0)
    return out


def openpose18_to_coco17(kp: np.ndarray) -> np.ndarray:
    """OpenPose-18 -> COCO-17 (the neck is dropped)."""
    kp = _check(kp, "openpose18")
    out = np.zeros(kp.shape[:-2] + (17, 3), np.float32)
    for j, src in enumerate(COCO17_TO_OPENPOSE18):
        if src >= 0:
            out[..., src, :] = kp[..., j, :]
    return out


def convert(kp: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert ``(..., K, 3)`` keypoints between layouts (through COCO-17 when no direct rule exists)."""
    _names(src), _names(dst)
    kp = _check(kp, src)
    if src == dst:
        return kp.copy()
    coco = {"coco17": lambda a: a.copy(), "blazepose33": blazepose33_to_coco17, "openpose18": openpose18_to_coco17}[src](kp)
    return {"coco17": lambda a: a, "blazepose33": coco17_to_blazepose33, "openpose18": coco17_to_openpose18}[dst](coco)
