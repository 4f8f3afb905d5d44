"""Detection operators in plain torch: NMS, NMS batched by group, and ROIAlign (detectron2 semantics).

torchvision is not available beside posevid's torch, so these are written with tensor ops. They follow
torchvision's kernels, which detectron2 calls:

* ``nms``: greedy, boxes visited by descending score, a box is dropped when its IoU with a kept box is
  strictly greater than the threshold; areas are ``(x2 - x1) * (y2 - y1)`` (no +1).
* ``batched_nms``: boxes of different groups never suppress each other; the kept indices are returned by
  descending score (torchvision's per-group loop).
* ``roi_align``: the ``aligned=False`` legacy variant detectron2's ``ROIAlign`` layer uses for this model
  (no half-pixel shift, ROI size at least 1), ``sampling_ratio`` points per bin side averaged, bilinear
  sampling that returns 0 beyond one pixel outside the map and clamps to the border inside it.
"""

from __future__ import annotations

import numpy as np
import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` XYXY boxes -> ``(N, M)``."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy NMS, by descending score (int64, on ``boxes.device``)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order].float()
    # The pairwise matrix is computed on the device; the greedy walk (inherently sequential) runs on the
    # host over one boolean row per kept box, which is fast for the few thousand boxes a detector keeps.
    over = (box_iou(sorted_boxes, sorted_boxes) > iou_threshold).cpu().numpy()
    n = over.shape[0]
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each group (class or pyramid level), kept indices sorted by descending score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    keep_mask = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    for g in torch.unique(groups).tolist():
        idx = torch.nonzero(groups == g).flatten()
        keep_mask[idx[nms(boxes[idx], scores[idx], iou_threshold)]] = True
    keep = torch.nonzero(keep_mask).flatten()
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def _axis_samples(start: torch.Tensor, length: torch.Tensor, bins: int, ratio: int, size: int):
    """Per ROI, the sample positions along one axis -> (low index, high index, low weight, high weight), each (R, bins*ratio).

    Positions outside ``[-1, size]`` get zero weights (their bilinear value is 0); inside, they are clamped to
    the border as in torchvision's ``bilinear_interpolate``.
    """
    step = length / bins
    k = torch.arange(bins * ratio, device=start.device, dtype=start.dtype)
    # sample j of bin p sits at start + p*step + (j + 0.5) * step / ratio; with k = p*ratio + j that is:
    pos = start[:, None] + (k[None, :] + 0.5) * (step[:, None] / ratio)
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    pos = torch.where(at_edge, low.to(pos.dtype), pos)
    frac = pos - low.to(pos.dtype)
    w_low = (1.0 - frac) * valid
    w_high = frac * valid
    return low, high, w_low, w_high


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = False,
) -> torch.Tensor:
    """ROIAlign of ``rois`` ``(R, 5)`` = (batch index, x1, y1, x2, y2) on ``features`` ``(B, C, H, W)`` -> ``(R, C, S, S)``.

    ``sampling_ratio`` must be positive (detectron2's DensePose config uses 2): the adaptive ratio of
    torchvision (``<= 0``) is not implemented.
    """
    if sampling_ratio <= 0:
        raise ValueError("roi_align here needs a positive sampling_ratio")
    b, c, h, w = features.shape
    r = rois.shape[0]
    if r == 0:
        return features.new_zeros((0, c, output_size, output_size))
    rois = rois.to(features.dtype) if features.dtype == torch.float64 else rois.float()
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    x2 = rois[:, 3] * spatial_scale - offset
    y2 = rois[:, 4] * spatial_scale - offset
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    ylo, yhi, wylo, wyhi = _axis_samples(y1, rh, output_size, sampling_ratio, h)
    xlo, xhi, wxlo, wxhi = _axis_samples(x1, rw, output_size, sampling_ratio, w)
    flat = features.permute(0, 2, 3, 1).reshape(b * h * w, c)
    base = rois[:, 0].long()[:, None, None] * (h * w)
    out = None
    for yi, wy in ((ylo, wylo), (yhi, wyhi)):
        for xi, wx in ((xlo, wxlo), (xhi, wxhi)):
            index = base + yi[:, :, None] * w + xi[:, None, :]  # (R, Sy, Sx)
            weight = (wy[:, :, None] * wx[:, None, :]).to(features.dtype)
            term = flat[index.reshape(-1)].reshape(r, index.shape[1], index.shape[2], c) * weight[..., None]
            out = term if out is None else out + term
    s, k = output_size, sampling_ratio
    out = out.reshape(r, s, k, s, k, c).mean(dim=(2, 4))
    return out.permute(0, 3, 1, 2).contiguous()


__all__ = ["batched_nms", "box_iou", "nms", "roi_align"]
