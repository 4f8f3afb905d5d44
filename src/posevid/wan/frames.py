"""Frame sizes and frame picking as Wan2.2-Animate's preprocessing does them.

Why these exact formulas: the model was trained on inputs made this way, and ComfyUI workflows and Wan's own
``generate.py`` read folders made this way, so posevid reproduces the official code's numbers, quirks included:

* ``resize_by_area``: Wan searches for the largest size under the area whose sides divide by ``divisor``, but
  at commit 42bf4cf that search always raises inside (a helper is called with one argument too many) and the
  ``except`` branch runs instead: ``h = sqrt(area / aspect)``, ``w = area / h``, both floored to a multiple of
  ``divisor``. That fallback is what every Wan user gets, so it is the formula here. The image is then
  letterboxed (:func:`padding_resize`) into that size, with ``INTER_AREA`` when shrinking.
* ``padding_resize``: scale to fit, centre, pad black. Wan returns a float64 array holding integer values; on
  uint8 input the values are the same as here, where uint8 comes back (cv2 rounds when it resizes uint8).
  What posevid does not copy: Wan goes on working on those float64 arrays in replace mode (face crops resized
  in float64, pose drawn on a float64 canvas, also when retargeting in animate mode) and moviepy truncates them
  to uint8 when it writes the videos. posevid computes on uint8, as the golden does, so it rounds where Wan
  truncates: measured on the golden case, 37 % of the face-crop values of replace mode and 0.01 % of the
  retargeted pose values would be one level lower in Wan's files before video encoding (whose own error is
  several levels). Animate mode's face crops and non-retargeted pose videos are uint8 in Wan too.
* ``frame_indices``: ``round(i / fps * video_fps)`` with numpy's round-half-to-even, clipped to the video.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from posevid.errors import InputError


def area_size(height: int, width: int, area: int, divisor: int = 16) -> tuple[int, int]:
    """``(h, w)`` that Wan's ``resize_by_area`` gives an image of ``height`` x ``width`` (see module docstring)."""
    aspect = width / height
    new_h = math.sqrt(area / aspect)
    new_w = area / new_h
    return int((new_h // divisor) * divisor), int((new_w // divisor) * divisor)


def letterbox_geometry(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(resized_h, resized_w, top, left)`` of an ``src_hw`` image fitted into ``dst_hw`` by ``padding_resize``.

    The side that limits the fit is filled exactly; the other is ``int(...)`` of the scaled length, centred
    with ``int(pad / 2)`` pixels before it (Wan's rounding, so the same pixels are covered).
    """
    (src_h, src_w), (dst_h, dst_w) = src_hw, dst_hw
    if src_h / src_w > dst_h / dst_w:
        new_w = int(dst_h / src_h * src_w)
        return dst_h, new_w, 0, int((dst_w - new_w) / 2)
    new_h = int(dst_w / src_w * src_h)
    return new_h, dst_w, int((dst_h - new_h) / 2), 0


def padding_resize(image: np.ndarray, height: int, width: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Letterbox ``image`` (H, W) or (H, W, C) into ``height`` x ``width`` on black, keeping its aspect ratio."""
    new_h, new_w, top, left = letterbox_geometry(image.shape[:2], (height, width))
    if min(new_h, new_w) < 1:
        raise InputError(f"an image of {image.shape[1]}x{image.shape[0]} cannot be fitted into {width}x{height}")
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    out = np.zeros((height, width, *image.shape[2:]), dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = resized.reshape(new_h, new_w, *image.shape[2:])
    return out


def resize_by_area(image: np.ndarray, area: int, divisor: int = 16) -> np.ndarray:
    """Wan's ``resize_by_area``: about ``area`` pixels, sides divisible by ``divisor``, aspect kept by letterboxing."""
    h, w = image.shape[:2]
    new_h, new_w = area_size(h, w, area, divisor)
    if min(new_h, new_w) < 1:
        raise InputError(f"resolution area {area} is too small for an image of {w}x{h}", hint="give a larger area")
    interpolation = cv2.INTER_AREA if new_w * new_h < w * h else cv2.INTER_LINEAR
    return padding_resize(image, new_h, new_w, interpolation=interpolation)


def letterbox_keypoints(keypoints: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Map ``(..., K, 3)`` pixel keypoints of an ``src_hw`` image onto its :func:`padding_resize` into ``dst_hw``.

    Why: Wan estimates poses on the resized images; posevid estimates once on the decoded frames and moves
    the points the way the pixels moved (pixel centres stay centres). Scores are kept; points that were not
    found (score 0) stay at (0, 0). The identity (same size) returns the points unchanged, bit for bit.
    """
    kp = np.array(keypoints, dtype=np.float64)
    if tuple(src_hw) == tuple(dst_hw):
        return kp
    new_h, new_w, top, left = letterbox_geometry(src_hw, dst_hw)
    sx, sy = new_w / src_hw[1], new_h / src_hw[0]
    found = kp[..., 2] > 0
    kp[..., 0] = np.where(found, (kp[..., 0] + 0.5) * sx - 0.5 + left, 0.0)
    kp[..., 1] = np.where(found, (kp[..., 1] + 0.5) * sy - 0.5 + top, 0.0)
    return kp


def target_frame_count(frame_num: int, video_fps: float, fps: float | None = 30) -> int:
    """How many frames Wan makes of ``frame_num`` frames at ``video_fps`` when resampling to ``fps``.

    ``fps=None`` keeps the source rate (Wan's ``--fps -1``). A video shorter than one output frame is a user
    error, not an empty output.
    """
    fps = video_fps if fps is None else fps
    if video_fps <= 0 or fps <= 0:
        raise InputError(f"frame rates must be positive (video {video_fps}, output {fps})")
    count = int(frame_num / video_fps * fps)
    if count < 1:
        raise InputError(
            f"the driving video is shorter than one frame at {fps:g} fps ({frame_num} frames at {video_fps:g} fps)",
            hint="use a longer video or a higher --fps",
        )
    return count


def frame_indices(frame_num: int, video_fps: float, target_num: int, fps: float) -> np.ndarray:
    """Wan's ``get_frame_indices``: which source frames make ``target_num`` frames at ``fps`` (int64)."""
    times = np.arange(0, target_num) / fps
    return np.clip(np.round(times * video_fps).astype(np.int64), 0, frame_num - 1)
