"""A look at Wan2.2-Animate's inputs: one picture per frame with the frame, its pose, its face crop side by side.

Why: Wan's folder holds three to five videos of different sizes (the pose video at the reference's size, the
face video at 512x512, the frames at their own size); checking that the pose follows the person and the face
crop holds the face means opening them side by side. :func:`preview_frame` puts the panels of one frame next to
each other at one height: the driving frame (as Wan works on it), the pose drawing, the face crop and, in
replace mode, the background (the frame with the generated area blacked out).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from posevid.wan.preprocess import WanInputs

PREVIEW_HEIGHT = 360  # pixels: every panel is scaled to this height


def _panel(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    interpolation = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)


def preview_frame(inputs: WanInputs, t: int, height: int = PREVIEW_HEIGHT) -> np.ndarray:
    """Frame ``t``'s panels (frame, pose, face, and the background in replace mode) side by side, uint8 RGB.

    The width is made even (padded with one black column if needed) so the frames encode as H.264 yuv420p.
    """
    panels = [inputs.frames[t], inputs.pose_frames[t], inputs.face_frames[t]]
    if inputs.background_frames is not None:
        panels.append(inputs.background_frames[t])
    row = np.concatenate([_panel(p, height) for p in panels], axis=1)
    if row.shape[1] % 2:
        row = np.pad(row, ((0, 0), (0, 1), (0, 0)))
    return row


def preview_frames(inputs: WanInputs, height: int = PREVIEW_HEIGHT) -> Iterator[np.ndarray]:
    """:func:`preview_frame` of every frame, one at a time (the preview video is streamed, not held)."""
    for t in range(len(inputs.pose_frames)):
        yield preview_frame(inputs, t, height)
