"""Pose accuracy: do the people in the generated frames take the conditioning poses?

Protocol (documented in docs/evaluation.md):

1. The conditioning keypoints (``posevid pose`` output) are converted to COCO-17 and mapped onto the
   generated frame size with :func:`fit_keypoints` (``stretch`` / ``center-crop`` / ``pad``).
2. A pose estimator re-detects keypoints on every generated frame; when it finds several people, the one
   with the highest OKS against the conditioning pose is scored.
3. Scores, per frame and pooled per video:

   * ``pck@a`` (a = 0.05, 0.1, 0.2): share of visible conditioning joints whose re-detected joint lies
     within ``a x ref`` pixels; ``ref`` = the larger side of the conditioning joints' bounding box
     (``box``, default) or the torso diagonal (``torso``, mean of shoulder-to-opposite-hip lengths). A
     missed person or joint counts as wrong.
   * ``oks``: COCO object keypoint similarity with the COCO sigmas; the object area ``s²`` is the
     area of the conditioning joints' bounding box (there is no segmentation to take it from).
   * ``oks_ap`` (and ``oks_ap50``/``oks_ap75``): COCO-style AP over OKS thresholds 0.50:0.05:0.95 with
     101-point interpolated precision, one ground-truth person per frame, detections ranked by their
     mean joint score.
   * ``detection_rate``: share of generated frames where the estimator found anyone.

All maths works on plain ``(T, 17, 3)`` arrays so it can be tested without any estimator.
"""

from __future__ import annotations

import numpy as np

from posevid.eval.defaults import EVAL_DEFAULTS as D

COCO_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0
PCK_ALPHAS = (0.05, 0.1, 0.2)
OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
FIT_MODES = ("auto", "stretch", "center-crop", "pad")


def fit_keypoints(kp: np.ndarray, src_wh: tuple[int, int], dst_wh: tuple[int, int], mode: str = D.pose_fit) -> tuple[np.ndarray, str]:
    """Map ``(..., K, 3)`` keypoints from a ``src`` frame onto a ``dst`` frame; returns (keypoints, mode used).

    ``auto`` = ``stretch`` when the aspect ratios agree within 1 %, else ``center-crop`` (resize to cover,
    crop the middle: what the generation pipelines do). Joints that land outside the frame get score 0.
    """
    sw, sh = src_wh
    dw, dh = dst_wh
    if mode == "auto":
        mode = "stretch" if abs((sw / sh) / (dw / dh) - 1) < 0.01 else "center-crop"
    out = np.array(kp, dtype=np.float64, copy=True)
    if mode == "stretch":
        out[..., 0] *= dw / sw
        out[..., 1] *= dh / sh
    elif mode in ("center-crop", "pad"):
        from posevid.pose.geometry import FitTransform  # the exact (integer-rounded) transform the pipelines apply to frames

        out = FitTransform((sw, sh), (dw, dh), "crop" if mode == "center-crop" else "pad").keypoints(out).astype(np.float64)
    else:
        raise ValueError(f"unknown fit mode {mode!r}; use one of {FIT_MODES}")
    outside = (out[..., 0] < 0) | (out[..., 0] > dw) | (out[..., 1] < 0) | (out[..., 1] > dh)
    out[..., 2] = np.where(outside, 0.0, out[..., 2])
    return out, mode


def _box(gt: np.ndarray, vis: np.ndarray) -> tuple[float, float]:
    pts = gt[vis, :2]
    if len(pts) < 2:
        return 0.0, 0.0
    w, h = pts.max(0) - pts.min(0)
    return float(w), float(h)


def reference_size(gt: np.ndarray, vis: np.ndarray, ref: str = D.pck_ref) -> float:
    """PCK normaliser for one frame (0 when undefined): box = max(w, h); torso = mean shoulder-opposite-hip length."""
    if ref == "box":
        return max(_box(gt, vis))
    if ref == "torso":
        lengths = [np.linalg.norm(gt[a, :2] - gt[b, :2]) for a, b in ((5, 12), (6, 11)) if vis[a] and vis[b]]
        return float(np.mean(lengths)) if lengths else 0.0
    raise ValueError(f"unknown PCK reference {ref!r}; use 'box' or 'torso'")


def oks(gt: np.ndarray, pred: np.ndarray | None, threshold: float = D.pose_threshold) -> float:
    """COCO OKS of one predicted person against one ground-truth person (``(17, 3)`` each); NaN if GT has < 2 joints."""
    vis = gt[:, 2] > threshold
    w, h = _box(gt, vis)
    if vis.sum() < 2:
        return float("nan")
    if pred is None:
        return 0.0
    area = w * h
    var = (2 * COCO_SIGMAS) ** 2
    d2 = ((pred[:, :2] - gt[:, :2]) ** 2).sum(-1)
    e = d2 / var / (area + np.spacing(1)) / 2
    sim = np.where(pred[:, 2] > 0, np.exp(-e), 0.0)
    return float(sim[vis].mean())


def pck_frame(
    gt: np.ndarray, pred: np.ndarray | None, alpha: float, *, ref: str = D.pck_ref, threshold: float = D.pose_threshold
) -> tuple[int, int]:
    """(correct, total) joints of one frame; total = 0 when the frame has no usable reference size."""
    vis = gt[:, 2] > threshold
    size = reference_size(gt, vis, ref)
    if size <= 0:
        return 0, 0
    total = int(vis.sum())
    if pred is None:
        return 0, total
    dist = np.linalg.norm(pred[:, :2] - gt[:, :2], axis=-1)
    ok = vis & (pred[:, 2] > threshold) & (dist <= alpha * size)
    return int(ok.sum()), total


def oks_ap(oks_values: np.ndarray, scores: np.ndarray, num_gt: int, thresholds: np.ndarray = OKS_THRESHOLDS) -> dict[str, float]:
    """COCO-style AP with one GT per frame: ``oks_values``/``scores`` of each detection (NaN OKS = no GT there)."""
    oks_values, scores = np.asarray(oks_values, float), np.asarray(scores, float)
    order = np.argsort(-scores, kind="mergesort")
    oks_sorted = oks_values[order]
    recall_points = np.linspace(0, 1, 101)
    aps = []
    for t in thresholds:
        tp = np.nan_to_num(oks_sorted, nan=-1.0) >= t
        fp = ~tp & ~np.isnan(oks_sorted)  # a detection on a frame without a scorable GT is ignored, as COCO's crowd/ignore
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        if num_gt == 0:
            aps.append(float("nan"))
            continue
        recall = ctp / num_gt
        precision = ctp / np.maximum(ctp + cfp, 1)
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        idx = np.searchsorted(recall, recall_points, side="left")
        sampled = np.array([precision[i] if i < len(precision) else 0.0 for i in idx])
        aps.append(float(sampled.mean()))
    aps_arr = np.array(aps)
    return {"oks_ap": float(np.nanmean(aps_arr)) if num_gt else float("nan"), "oks_ap50": aps[0], "oks_ap75": aps[5]}


def pick_person(gt: np.ndarray, persons: np.ndarray, threshold: float = D.pose_threshold) -> np.ndarray | None:
    """The detected person (``(P, 17, 3)``) that best matches ``gt`` by OKS; None when nobody was found."""
    if persons is None or len(persons) == 0:
        return None
    if len(persons) == 1:
        return persons[0]
    values = [oks(gt, p, threshold) for p in persons]
    values = [-1.0 if np.isnan(v) else v for v in values]
    return persons[int(np.argmax(values))]


def pose_accuracy(
    gt: np.ndarray, detections: list[np.ndarray], *, ref: str = D.pck_ref, threshold: float = D.pose_threshold, alphas=PCK_ALPHAS
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Score re-detected poses against conditioning poses.

    ``gt``: ``(T, 17, 3)`` COCO-17 conditioning joints in generated-frame pixels. ``detections``: T arrays
    ``(P, 17, 3)`` (P may be 0). Returns (summary, per-frame series).
    """
    gt = np.asarray(gt, float)
    if len(detections) != len(gt):
        raise ValueError(f"{len(detections)} detected frames for {len(gt)} conditioning frames")
    chosen = [pick_person(g, np.asarray(d, float).reshape(-1, 17, 3), threshold) for g, d in zip(gt, detections, strict=False)]
    summary: dict[str, float] = {}
    per_frame: dict[str, list[float]] = {}
    for a in alphas:
        counts = [pck_frame(g, p, a, ref=ref, threshold=threshold) for g, p in zip(gt, chosen, strict=False)]
        correct, total = sum(c for c, _ in counts), sum(t for _, t in counts)
        summary[f"pck@{a:g}"] = correct / total if total else float("nan")
        per_frame[f"pck@{a:g}"] = [c / t if t else float("nan") for c, t in counts]
    oks_all = np.array([oks(g, p, threshold) for g, p in zip(gt, chosen, strict=False)])
    summary["oks"] = float(np.nanmean(oks_all)) if np.isfinite(oks_all).any() else float("nan")
    per_frame["oks"] = oks_all.tolist()
    detected = np.array([p is not None for p in chosen])
    scores = np.array([float(p[:, 2].mean()) if p is not None else 0.0 for p in chosen])
    num_gt = int(np.isfinite(oks_all).sum())
    summary.update(oks_ap(oks_all[detected], scores[detected], num_gt))
    summary["detection_rate"] = float(detected.mean()) if len(detected) else float("nan")
    return summary, per_frame
