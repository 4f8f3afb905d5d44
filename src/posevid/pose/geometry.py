"""Resize a frame (and its keypoints) to a target size by center-crop or letterbox padding.

One uniform scale plus an offset, so keypoints and pixels stay aligned: ``crop`` fills the target and cuts
the overflow equally on both sides (like the FYP pipeline's Resize + CenterCrop); ``pad`` fits the whole
frame and fills the borders with black.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posevid.errors import InputError
from posevid.pose.options import POSE_DEFAULTS

FITS = ("crop", "pad")


@dataclass(frozen=True)
class FitTransform:
    """Map a ``src`` (W, H) frame onto a ``dst`` (W, H) frame: ``p' = p * scale + offset``."""

    src: tuple[int, int]
    dst: tuple[int, int]
    fit: str = POSE_DEFAULTS.fit

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise InputError(f"unknown fit '{self.fit}'", hint=f"use one of {', '.join(FITS)}")

    @property
    def resized(self) -> tuple[int, int]:
        """Size of the source after uniform scaling (before cropping/padding)."""
        sx, sy = self.dst[0] / self.src[0], self.dst[1] / self.src[1]
        s = max(sx, sy) if self.fit == "crop" else min(sx, sy)
        return max(1, int(round(self.src[0] * s))), max(1, int(round(self.src[1] * s)))

    @property
    def offset(self) -> tuple[int, int]:
        rw, rh = self.resized
        return (self.dst[0] - rw) // 2, (self.dst[1] - rh) // 2

    @property
    def identity(self) -> bool:
        return tuple(self.src) == tuple(self.dst)

    def keypoints(self, kp: np.ndarray) -> np.ndarray:
        """Transform (..., 3) keypoints; scores unchanged."""
        if self.identity:
            return kp
        out = np.array(kp, dtype=np.float32, copy=True)
        (rw, rh), (ox, oy) = self.resized, self.offset
        out[..., 0] = out[..., 0] * (rw / self.src[0]) + ox
        out[..., 1] = out[..., 1] * (rh / self.src[1]) + oy
        return out

    def frame(self, img: np.ndarray) -> np.ndarray:
        """Resize (area filter when shrinking below 3/4) then center-crop or pad an RGB frame to ``dst``."""
        import cv2

        if self.identity:
            return img
        (rw, rh), (ox, oy) = self.resized, self.offset
        # area filtering only pays off (against aliasing) for real shrinking; it is ~3x slower than bilinear
        interp = cv2.INTER_AREA if rw < 0.75 * img.shape[1] else cv2.INTER_LINEAR
        resized = cv2.resize(img, (rw, rh), interpolation=interp)
        out = np.zeros((self.dst[1], self.dst[0], 3), np.uint8)
        # paste the overlap of the resized image placed at (ox, oy) into the output
        x0, y0 = max(ox, 0), max(oy, 0)
        x1, y1 = min(ox + rw, self.dst[0]), min(oy + rh, self.dst[1])
        out[y0:y1, x0:x1] = resized[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        return out
