"""Keypoint layouts (COCO-17, OpenPose-18, BlazePose-33, COCO-WholeBody-133, Holistic-143), limb tables, converters.

Why these layouts: Follow-Your-Pose's pose encoder was trained on COCO-17 skeletons drawn MMPose-style;
ControlNet-era tools (and DreamPose-style retargeting) speak OpenPose-18; mediapipe, our offline default,
returns BlazePose-33. Wan2.2-Animate reads COCO-WholeBody-133 (body, feet, face, hands), which ViTPose/DWPose/RTMW
return natively; MediaPipe Holistic's body, face and hands are kept as ``holistic143`` (BlazePose-33 + the
whole-body face and hands) so that the BlazePose -> COCO joint correction can still be applied to its body.

Arrays are ``(..., K, 3)`` with (x, y, score); a score of 0 means "missing". Converters copy joints by name
(plus the OpenPose neck, the shoulders' midpoint), so ``coco17 -> openpose18 -> coco17`` is exact, and
``blazepose33 -> coco17`` or ``wholebody133 -> coco17`` is a pure selection. Joints a layout cannot provide
(e.g. BlazePose's heels from COCO, the small toes from BlazePose) get score 0.
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

# Hand points in MediaPipe's order, which is also COCO-WholeBody's (and OpenPose's) hand order.
HAND21 = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip
FACE68 = tuple(f"face_{i}" for i in range(68))  # iBUG-300W 68-point order (0-16 jaw from the person's right ear)
FEET6 = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
LEFT_HAND21 = tuple(f"left_hand_{n}" for n in HAND21)
RIGHT_HAND21 = tuple(f"right_hand_{n}" for n in HAND21)

# COCO-WholeBody-133: 0-16 body (COCO-17), 17-22 feet, 23-90 face (iBUG 68), 91-111 left hand, 112-132 right hand
# (the person's left and right). What ViTPose/DWPose/RTMW whole-body models return and Wan-Animate reads.
WHOLEBODY133 = COCO17 + FEET6 + FACE68 + LEFT_HAND21 + RIGHT_HAND21
# MediaPipe Holistic as posevid stores it: the 33 BlazePose landmarks (so the COCO joint correction still applies),
# then the face (68 points taken from the 468-point mesh) and both hands in COCO-WholeBody's orders.
HOLISTIC143 = BLAZEPOSE33 + FACE68 + LEFT_HAND21 + RIGHT_HAND21

FORMATS: dict[str, tuple[str, ...]] = {
    "coco17": COCO17, "openpose18": OPENPOSE18, "blazepose33": BLAZEPOSE33, "wholebody133": WHOLEBODY133,
    "holistic143": HOLISTIC143,
}  # fmt: skip
# index ranges of the parts of COCO-WholeBody-133
WHOLEBODY_PARTS: dict[str, range] = {
    "body": range(0, 17), "feet": range(17, 23), "face": range(23, 91), "left_hand": range(91, 112), "right_hand": range(112, 133),
}  # fmt: skip
# joints that are the same point under two names: COCO-WholeBody's big toe is BlazePose's foot index (the tip of the foot)
ALIASES: dict[str, str] = {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"}
ALIASES.update({v: k for k, v in ALIASES.items()})

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

# the 20 bones of a 21-point hand (wrist to each finger's base, then along the finger)
HAND21_LINKS: tuple[tuple[int, int], ...] = tuple((0 if k % 4 == 0 else k, k + 1) for k in range(20))
# iBUG-68 contours: jaw, brows, nose bridge and base, eyes and lips (closed loops)
FACE68_LINKS: tuple[tuple[int, int], ...] = tuple(
    (a, a + 1)
    for first, last in ((0, 16), (17, 21), (22, 26), (27, 30), (31, 35), (36, 41), (42, 47), (48, 59), (60, 67))
    for a in range(first, last)
) + ((41, 36), (47, 42), (59, 48), (67, 60))


def _shifted(links: tuple[tuple[int, int], ...], offset: int) -> tuple[tuple[int, int], ...]:
    return tuple((a + offset, b + offset) for a, b in links)


# COCO-WholeBody: the COCO-17 links, ankle to each foot point, the face contours and both hands
WHOLEBODY133_LINKS: tuple[tuple[int, int], ...] = (
    COCO17_LINKS + ((15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))
    + _shifted(FACE68_LINKS, 23) + _shifted(HAND21_LINKS, 91) + _shifted(HAND21_LINKS, 112)
)  # fmt: skip
HOLISTIC143_LINKS: tuple[tuple[int, int], ...] = (
    BLAZEPOSE33_LINKS + _shifted(FACE68_LINKS, 33) + _shifted(HAND21_LINKS, 101) + _shifted(HAND21_LINKS, 122)
)

LINKS: dict[str, tuple[tuple[int, int], ...]] = {
    "coco17": COCO17_LINKS, "openpose18": OPENPOSE18_LINKS, "blazepose33": BLAZEPOSE33_LINKS,
    "wholebody133": WHOLEBODY133_LINKS, "holistic143": HOLISTIC143_LINKS,
}  # fmt: skip

# index in the source layout for each COCO-17 joint (the same-named landmarks; mmpose_fit builds on it)
BLAZE33_TO_COCO17 = tuple(BLAZEPOSE33.index(name) for name in COCO17)


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


def _source_index(src: str, dst: str) -> list[tuple[int, int]]:
    """(destination index, source index) of every ``dst`` joint that ``src`` has, by name or by alias."""
    where = {name: i for i, name in enumerate(_names(src))}
    pairs = []
    for j, name in enumerate(_names(dst)):
        i = where.get(name, where.get(ALIASES.get(name, "")))
        if i is not None:
            pairs.append((j, i))
    return pairs


def convert(kp: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert ``(..., K, 3)`` keypoints between layouts.

    A joint is copied from the same-named joint of the source (or its alias: BlazePose's foot index is the
    whole-body big toe); the OpenPose neck is the midpoint of the shoulders, present only when both are (score =
    the lower one). Every other joint gets score 0, so ``coco17 -> openpose18 -> coco17`` is exact and
    ``blazepose33 -> coco17`` or ``wholebody133 -> coco17`` is a pure selection.
    """
    _names(src), _names(dst)
    kp = _check(kp, src)
    if src == dst:
        return kp.copy()
    out = np.zeros(kp.shape[:-2] + (num_keypoints(dst), 3), np.float32)
    pairs = _source_index(src, dst)
    if pairs:
        dst_idx, src_idx = zip(*pairs, strict=True)
        out[..., list(dst_idx), :] = kp[..., list(src_idx), :]
    if "neck" in _names(dst) and "neck" not in _names(src):
        ls, rs = (kp[..., _names(src).index(f"{side}_shoulder"), :] for side in ("left", "right"))
        both = (ls[..., 2] > 0) & (rs[..., 2] > 0)
        neck = _names(dst).index("neck")
        out[..., neck, :2] = np.where(both[..., None], (ls[..., :2] + rs[..., :2]) / 2, 0)
        out[..., neck, 2] = np.where(both, np.minimum(ls[..., 2], rs[..., 2]), 0)
    return out


def blazepose33_to_coco17(kp: np.ndarray) -> np.ndarray:
    """Select the 17 COCO joints from BlazePose-33 (exact: same points, same scores)."""
    return convert(kp, "blazepose33", "coco17")
