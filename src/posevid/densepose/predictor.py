"""Frames in, DensePose charts out: detectron2's ``DefaultPredictor`` + post-processing, batched over frames.

Per batch: each RGB frame is flipped to BGR (the model's input format), resized so its short side is 800
and its long side at most 1333 (PIL bilinear on uint8, as detectron2's ``ResizeShortestEdge``), normalised
and zero-padded to a multiple of 32; the model's one stage composition (:meth:`DensePoseRCNN.forward`) runs
once on the batch. Between its detections and its DensePose head the boxes are scaled back to each frame's
size, clipped, and empty ones dropped (``detector_postprocess``), so only the kept (or chosen) instances get
charts. :meth:`FrameResult.chart` turns one instance's 112x112 maps into the per-box chart result (labels, U, V)
that ``apply_net.py dump`` stores, sized to the integer box as DensePose's converter does.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from posevid.densepose.boxes import clip_boxes, nonempty
from posevid.densepose.config import DensePoseConfig
from posevid.densepose.model import DensePoseRCNN, Detections, Stages
from posevid.errors import InputError
from posevid.utils.devices import dtype_name, pick_device, torch_dtype


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu; ``cuda:N`` picks a GPU; an unavailable choice is a one-line error."""
    return torch.device(pick_device(device))  # the one device rule of every command


def resized_shape(h: int, w: int, short: int, max_size: int) -> tuple[int, int]:
    """detectron2's ``ResizeShortestEdge.get_output_shape``: (new h, new w), rounded half up."""
    scale = short / min(h, w)
    newh, neww = (short, scale * w) if h < w else (scale * h, short)
    if max(newh, neww) > max_size:
        scale = max_size / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def resize_uint8(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """PIL bilinear resize of an ``(H, W, 3)`` uint8 image to ``hw`` (what detectron2 does for uint8 input)."""
    from PIL import Image

    if tuple(image.shape[:2]) == tuple(hw):
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.BILINEAR))


@dataclass
class ChartResult:
    """One person's chart result inside its integer box (``DensePoseChartResult``)."""

    labels: torch.Tensor  # (h, w) int64, 0 = background, 1..24 body parts
    uv: torch.Tensor  # (2, h, w) float32, U and V at the label's chart, 0 on background


def chart_result(charts: dict[str, torch.Tensor], box_xyxy: torch.Tensor) -> ChartResult:
    """The 112x112 maps of one instance (each ``(1, C, S, S)``) resized to its box, as DensePose's converter.

    The box is turned into XYWH and truncated to integers; labels are the fine-segmentation argmax where
    the coarse segmentation says foreground; U and V are read at each pixel's label.
    """
    w = float(box_xyxy[2] - box_xyxy[0])
    h = float(box_xyxy[3] - box_xyxy[1])
    w, h = max(int(torch.tensor(w).long()), 1), max(int(torch.tensor(h).long()), 1)

    def fit(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t.float(), (h, w), mode="bilinear", align_corners=False)

    fg = fit(charts["coarse_segm"]).argmax(dim=1) > 0
    labels = (fit(charts["fine_segm"]).argmax(dim=1) * fg.long())[0]
    u, v = fit(charts["u"])[0], fit(charts["v"])[0]
    idx = labels[None]
    uv = torch.stack([u.gather(0, idx)[0], v.gather(0, idx)[0]]) * (labels > 0)
    return ChartResult(labels=labels, uv=uv.float())


@dataclass
class FrameResult:
    """Detections of one frame in its own pixel coordinates (best score first) and chart maps of some of them.

    ``charts`` holds the rows of the instances listed in ``chart_rows`` (all of them unless the predictor
    was asked for one person per frame, which skips the DensePose head for everyone else).
    """

    image_size: tuple[int, int]  # (H, W) of the frame
    boxes: torch.Tensor  # (N, 4) float32 XYXY
    scores: torch.Tensor  # (N,)
    charts: dict[str, torch.Tensor]  # each (len(chart_rows), C, 112, 112) float32
    chart_rows: list[int] | None = None  # instance index of each chart row; None = every instance in order

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def chart(self, i: int) -> ChartResult:
        row = i if self.chart_rows is None else self.chart_rows.index(i)
        return chart_result({k: v[row : row + 1] for k, v in self.charts.items()}, self.boxes[i])


Chooser = Callable[[FrameResult], int | None]
"""Picks one instance of a frame's detections (or None: nobody), e.g. :class:`posevid.densepose.extract.PersonChooser`."""


class DensePosePredictor:
    """A loaded model on a device; call it on a list of RGB uint8 frames."""

    def __init__(self, model: DensePoseRCNN, device: str | torch.device = "cpu", dtype: str = "fp32") -> None:
        self.dtype = dtype_name(dtype)
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device, torch_dtype(self.dtype)).eval()
        self.cfg: DensePoseConfig = model.cfg

    @classmethod
    def from_weights(
        cls, weights: str | os.PathLike | None = None, *, cfg: DensePoseConfig | None = None, device: str = "auto", dtype: str = "fp32"
    ) -> DensePosePredictor:
        from posevid.densepose.weights import load_weights_file, resolve_weights

        path = resolve_weights(weights)
        model = DensePoseRCNN.from_state_dict(load_weights_file(path), cfg, source=str(path))
        return cls(model, device=device, dtype=dtype)

    def preprocess(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """RGB uint8 frames -> the normalised padded BGR batch and each frame's resized (h, w)."""
        images, sizes = [], []
        for frame in frames:
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise InputError(f"DensePose needs RGB uint8 frames, got an array of shape {frame.shape} and dtype {frame.dtype}")
            img = np.ascontiguousarray(frame[:, :, ::-1]) if self.cfg.input_format == "BGR" else frame
            hw = resized_shape(frame.shape[0], frame.shape[1], self.cfg.min_size, self.cfg.max_size)
            img = resize_uint8(img, hw)
            images.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(self.device))
            sizes.append(hw)
        return self.model.normalize_and_pad(images), sizes

    def with_config(self, cfg: DensePoseConfig) -> DensePosePredictor:
        """A predictor on the same loaded model with another input config (e.g. a short side); ``self`` is left as it is."""
        other = copy.copy(self)
        other.cfg = cfg
        return other

    @torch.no_grad()
    def __call__(
        self, frames: Sequence[np.ndarray], choose: Chooser | None = None, *, return_stages: bool = False
    ) -> list[FrameResult] | tuple[list[FrameResult], Stages]:
        """Detections and charts per frame. With ``choose`` (called on each frame's detections, in frame order),
        only the chosen instance gets chart maps: the DensePose head runs once per frame instead of once per
        detection (up to 100), with the same values for that instance. ``return_stages=True`` also returns the
        model's :class:`~posevid.densepose.model.Stages` record of the batch (what the golden tests compare)."""
        batch, sizes = self.preprocess(frames) if len(frames) else (None, [])
        results: list[FrameResult] = []

        def select(detections: list[Detections]) -> list[torch.Tensor]:
            """``detector_postprocess`` of each frame, then its chosen rows: only those go through the DensePose head."""
            boxes = []
            for d, resized, frame in zip(detections, sizes, frames, strict=True):
                r, keep = postprocess(d, resized, frame.shape[:2])
                r.chart_rows = list(range(len(r))) if choose is None else [i for i in [choose(r)] if i is not None]
                results.append(r)
                boxes.append(d.boxes[keep][r.chart_rows])
            return boxes

        stages = self.model(Stages(sizes, batch=batch), select=select) if len(frames) else Stages(sizes)
        start = 0
        for r in results:
            n = len(r.chart_rows)
            r.charts = {k: v[start : start + n].float().cpu() for k, v in stages.charts.items()}
            start += n
        return (results, stages) if return_stages else results


def postprocess(detections: Detections, resized_hw: tuple[int, int], frame_hw: tuple[int, int]) -> tuple[FrameResult, torch.Tensor]:
    """``detector_postprocess``: boxes scaled from the network input to the frame, clipped, empty ones dropped.

    Returns the frame's result (no charts yet) and the kept-instance mask.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    boxes = detections.boxes.clone()
    boxes[:, 0::2] *= w / resized_hw[1]
    boxes[:, 1::2] *= h / resized_hw[0]
    boxes = clip_boxes(boxes, (h, w))
    keep = nonempty(boxes)
    return FrameResult((h, w), boxes[keep].cpu(), detections.scores[keep].cpu(), {}), keep


__all__ = [
    "ChartResult", "DensePosePredictor", "FrameResult", "chart_result", "postprocess", "resize_uint8", "resized_shape", "resolve_device",
]
