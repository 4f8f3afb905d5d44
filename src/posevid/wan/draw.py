"""The pose video in Wan2.2-Animate's style (``draw_aapose_by_meta_new``), pixel for pixel.

Why exact: Wan's pose encoder was trained on these drawings. What they are:

* a black canvas; points below ``threshold=0.5`` are skipped, with their limbs;
* 19 limbs of the 20-point body as filled ellipses (``cv2.ellipse2Poly`` with 1-degree steps, then
  ``fillConvexPoly``): centred between the two points (both truncated to int), half-length ``int(length / 2)``,
  half-width the stick width, angle ``int(degrees)``, in 60 % of the OpenPose colour (each channel truncated);
* then the 20 joints as filled circles of radius stick width in full colour;
* stick width ``max(int(min(H, W) / 200) - 1, 1)`` (Wan's ``stickwidth_type='v2'``);
* each hand: 20 bones as lines of the hand width ``max(stick width // 2, 1)`` in matplotlib's HSV rainbow
  (hue ``i / 20``, passed to cv2 as floats, which it rounds), then the 21 points as dots of that radius in
  (0, 0, 255); a bone or dot is drawn only when its integer coordinates are positive (Wan's ``> 0.01`` test on
  ints). (A later Wan commit passes a fixed ``hand_stick_width=4``; commit 42bf4cf, the golden's, does not.)

Colours are in the canvas's channel order as Wan writes them to an RGB canvas.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from posevid.wan.frames import padding_resize
from posevid.wan.metas import WanPoses

THRESHOLD = 0.5
LIMB_DIM = 0.6  # limbs are drawn in 60 % of the joint colour

# (from, to) in the 20-point body, 0-based: shoulders, arms, legs, neck-nose, eyes and ears, feet
BODY_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (13, 18), (10, 19),
)  # fmt: skip
# One colour per limb (the first 19) and per joint (all 20): the OpenPose table plus two foot colours.
BODY_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85), (200, 200, 0), (100, 100, 0),
)  # fmt: skip
HAND_BONES = tuple((0 if i % 4 == 0 else i, i + 1) for i in range(20))  # each finger: wrist -> 4 joints
HAND_POINT_COLOR = (0, 0, 255)


def _hsv_rainbow(hue: float) -> tuple[float, float, float]:
    """matplotlib's ``hsv_to_rgb([hue, 1, 1]) * 255``, with its float operations in its order (same bits)."""
    sector = int(hue * 6.0)
    f = hue * 6.0 - sector
    q, t = 1.0 * (1.0 - 1.0 * f), 1.0 * (1.0 - 1.0 * (1.0 - f))
    rgb = ((1.0, t, 0.0), (q, 1.0, 0.0), (0.0, 1.0, t), (0.0, q, 1.0), (t, 0.0, 1.0), (1.0, 0.0, q))[sector % 6]
    return tuple(c * 255 for c in rgb)  # type: ignore[return-value]


HAND_BONE_COLORS = tuple(_hsv_rainbow(i / float(len(HAND_BONES))) for i in range(len(HAND_BONES)))


def stick_width(height: int, width: int) -> int:
    """Body limb half-width and joint radius for a canvas of ``height`` x ``width`` (Wan's 'v2')."""
    return max(int(min(height, width) / 200) - 1, 1)


def hand_stick_width(height: int, width: int) -> int:
    """Hand line width and dot radius (Wan's 'v2'): half the body's, at least 1."""
    return max(stick_width(height, width) // 2, 1)


def draw_body(canvas: np.ndarray, body: np.ndarray, threshold: float = THRESHOLD) -> None:
    """Draw one (20, 3) pixel body onto ``canvas`` in place: limbs first, then joints."""
    radius = stick_width(*canvas.shape[:2])
    for (a, b), color in zip(BODY_LIMBS, BODY_COLORS[: len(BODY_LIMBS)], strict=True):
        (xa, ya, pa), (xb, yb, pb) = body[a], body[b]
        if pa < threshold or pb < threshold:
            continue
        length = ((ya - yb) ** 2 + (xa - xb) ** 2) ** 0.5
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        centre = (int(np.mean([xa, xb])), int(np.mean([ya, yb])))
        polygon = cv2.ellipse2Poly(centre, (int(length / 2), radius), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(float(c) * LIMB_DIM) for c in color])
    for (x, y, p), color in zip(body, BODY_COLORS, strict=True):
        if p >= threshold:
            cv2.circle(canvas, (int(x), int(y)), radius, color, thickness=-1)


def draw_hand(canvas: np.ndarray, hand: np.ndarray, threshold: float = THRESHOLD) -> None:
    """Draw one (21, 3) pixel hand onto ``canvas`` in place (Wan's ``draw_handpose_new``)."""
    width = hand_stick_width(*canvas.shape[:2])
    for (a, b), color in zip(HAND_BONES, HAND_BONE_COLORS, strict=True):
        if not (hand[a, 2] >= threshold and hand[b, 2] >= threshold):  # also skips NaN scores
            continue
        pa, pb = (int(hand[a, 0]), int(hand[a, 1])), (int(hand[b, 0]), int(hand[b, 1]))
        if min(*pa, *pb) > 0:
            cv2.line(canvas, pa, pb, color, thickness=width)
    for x, y, p in hand:
        if p >= threshold and int(x) > 0 and int(y) > 0:
            cv2.circle(canvas, (int(x), int(y)), width, HAND_POINT_COLOR, thickness=-1)


def draw_pose(poses: WanPoses, index: int) -> np.ndarray:
    """Frame ``index`` of ``poses`` drawn on a black uint8 canvas of the poses' size (Wan's ``zeros_like``)."""
    canvas = np.zeros((poses.height, poses.width, 3), dtype=np.uint8)
    draw_body(canvas, poses.body[index])
    draw_hand(canvas, poses.left_hand[index])
    draw_hand(canvas, poses.right_hand[index])
    return canvas


def draw_pose_video(poses: WanPoses, fit_hw: tuple[int, int] | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 pose frames at the poses' size, letterboxed into ``fit_hw`` when given.

    Animate mode without retargeting draws at the frame size and letterboxes into the reference's size;
    retargeted poses are drawn at the reference size as they are; replace mode draws at the frame size.
    """
    frames = [draw_pose(poses, t) for t in range(len(poses))]
    if fit_hw is not None:
        frames = [padding_resize(frame, *fit_hw) for frame in frames]
    return np.stack(frames)
