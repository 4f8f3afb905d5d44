"""Wan2.2-Animate's retargeting without the image-edit model: ``get_retarget_pose(tpl0, refer, tpls, None, None)``.

Why it exists: the driving person's limbs have their own lengths; drawn as they are, a short reference person
gets long arms. Wan rescales every limb of every driving frame to the reference body's proportions and moves
the result to where the reference stands. The steps, on Wan's 20-point body metas (``posevid.wan.metas``):

1. **Scale.** ``s`` = driving height / reference height, heights measured from the nose to the mean of the
   ankles when nose and both ankles score above 0.5 in both first frames, else nose to mean hip, else
   ``sqrt(area ratio)`` of the two images. The reference's size is multiplied by ``s`` and truncated to int.
2. **Framing.** "full body" when ankles and hips score at least 0.4 and lie above the bottom edge (normalised
   y <= 1) in both; "three-quarter body" with the hips only; otherwise "half body".
3. **Bone ratios.** For each of the 19 limbs (the drawing's), reference length / driving first-frame length,
   lengths in pixels of each image (the reference at its scaled size). Symmetric bones take the larger ratio
   of the pair (shoulders, upper arms, forearms, hip-neck lines, thighs, shins, feet); the eye and ear bones
   take the mean of the pair.
4. **Each driving frame.** Walk the limbs from the neck outward: each child point is put at its parent's new
   position minus ``length * ratio`` along the frame's own limb direction (angle in whole floating degrees,
   as Wan goes through ``math.degrees`` and back). A foot is at most half its shin. Then subtract the global
   offset and divide by ``s``. The offset puts the driving first frame's rescaled skeleton on the reference:
   full body, the lower of the ankle-toe midpoints on the reference's ground line and the hips' midpoint on
   its hips' x; otherwise the neck on its neck. (Frame 0 alone is shifted once more by the difference between
   its walked hips, or neck, and the first-frame skeleton's, which is zero up to rounding.)
5. **Hands.** Each hand is scaled about its wrist by ``max(shoulder ratios) / s`` and moved so that its wrist
   lands on the body's new wrist; its points are truncated to int pixels. Points scoring below 0.4 are dropped:
   score 0 and NaN coordinates (Wan writes None there; they are never drawn). Wan names the hands crosswise
   and swaps them back by a distance test that looks at one hand only; posevid does the same, so its
   ``left_hand`` holds what Wan's ``kps_lhand`` holds.

Points are never missing in this path (a point that was not found is (0, 0) with score 0), so none of Wan's
None-branches run. Where Wan divides by zero (a driving limb of zero length; both points not found and at
(0, 0)), that limb takes the mean of the shoulder ratios (1 when those are unusable too), as Wan does for
limbs it cannot measure; where the reference height is zero, the area ratio is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from posevid.errors import InputError
from posevid.wan.draw import BODY_LIMBS
from posevid.wan.metas import WanMetas, WanPoses

FRAMING_THRESHOLD = 0.4  # Wan's retarget_pose threshold: framing and hand points
SCALE_THRESHOLD = 0.5  # points that measure the body height
FOOT_TO_SHIN = 0.5
NOSE, NECK, R_WRIST, L_WRIST, R_HIP, R_ANKLE, L_HIP, L_ANKLE, L_TOE, R_TOE = 0, 1, 4, 7, 8, 10, 11, 13, 18, 19
R_SHIN, L_SHIN, L_FOOT, R_FOOT = 8, 11, 17, 18  # limb indices in BODY_LIMBS
SYMMETRIC_LIMBS = ((0, 1), (2, 4), (3, 5), (6, 9), (7, 10), (8, 11), (17, 18))  # take the larger ratio
AVERAGED_LIMBS = ((13, 15), (14, 16))  # nose-eye and eye-ear: take the mean
FRAMINGS = ("half_body", "three_quarter_body", "full_body")


@dataclass
class _Skeleton:
    """One first frame: its 20 normalised body points and its size (the reference's after scaling)."""

    body: np.ndarray
    width: int
    height: int

    def point(self, i: int) -> tuple[float, float]:
        """Point ``i`` in pixels, as Wan's ``get_length`` computes it."""
        return float(self.body[i, 0] * float(self.width)), float(self.body[i, 1] * float(self.height))


def _limb_length(skeleton: _Skeleton, limb: tuple[int, int]) -> float:
    (xa, ya), (xb, yb) = skeleton.point(limb[0]), skeleton.point(limb[1])
    return ((xa - xb) ** 2 + (ya - yb) ** 2) ** 0.5


def _height_scale(src: _Skeleton, dst: _Skeleton) -> float:
    """Step 1: driving height / reference height (normalised y differences times each image's height)."""
    for low in ((R_ANKLE, L_ANKLE), (R_HIP, L_HIP)):
        points = (NOSE, *low)
        if all(src.body[i, 2] > SCALE_THRESHOLD and dst.body[i, 2] > SCALE_THRESHOLD for i in points):
            src_h = src.height * abs((src.body[low[0], 1] + src.body[low[1], 1]) / 2 - src.body[NOSE, 1])
            dst_h = dst.height * abs((dst.body[low[0], 1] + dst.body[low[1], 1]) / 2 - dst.body[NOSE, 1])
            if dst_h > 0:
                return float(1.0 * src_h / dst_h)
            break
    return float(np.sqrt(src.height * src.width) / np.sqrt(dst.height * dst.width))


def _framing(body: np.ndarray) -> int:
    """Step 2 for one skeleton: 2 full body, 1 three-quarter body, 0 half body."""

    def seen(*points: int) -> bool:
        return all(body[i, 1] <= 1 and body[i, 2] >= FRAMING_THRESHOLD for i in points)

    if seen(R_ANKLE, L_ANKLE, R_HIP, L_HIP):
        return 2
    return 1 if seen(R_HIP, L_HIP) else 0


def _bone_ratios(src: _Skeleton, dst: _Skeleton) -> list[float]:
    """Step 3: reference / driving length per limb, made symmetric."""
    ratios: list[float | None] = []
    for limb in BODY_LIMBS:
        src_length = _limb_length(src, limb)
        ratios.append(1.0 * _limb_length(dst, limb) / src_length if src_length > 0 else None)
    shoulders = (ratios[0], ratios[1])
    fallback = (shoulders[0] + shoulders[1]) / 2 if None not in shoulders else 1.0
    filled = [fallback if r is None else r for r in ratios]
    for a, b in SYMMETRIC_LIMBS:
        filled[a] = filled[b] = max(filled[a], filled[b])
    for a, b in AVERAGED_LIMBS:
        filled[a] = filled[b] = (filled[a] + filled[b]) / 2
    return filled


def _limb_geometry(points: list[list[float]], ratios: list[float]) -> tuple[list[float], list[float]]:
    """Scaled length and direction (degrees) of every limb of ``points`` (pixels), before any point moves."""
    lengths, angles = [], []
    for (a, b), ratio in zip(BODY_LIMBS, ratios, strict=True):
        dy, dx = points[a][1] - points[b][1], points[a][0] - points[b][0]
        lengths.append((dy**2 + dx**2) ** 0.5 * ratio)
        angles.append(math.degrees(math.atan2(dy, dx)))
    return lengths, angles


def _walk(points: list[list[float]], lengths: list[float], angles: list[float]) -> list[list[float]]:
    """Rebuild the skeleton from the neck: each child = new parent - length along the limb's direction."""
    out = list(points)
    for (a, b), length, angle in zip(BODY_LIMBS, lengths, angles, strict=True):
        out[b] = [out[a][0] - length * math.cos(math.radians(angle)), out[a][1] - length * math.sin(math.radians(angle)), *points[b][2:]]
    return out


def _scaled_hand(hand: np.ndarray, ratio: float) -> np.ndarray:
    """A normalised (21, 3) hand scaled by ``ratio`` about its wrist; points under the threshold -> (-1, -1, 0)."""
    out = np.empty_like(hand)
    origin_x, origin_y = hand[0, 0] * (ratio - 1), hand[0, 1] * (ratio - 1)
    for i, (x, y, p) in enumerate(hand):
        out[i] = (-1, -1, 0) if p < FRAMING_THRESHOLD else (x * ratio - origin_x, y * ratio - origin_y, p)
    return out


def _placed_hand(hand: np.ndarray, delta: np.ndarray, width: int, height: int) -> np.ndarray:
    """Wan's ``get_handpose_meta``: pixels moved by ``delta``, truncated to int; dropped points -> NaN, score 0."""
    out = np.full(hand.shape, np.nan)
    out[:, 2] = 0.0
    for i, (x, y, p) in enumerate(hand):
        if p != 0:
            out[i] = (int(x * width + delta[0]), int(y * height + delta[1]), p)
    return out


def retarget_poses(metas: WanMetas, reference: WanMetas) -> WanPoses:
    """Driving ``metas`` rescaled to the ``reference`` body (one frame), in the reference image's pixels.

    Wan's ``get_retarget_pose(tpl_meta0, refer_meta, tpl_metas, None, None)`` with ``tpl_meta0 = metas[:1]``;
    the steps are in the module docstring. A reference without a person is a one-line error.
    """
    if not (reference.body[0, :, 2] > 0).any():
        raise InputError("no person found in the reference image", hint="retargeting needs the reference's body")
    src_w, src_h = metas.width, metas.height
    src = _Skeleton(metas.body[0], src_w, src_h)
    scale = _height_scale(src, _Skeleton(reference.body[0], reference.width, reference.height))
    dst = _Skeleton(reference.body[0], int(reference.width * scale), int(reference.height * scale))
    framing = FRAMINGS[min(_framing(dst.body), _framing(src.body))]
    ratios = _bone_ratios(src, dst)

    first = [[x * src_w, y * src_h] for x, y in src.body[:, :2]]
    first = _walk(first, *_limb_geometry(first, ratios))
    if framing == "full_body":
        ground_y = max((dst.body[R_ANKLE, 1] + dst.body[R_TOE, 1]) / 2, (dst.body[L_ANKLE, 1] + dst.body[L_TOE, 1]) / 2)
        delta_y = max(first[R_ANKLE][1], first[L_ANKLE][1]) - ground_y * dst.height
        anchor_x = (first[R_HIP][0] + first[L_HIP][0]) / 2
        delta_x = anchor_x - (dst.body[R_HIP, 0] + dst.body[L_HIP, 0]) * dst.width / 2
    else:
        delta_y = first[NECK][1] - dst.body[NECK, 1] * dst.height
        anchor_x = first[NECK][0]
        delta_x = anchor_x - dst.body[NECK, 0] * dst.width

    out_w, out_h = reference.width, reference.height
    hand_ratio = max(ratios[0], ratios[1]) / scale
    n = len(metas)
    body, left, right = np.zeros((n, 20, 3)), np.zeros((n, 21, 3)), np.zeros((n, 21, 3))
    for t in range(n):
        points = [[x * src_w, y * src_h, p] for x, y, p in metas.body[t]]
        lengths, angles = _limb_geometry(points, ratios)
        lengths[R_FOOT] = min(lengths[R_FOOT], lengths[R_SHIN] * FOOT_TO_SHIN)
        lengths[L_FOOT] = min(lengths[L_FOOT], lengths[L_SHIN] * FOOT_TO_SHIN)
        walked = _walk(points, lengths, angles)
        shift_x = delta_x
        if t == 0 and framing == "full_body":
            shift_x += (walked[R_HIP][0] + walked[L_HIP][0]) / 2 - anchor_x
        elif t == 0 and framing == "half_body":
            shift_x += walked[NECK][0] - anchor_x
        placed = np.array([((x - shift_x) / scale, (y - delta_y) / scale, p) for x, y, p in walked])
        body[t] = placed
        body[t, :, 0] = placed[:, 0] / out_w * out_w  # Wan normalises by the reference size and multiplies back
        body[t, :, 1] = placed[:, 1] / out_h * out_h
        left[t], right[t] = _retarget_hands(metas, t, points, placed, hand_ratio)
    return WanPoses(body, left, right, out_w, out_h)


def _retarget_hands(
    metas: WanMetas, t: int, points: list[list[float]], new_body: np.ndarray, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Step 5 for frame ``t``: both hands scaled and moved onto the new wrists, named as Wan names them."""
    w, h = metas.width, metas.height
    # Wan turns the hands into pixels and back before scaling them; the round trip is kept for equal bits.
    by_right_wrist = _scaled_hand(_round_trip(metas.right_hand[t], w, h), ratio)
    by_left_wrist = _scaled_hand(_round_trip(metas.left_hand[t], w, h), ratio)
    deltas = []
    for hand, wrist in ((by_right_wrist, R_WRIST), (by_left_wrist, L_WRIST)):
        delta = np.array(new_body[wrist, :2] * 1.0) - np.array(points[wrist][:2])
        if hand[0, 0] != -1:
            delta += (points[wrist][0] - hand[0, 0] * w, points[wrist][1] - hand[0, 1] * h)
        deltas.append(delta)
    # Wan measures both body wrists against the same hand's wrist (the one it calls left)
    root_x, root_y = by_right_wrist[0, 0] * w, by_right_wrist[0, 1] * h
    to_right = ((points[R_WRIST][0] - root_x) ** 2 + (points[R_WRIST][1] - root_y) ** 2) ** 0.5
    to_left = ((points[L_WRIST][0] - root_x) ** 2 + (points[L_WRIST][1] - root_y) ** 2) ** 0.5
    if to_right > to_left:
        return _placed_hand(by_left_wrist, deltas[0], w, h), _placed_hand(by_right_wrist, deltas[1], w, h)
    return _placed_hand(by_right_wrist, deltas[0], w, h), _placed_hand(by_left_wrist, deltas[1], w, h)


def _round_trip(hand: np.ndarray, width: int, height: int) -> np.ndarray:
    out = hand.copy()
    out[:, 0] = hand[:, 0] * width / width
    out[:, 1] = hand[:, 1] * height / height
    return out
