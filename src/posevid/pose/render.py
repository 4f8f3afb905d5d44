"""Draw skeletons: the official Follow-Your-Pose style, MMPose-1.x (team13) style, OpenPose/ControlNet style.

Why the ``fyp`` style is the default: the released FYP pose encoder was trained on skeletons drawn like the
official example videos: COCO-17, the 19 MMPose links in MMPose order (later links on top), person-left
limbs green (0,255,0), person-right limbs blue (0,128,255), torso and head orange (255,153,51) in RGB
(MMPose 0.x palette written into a BGR image), solid lines with round caps about 1.2 % of the frame's shorter
side wide (the examples are square; the FYP pipeline resizes the shorter side to 512, so this keeps ~6 px
there for any aspect), no joint dots, black background. ``mmpose`` reproduces the team13 renders (true-RGB MMPose 1.x
palette at alpha 0.8, 1-px lines, radius-3 dots), ``openpose`` the 18-joint ControlNet look.

Joints scoring below ``threshold`` (default 0.3, MMPose's ``kpt_thr``) are not drawn, nor their links.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from posevid.errors import InputError
from posevid.pose.formats import COCO17_LINK_SIDES, COCO17_LINKS, FORMATS, OPENPOSE18_LINKS, convert

STYLES = ("fyp", "mmpose", "openpose")

FYP_COLORS = {"left": (0, 255, 0), "right": (0, 128, 255), "center": (255, 153, 51)}
FYP_LINE_FRACTION = 0.012  # line width / frame height, measured on the official example (13 px at 1080)

MMPOSE_COLORS = {"left": (0, 255, 0), "right": (255, 128, 0), "center": (51, 153, 255)}  # true RGB (MMPose 1.x)
MMPOSE_ALPHA = 0.8
MMPOSE_KPT_SIDES = ("center",) * 5 + ("left", "right") * 6

OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 85), (255, 0, 170),
)  # fmt: skip

_SHIFT = 4  # sub-pixel precision for cv2 drawing
_FORMAT_BY_K = {len(names): fmt for fmt, names in FORMATS.items()}  # every layout has its own joint count


def fyp_line_width(short_side: int) -> int:
    """Official-style stroke width for a frame whose shorter side is ``short_side`` pixels."""
    return max(1, int(round(FYP_LINE_FRACTION * short_side)))


def _as_people(keypoints: np.ndarray, fmt: str | None, target: str) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise InputError(f"keypoints to draw must be (K, 3) or (P, K, 3), got {kp.shape}")
    fmt = fmt or _FORMAT_BY_K.get(kp.shape[1])
    if fmt is None:
        raise InputError(f"cannot tell the keypoint format of {kp.shape[1]} joints", hint="pass fmt=")
    return convert(kp, fmt, target)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * (1 << _SHIFT))), int(round(float(p[1]) * (1 << _SHIFT)))


def _visible(p: np.ndarray, threshold: float) -> bool:
    return bool(p[2] > threshold and np.isfinite(p[:2]).all())


def _thresholds(threshold: float | Sequence[float], kp: np.ndarray, fmt: str | None, target: str) -> np.ndarray:
    """Per-joint draw thresholds in the ``target`` layout, from one number or one value per joint of ``fmt``.

    A per-joint vector is converted like keypoints (a derived joint, e.g. the OpenPose neck, takes the lower one).
    17 values are COCO-17's for any layout that has the COCO joints (the calibrated limb rule on whole-body keypoints).
    """
    k_target = len(FORMATS[target])
    if np.ndim(threshold) == 0:
        return np.full(k_target, float(threshold), np.float32)
    thr = np.asarray(threshold, np.float32)
    k_in = np.asarray(kp).shape[-2]
    fmt = fmt or _FORMAT_BY_K.get(k_in)
    if thr.shape == (17,) and k_in != 17:
        k_in, fmt = 17, "coco17"
    if thr.shape != (k_in,):
        raise InputError(f"per-joint thresholds must have one value per joint ({k_in}), got shape {thr.shape}")
    as_kp = np.zeros((k_in, 3), np.float32)
    as_kp[:, 2] = thr
    return convert(as_kp, fmt, target)[:, 2]


def _draw_fyp(canvas: np.ndarray, people: np.ndarray, thr: np.ndarray, width: int | None) -> None:
    import cv2

    width = width or fyp_line_width(min(canvas.shape[:2]))
    for kp in people:
        for (a, b), side in zip(COCO17_LINKS, COCO17_LINK_SIDES, strict=True):
            if _visible(kp[a], thr[a]) and _visible(kp[b], thr[b]):
                cv2.line(canvas, _pt(kp[a]), _pt(kp[b]), FYP_COLORS[side], width, cv2.LINE_8, _SHIFT)


def _draw_mmpose(canvas: np.ndarray, people: np.ndarray, thr: np.ndarray, width: int | None) -> None:
    import cv2

    width = width or 1
    radius = 3
    for kp in people:
        for (a, b), side in zip(COCO17_LINKS, COCO17_LINK_SIDES, strict=True):
            if _visible(kp[a], thr[a]) and _visible(kp[b], thr[b]):
                color = tuple(c * MMPOSE_ALPHA for c in MMPOSE_COLORS[side])
                cv2.line(canvas, _pt(kp[a]), _pt(kp[b]), color, width, cv2.LINE_AA, _SHIFT)
        for j, side in enumerate(MMPOSE_KPT_SIDES):
            if _visible(kp[j], thr[j]):
                color = tuple(c * MMPOSE_ALPHA for c in MMPOSE_COLORS[side])
                cv2.circle(canvas, _pt(kp[j]), radius << _SHIFT, color, -1, cv2.LINE_AA, _SHIFT)


def _draw_openpose(canvas: np.ndarray, people: np.ndarray, thr: np.ndarray, width: int | None) -> None:
    import cv2

    stick = width or max(1, int(round(4 * min(canvas.shape[:2]) / 512)))
    radius = max(1, int(round(4 * min(canvas.shape[:2]) / 512)))
    for kp in people:
        for i, (a, b) in enumerate(OPENPOSE18_LINKS):
            if not (_visible(kp[a], thr[a]) and _visible(kp[b], thr[b])):
                continue
            (xa, ya), (xb, yb) = kp[a, :2], kp[b, :2]
            length = float(np.hypot(xa - xb, ya - yb))
            angle = float(np.degrees(np.arctan2(ya - yb, xa - xb)))
            center = (int(round((xa + xb) / 2)), int(round((ya + yb) / 2)))
            poly = cv2.ellipse2Poly(center, (int(round(length / 2)), stick), int(round(angle)), 0, 360, 1)
            cv2.fillConvexPoly(canvas, poly, tuple(c * 0.6 for c in OPENPOSE_COLORS[i]))
        for j in range(18):
            if _visible(kp[j], thr[j]):
                cv2.circle(canvas, _pt(kp[j]), radius << _SHIFT, OPENPOSE_COLORS[j], -1, cv2.LINE_8, _SHIFT)


_DRAW = {"fyp": ("coco17", _draw_fyp), "mmpose": ("coco17", _draw_mmpose), "openpose": ("openpose18", _draw_openpose)}


def render_frame(
    keypoints: np.ndarray,
    size: tuple[int, int],
    style: str = "fyp",
    *,
    fmt: str | None = None,
    threshold: float | Sequence[float] = 0.3,
    line_width: int | None = None,
    canvas: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``(K, 3)`` or ``(P, K, 3)`` keypoints (pixels of a ``size`` = (W, H) frame) -> uint8 RGB (H, W, 3).

    ``threshold`` is one score for all joints or one per joint of ``fmt`` (a limb rule, see :mod:`posevid.pose.mmpose_fit`).
    ``fmt`` is inferred from K (17/18/33) when not given. Draws on a copy of ``canvas`` when given, else on
    black. ``line_width`` overrides the style's width (fyp: 1.2 % of the shorter side; mmpose: 1; openpose: ellipse half-width).
    """
    if style not in _DRAW:
        raise InputError(f"unknown skeleton style '{style}'", hint=f"use one of {', '.join(STYLES)}")
    target, draw = _DRAW[style]
    w, h = int(size[0]), int(size[1])
    if canvas is None:
        out = np.zeros((h, w, 3), np.uint8)
    else:
        out = np.array(canvas, dtype=np.uint8, copy=True)
        if out.shape[:2] != (h, w):
            raise InputError(f"canvas is {out.shape[1]}x{out.shape[0]} but size is {w}x{h}")
    draw(out, _as_people(keypoints, fmt, target), _thresholds(threshold, keypoints, fmt, target), line_width)
    return out


def render_sequence(seq, style: str = "fyp", size: tuple[int, int] | None = None, **kwargs) -> Iterator[np.ndarray]:
    """Yield one rendered frame per row of a :class:`~posevid.pose.KeypointSequence` (all persons).

    With ``size`` different from the sequence's frame size, coordinates are scaled per axis.
    """
    w, h = size or (seq.width, seq.height)
    scale = np.array([w / seq.width, h / seq.height, 1.0], np.float32)
    for kp in seq.keypoints:
        yield render_frame(kp * scale, (w, h), style, fmt=seq.format, **kwargs)


def overlay(frame: np.ndarray, skeleton_frame: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Paste the lit pixels of a skeleton render over a video frame (opaque by default)."""
    frame = np.asarray(frame, dtype=np.uint8)
    skel = np.asarray(skeleton_frame, dtype=np.uint8)
    if frame.shape != skel.shape:
        raise InputError(f"overlay: frame {frame.shape} and skeleton {skel.shape} differ in size")
    mask = skel.max(axis=-1) > 0
    out = frame.copy()
    if alpha >= 1.0:
        out[mask] = skel[mask]
    else:
        out[mask] = (alpha * skel[mask] + (1 - alpha) * frame[mask]).round().astype(np.uint8)
    return out
