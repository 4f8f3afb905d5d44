"""How well do our keypoints agree with MMPose (HRNet-W32) skeletons rendered by the team13 fork?

Only the renders exist (black frames, MMPose-1.x colours, 1-px lines, radius-3 joint dots), not the
numbers, so the joints are recovered from the picture:

1. pixels are classified by colour into the three MMPose classes: face (51,153,255)*0.8 = nose, eyes,
   ears; person-left (0,255,0)*0.8; person-right (255,128,0)*0.8;
2. a morphological opening with a 3x3 square removes the 1-px lines and keeps the dots (about 4x4 px after; each connected
   video compression); each connected component is a joint dot, its centroid the joint position;
3. per class, our confident COCO-17 joints of that class are matched one-to-one to the dots (Hungarian
   assignment on distance);
4. a joint is correct when its match lies within ``alpha`` x torso size (distance mid-shoulders to mid-hips
   of our pose; PCK@0.1 of torso by default). Our joints without a matching dot count as wrong.

The matching inside a class cannot swap sides or classes (colours differ) and joints of one class lie far
apart along a limb, so a swap within a class rarely helps; the measure is slightly optimistic for
overlapping dots (e.g. eyes and ears of a profile face).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MMPose 1.x keypoint colours (RGB) and which COCO joints carry each
CLASSES = {
    "face": ((51, 153, 255), (0, 1, 2, 3, 4)),
    "left": ((0, 255, 0), (5, 7, 9, 11, 13, 15)),
    "right": ((255, 128, 0), (6, 8, 10, 12, 14, 16)),
}


def recover_mmpose_joints(frame: np.ndarray, *, alpha: float = 0.8, tolerance: float = 60.0) -> dict[str, np.ndarray]:
    """Dot centroids ``(N, 2)`` per colour class from one MMPose-1.x render (RGB uint8)."""
    import cv2

    lit = frame.max(axis=-1) > 60
    ys, xs = np.nonzero(lit)  # few pixels: classify only those
    pixels = frame[ys, xs].astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    out = {}
    for name, (color, _) in CLASSES.items():
        close = np.linalg.norm(pixels - np.array(color, np.float32) * alpha, axis=-1) < tolerance
        mask = np.zeros(frame.shape[:2], np.uint8)
        mask[ys[close], xs[close]] = 1
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        n, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 6]
        out[name] = centroids[keep].astype(np.float32) if keep else np.zeros((0, 2), np.float32)
    return out


def torso_size(kp: np.ndarray, threshold: float = 0.3) -> float | None:
    """Distance from mid-shoulders to mid-hips of a COCO-17 pose (None when not visible)."""
    if (kp[[5, 6, 11, 12], 2] > threshold).all():
        return float(np.linalg.norm((kp[5, :2] + kp[6, :2]) / 2 - (kp[11, :2] + kp[12, :2]) / 2))
    return None


@dataclass
class Agreement:
    correct: int = 0
    evaluated: int = 0
    frames: int = 0
    skipped_frames: int = 0  # frames without a visible torso in our pose, or without any MMPose dot
    per_class: dict | None = None

    @property
    def pck(self) -> float:
        return self.correct / self.evaluated if self.evaluated else float("nan")

    def as_dict(self) -> dict:
        return {"pck": self.pck, "correct": self.correct, "evaluated": self.evaluated, "frames": self.frames,
                "skipped_frames": self.skipped_frames, "per_class": self.per_class}  # fmt: skip


def agreement_frame(ours: np.ndarray, render: np.ndarray | dict, *, alpha: float = 0.1, threshold: float = 0.3) -> tuple[dict, bool]:
    """Per-class (correct, evaluated) for one frame: our COCO-17 ``(17, 3)`` pose vs one MMPose render.

    ``render`` may also be the output of :func:`recover_mmpose_joints` (to score several settings at once).
    """
    from scipy.optimize import linear_sum_assignment

    torso = torso_size(ours, threshold)
    dots = render if isinstance(render, dict) else recover_mmpose_joints(render)
    if torso is None or not any(len(d) for d in dots.values()):
        return {}, False
    result = {}
    for name, (_, joints) in CLASSES.items():
        mine = [j for j in joints if ours[j, 2] > threshold]
        if not mine:
            continue
        found = dots[name]
        correct = 0
        if len(found):
            cost = np.linalg.norm(ours[mine, None, :2] - found[None], axis=-1)
            rows, cols = linear_sum_assignment(cost)
            correct = int((cost[rows, cols] <= alpha * torso).sum())
        result[name] = (correct, len(mine))
    return result, True


def agreement(ours_coco17: np.ndarray, renders, *, alpha: float = 0.1, threshold: float = 0.3) -> Agreement:
    """PCK@``alpha`` torso of a ``(T, 17, 3)`` track against MMPose renders of the same frames (or their dots)."""
    total = Agreement(per_class={k: [0, 0] for k in CLASSES})
    for kp, render in zip(ours_coco17, renders, strict=False):
        total.frames += 1
        per, ok = agreement_frame(kp, render, alpha=alpha, threshold=threshold)
        if not ok:
            total.skipped_frames += 1
            continue
        for name, (c, n) in per.items():
            total.correct += c
            total.evaluated += n
            total.per_class[name][0] += c
            total.per_class[name][1] += n
    return total
