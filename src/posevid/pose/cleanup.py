"""Turn raw per-frame detections into a clean track: pick the person, fill gaps, smooth jitter.

* :func:`select_persons` keeps one person per frame (``largest`` box or most ``central``) or ``all`` of them,
  following the chosen person from frame to frame by box overlap so the track does not jump to a
  bystander when sizes are similar.
* :func:`fill_missing` fills frames where nobody was found by linear interpolation between the nearest
  detections (``interpolate``) or by repeating the last one (``hold``); ends are held. It returns how many
  frames it filled, so the caller can report it.
* :class:`OneEuroFilter` (Casiez et al., CHI 2012) removes detector jitter while following fast motion:
  the cut-off frequency rises with speed. Coordinates are divided by the frame height first, so the
  parameters do not depend on resolution. Points under the score threshold are left untouched and reset
  the filter for that joint (a re-appearing joint does not slide in from an old position).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posevid.errors import InputError
from posevid.pose.options import ONE_EURO_DEFAULTS, POSE_DEFAULTS

PERSON_MODES = ("largest", "central", "all")
FILL_MODES = ("interpolate", "hold", "none")


def person_box(kp: np.ndarray, threshold: float = POSE_DEFAULTS.threshold) -> np.ndarray | None:
    """Bounding box (x1, y1, x2, y2) of the confident joints of one ``(K, 3)`` person, or None."""
    pts = kp[kp[:, 2] > threshold, :2]
    if len(pts) == 0:
        pts = kp[kp[:, 2] > 0, :2]
    if len(pts) == 0:
        return None
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _rank(boxes: list[np.ndarray], mode: str, width: int, height: int) -> int:
    if mode == "largest":
        return int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
    center = np.array([width / 2, height / 2])
    return int(np.argmin([np.hypot(*(((b[:2] + b[2:]) / 2) - center)) for b in boxes]))


def select_persons(
    detections: Sequence[np.ndarray], *, mode: str = POSE_DEFAULTS.person, width: int, height: int, num_keypoints: int,
    threshold: float = POSE_DEFAULTS.threshold, max_persons: int = 10, track_iou: float = 0.3,
) -> np.ndarray:  # fmt: skip
    """Per-frame ``(P_t, K, 3)`` detections -> ``(T, P, K, 3)``; empty frames get zeros (score 0)."""
    if mode not in PERSON_MODES:
        raise InputError(f"unknown person mode '{mode}'", hint=f"use one of {', '.join(PERSON_MODES)}")
    T = len(detections)
    if mode != "all":
        out = np.zeros((T, 1, num_keypoints, 3), np.float32)
        prev: np.ndarray | None = None
        for t, people in enumerate(detections):
            cands = [(p, person_box(p, threshold)) for p in people]
            cands = [(p, b) for p, b in cands if b is not None]
            if not cands:
                continue
            boxes = [b for _, b in cands]
            pick = _rank(boxes, mode, width, height)
            if prev is not None:
                ious = [_iou(prev, b) for b in boxes]
                if max(ious) >= track_iou:
                    pick = int(np.argmax(ious))
            out[t, 0], prev = cands[pick][0], boxes[pick]
        return out
    # all persons: greedy IoU tracking into stable slots
    slots: list[np.ndarray] = []  # last box of each slot
    rows: list[dict[int, np.ndarray]] = []
    for people in detections:
        assigned: dict[int, np.ndarray] = {}
        cands = [(p, person_box(p, threshold)) for p in people]
        cands = sorted([(p, b) for p, b in cands if b is not None], key=lambda c: -(c[1][2] - c[1][0]) * (c[1][3] - c[1][1]))
        for p, b in cands:
            ious = [(_iou(s, b) if i not in assigned else -1.0) for i, s in enumerate(slots)]
            if ious and max(ious) >= track_iou:
                i = int(np.argmax(ious))
            elif len(slots) < max_persons:
                slots.append(b)
                i = len(slots) - 1
            else:
                continue
            slots[i] = b
            assigned[i] = p
        rows.append(assigned)
    out = np.zeros((T, max(1, len(slots)), num_keypoints, 3), np.float32)
    for t, assigned in enumerate(rows):
        for i, p in assigned.items():
            out[t, i] = p
    return out


def fill_missing(keypoints: np.ndarray, mode: str = POSE_DEFAULTS.fill) -> tuple[np.ndarray, int]:
    """Fill frames where a person slot is empty; returns (filled array, number of frames filled in slot 0..P)."""
    if mode not in FILL_MODES:
        raise InputError(f"unknown fill mode '{mode}'", hint=f"use one of {', '.join(FILL_MODES)}")
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    if mode == "none" or len(kp) == 0:
        return kp, 0
    filled_frames = np.zeros(len(kp), bool)
    for p in range(kp.shape[1]):
        present = (kp[:, p, :, 2] > 0).any(axis=1)
        idx = np.flatnonzero(present)
        if len(idx) == 0 or len(idx) == len(kp):
            continue
        missing = np.flatnonzero(~present)
        for t in missing:
            after = idx[np.searchsorted(idx, t)] if t < idx[-1] else None
            before = idx[np.searchsorted(idx, t) - 1] if t > idx[0] else None
            if before is None:
                kp[t, p] = kp[after, p]
            elif after is None or mode == "hold":
                kp[t, p] = kp[before, p]
            else:
                w = (t - before) / (after - before)
                a, b = kp[before, p], kp[after, p]
                kp[t, p, :, :2] = (1 - w) * a[:, :2] + w * b[:, :2]
                kp[t, p, :, 2] = np.minimum(a[:, 2], b[:, 2])
            filled_frames[t] = True
    return kp, int(filled_frames.sum())


class OneEuroFilter:
    """Vectorised One-Euro filter over arrays of values sampled at (possibly irregular) times."""

    def __init__(
        self,
        min_cutoff: float = ONE_EURO_DEFAULTS["min_cutoff"],
        beta: float = ONE_EURO_DEFAULTS["beta"],
        d_cutoff: float = ONE_EURO_DEFAULTS["d_cutoff"],
    ) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise InputError("One-Euro parameters must be min_cutoff > 0, d_cutoff > 0, beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None
        self.fresh: np.ndarray | None = None  # elements whose state must restart at the next valid value

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
        tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float, valid: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        valid = np.ones(x.shape, bool) if valid is None else np.broadcast_to(valid, x.shape)
        if self.x is None or self.t is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            self.fresh = ~valid
            return x.copy()
        dt = t - self.t
        dx = (x - self.x) / dt
        dx_hat = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        x_hat = self.x + self._alpha(cutoff, dt) * (x - self.x)
        # points invalid now, or invalid last time (restarting), take the raw value and a zero speed
        restart = ~valid | self.fresh
        self.x = np.where(restart, x, x_hat)
        self.dx = np.where(restart, 0.0, dx_hat)
        self.fresh = ~valid
        self.t = t
        return self.x.copy()


def smooth(
    keypoints: np.ndarray, times: np.ndarray, *, scale: float, min_cutoff: float = ONE_EURO_DEFAULTS["min_cutoff"],
    beta: float = ONE_EURO_DEFAULTS["beta"], d_cutoff: float = ONE_EURO_DEFAULTS["d_cutoff"], threshold: float = POSE_DEFAULTS.threshold,
) -> np.ndarray:  # fmt: skip
    """One-Euro smoothing of ``(T, P, K, 3)`` pixel keypoints at ``times`` (seconds); scores unchanged.

    ``scale`` (the frame height) makes coordinates unit-free, so ``beta`` means the same at any resolution.
    """
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    if len(kp) == 0:
        return kp
    filt = OneEuroFilter(min_cutoff, beta, d_cutoff)
    for t in range(len(kp)):
        valid = kp[t, ..., 2] > threshold
        xy = kp[t, ..., :2].astype(np.float64) / scale
        out = filt(xy, float(times[t]), valid[..., None])
        kp[t, ..., :2] = np.where(valid[..., None], out * scale, kp[t, ..., :2])
    return kp


SMOOTHERS = ("zero-phase", "one-euro", "none")
ZERO_PHASE_SIGMA_S = 0.08  # Gaussian width in seconds } chosen on the shared Charades clips against MMPose
ZERO_PHASE_SPEED = 0.3  # frame heights per second   } (benchmarks/pose_calibrate.py, docs/pose.md)


def smooth_zero_phase(
    keypoints: np.ndarray, fps: float, *, scale: float, sigma_s: float = ZERO_PHASE_SIGMA_S, speed: float | None = ZERO_PHASE_SPEED,
    threshold: float = POSE_DEFAULTS.threshold,
) -> np.ndarray:  # fmt: skip
    """Confidence-weighted Gaussian smoothing over time, forward and backward at once (zero phase: no lag), speed-adaptive.

    Why: for a file the whole track is known, so each frame can be averaged with its past *and* future
    neighbours; a symmetric kernel never trails behind motion the way the causal One-Euro filter does (which
    lags most at low frame rates, where one frame is a long time). The kernel width is given in seconds, so
    it spans fewer frames at low fps (at 6 fps a 0.08 s sigma is half a frame; at 30 fps about +-5 frames).
    Each neighbour is weighted by its score; joints under ``threshold`` neither contribute nor change.

    Like One-Euro, it smooths hard where a joint is still (jitter shows most there) and little where it moves
    fast (where averaging would cut the extremes of a gesture): the result is ``raw + w * (smoothed - raw)``
    with ``w = 1 / (1 + (v / speed)^2)``, ``v`` the joint's speed on the smoothed track (central difference, so
    still zero phase) in frame heights (``scale`` pixels) per second. ``speed=None`` smooths uniformly.
    Scores are unchanged.
    """
    from scipy.ndimage import gaussian_filter1d

    if fps <= 0 or sigma_s < 0 or scale <= 0:
        raise InputError(f"zero-phase smoothing needs fps > 0, sigma >= 0, scale > 0, got fps={fps}, sigma={sigma_s}, scale={scale}")
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    sigma = sigma_s * float(fps)
    if len(kp) < 2 or sigma < 1e-3:
        return kp
    valid = kp[..., 2] > threshold
    w = np.where(valid, kp[..., 2], 0.0).astype(np.float64)
    xy = kp[..., :2].astype(np.float64)
    num = gaussian_filter1d(xy * w[..., None], sigma, axis=0, mode="constant", truncate=3.0)
    den = gaussian_filter1d(w, sigma, axis=0, mode="constant", truncate=3.0)[..., None]
    smoothed = num / np.maximum(den, 1e-12)
    if speed is not None and len(kp) >= 3:
        v = np.zeros(xy.shape[:-1])
        v[1:-1] = np.linalg.norm(smoothed[2:] - smoothed[:-2], axis=-1) * (fps / 2.0) / scale
        v[0], v[-1] = v[1], v[-2]
        blend = 1.0 / (1.0 + (v / speed) ** 2)
        smoothed = xy + blend[..., None] * (smoothed - xy)
    kp[..., :2] = np.where(valid[..., None], smoothed, kp[..., :2])
    return kp
