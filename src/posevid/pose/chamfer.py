"""Chamfer distance between two skeleton videos: how far apart are the drawn skeletons, in pixels?

The yardstick of issue 14 (the team's ``skeleton_chamfer.py`` tool, re-implemented here so users and CI need
nothing outside the package): in each frame pair, pixels whose brightest channel exceeds ``threshold`` (40) are
skeleton pixels; the symmetric chamfer distance is the mean of (mean distance from each pixel of A to the nearest
pixel of B) and the same from B to A. The distance transform is OpenCV's ``DIST_L2`` with a 3x3 mask, as the tool
uses, so the numbers match it. Frames where exactly one side is empty are counted, not scored; the summary is
the median over scored frames, in pixels and as a fraction of the frame height.

It needs only pictures, so it compares any two drawing styles; compare like with like (e.g. our ``mmpose``
style against MMPose renders) to measure where the joints are rather than how thick the lines are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

LIT_THRESHOLD = 40


def lit_mask(frame: np.ndarray, threshold: int = LIT_THRESHOLD) -> np.ndarray:
    """Boolean (H, W) mask of the skeleton pixels of an (H, W, 3) frame."""
    return np.asarray(frame).max(axis=-1) > threshold


def distance_map(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest pixel of ``mask`` (float32, OpenCV ``DIST_L2``, 3x3 mask)."""
    import cv2

    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)


def chamfer(a: np.ndarray, b: np.ndarray, to_b: np.ndarray | None = None) -> float:
    """Symmetric chamfer distance (pixels) between two non-empty boolean masks of the same size.

    ``to_b`` may be ``distance_map(b)`` computed once, when many masks are compared with the same ``b``.
    """
    to_b = distance_map(b) if to_b is None else to_b
    to_a = distance_map(a)
    return 0.5 * (float(to_b[a].mean()) + float(to_a[b].mean()))


@dataclass
class ChamferResult:
    frames: int
    compared: int
    one_empty: int
    both_empty: int
    median_px: float
    mean_px: float
    median_frac_height: float
    per_frame: list[float]

    def summary(self) -> dict:
        """Everything but the per-frame list (for JSON reports)."""
        out = asdict(self)
        out.pop("per_frame")
        return out


def video_chamfer(frames_a: Iterable[np.ndarray], frames_b: Iterable[np.ndarray], threshold: int = LIT_THRESHOLD) -> ChamferResult:
    """Chamfer statistics over frame pairs (stops at the shorter input); ``frames_b`` is resized to A's size if needed."""
    import cv2

    dists: list[float] = []
    n = one = both = 0
    height = 1
    for fa, fb in zip(frames_a, frames_b, strict=False):
        n += 1
        height = fa.shape[0]
        if fb.shape[:2] != fa.shape[:2]:
            fb = cv2.resize(fb, (fa.shape[1], fa.shape[0]), interpolation=cv2.INTER_NEAREST)
        ma, mb = lit_mask(fa, threshold), lit_mask(fb, threshold)
        if not ma.any() and not mb.any():
            both += 1
        elif not ma.any() or not mb.any():
            one += 1
        else:
            dists.append(chamfer(ma, mb))
    d = np.array(dists) if dists else np.array([np.nan])
    med = float(np.nanmedian(d))
    return ChamferResult(n, len(dists), one, both, med, float(np.nanmean(d)), med / height, dists)
