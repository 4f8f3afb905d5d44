"""Box arithmetic of detectron2's R-CNN: anchors, delta decoding, clipping, and the pooler's level rule.

All boxes are ``(N, 4)`` float tensors in XYXY absolute pixel coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# detectron2's Box2BoxTransform clamps dw/dh so exp() cannot overflow: log(1000 / 16)
DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


def cell_anchors(size: float, aspect_ratios: Sequence[float]) -> torch.Tensor:
    """The ``(A, 4)`` anchors centred on (0, 0) for one size: width ``sqrt(size^2 / ratio)``, height ``ratio * width``."""
    anchors = []
    for ratio in aspect_ratios:
        w = math.sqrt(size * size / ratio)
        h = ratio * w
        anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors, dtype=torch.float32)


def grid_anchors(base: torch.Tensor, grid_hw: tuple[int, int], stride: int, offset: float = 0.0) -> torch.Tensor:
    """Anchors of one feature map, location-major then anchor (the order of the RPN's flattened outputs) -> ``(H*W*A, 4)``."""
    gh, gw = grid_hw
    device = base.device
    xs = torch.arange(offset * stride, gw * stride, step=stride, dtype=torch.float32, device=device)
    ys = torch.arange(offset * stride, gh * stride, step=stride, dtype=torch.float32, device=device)
    sy, sx = torch.meshgrid(ys, xs, indexing="ij")
    sx, sy = sx.reshape(-1), sy.reshape(-1)
    shifts = torch.stack((sx, sy, sx, sy), dim=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def apply_deltas(
    deltas: torch.Tensor, boxes: torch.Tensor, weights: Sequence[float], scale_clamp: float = DEFAULT_SCALE_CLAMP
) -> torch.Tensor:
    """Decode ``(N, K*4)`` deltas (dx, dy, dw, dh per class) relative to ``(N, 4)`` boxes -> ``(N, K*4)`` boxes."""
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0::4] / wx
    dy = deltas[:, 1::4] / wy
    dw = (deltas[:, 2::4] / ww).clamp(max=scale_clamp)
    dh = (deltas[:, 3::4] / wh).clamp(max=scale_clamp)
    cx = dx * widths[:, None] + ctr_x[:, None]
    cy = dy * heights[:, None] + ctr_y[:, None]
    pw = torch.exp(dw) * widths[:, None]
    ph = torch.exp(dh) * heights[:, None]
    out = torch.stack((cx - 0.5 * pw, cy - 0.5 * ph, cx + 0.5 * pw, cy + 0.5 * ph), dim=-1)
    return out.reshape(deltas.shape)


def clip_boxes(boxes: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """Clamp x to [0, W] and y to [0, H] (a new tensor)."""
    h, w = image_hw
    x1 = boxes[:, 0].clamp(min=0, max=w)
    y1 = boxes[:, 1].clamp(min=0, max=h)
    x2 = boxes[:, 2].clamp(min=0, max=w)
    y2 = boxes[:, 3].clamp(min=0, max=h)
    return torch.stack((x1, y1, x2, y2), dim=-1)


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Mask of boxes whose width and height are both strictly above ``threshold``."""
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def pooler_levels(
    boxes: torch.Tensor, min_level: int, max_level: int, canonical_size: float = 224, canonical_level: int = 4
) -> torch.Tensor:
    """FPN level index (0 = ``min_level``) per box: ``floor(canonical_level + log2(sqrt(area) / canonical_size + 1e-8))``, clamped."""
    sizes = torch.sqrt(box_area(boxes))
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_size + 1e-8))
    levels = levels.clamp(min=min_level, max=max_level)
    return (levels - min_level).to(torch.int64)


__all__ = ["apply_deltas", "box_area", "cell_anchors", "clip_boxes", "grid_anchors", "nonempty", "pooler_levels"]
