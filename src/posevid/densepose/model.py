"""DensePose R-CNN (``densepose_rcnn_R_50_FPN_s1x``) in plain PyTorch: backbone, RPN, box head, DensePose head.

Module and parameter names follow detectron2's, so the published checkpoint's 335 tensors load by name
(``backbone.bottom_up.res2.0.conv1.norm.running_var`` ...). Every channel width, the block count of each
stage, the number of DensePose convolutions and the anchor count are read from the checkpoint's tensor
shapes (:meth:`DensePoseRCNN.from_state_dict`), so a reduced-width test checkpoint needs no config.

Inference is one composition, :meth:`DensePoseRCNN.forward`: it fills a :class:`Stages` record in
:data:`STAGE_ORDER` (features -> proposals -> box head -> detections -> DensePose boxes -> decoder -> pooled ->
DensePose head -> charts), starting after the latest stage the record already holds. The predictor runs it on a
batch; the golden tests run the same method on records holding a golden previous stage. Boxes are kept in float32
whatever the weights' dtype.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from posevid.densepose.boxes import apply_deltas, cell_anchors, clip_boxes, grid_anchors, nonempty, pooler_levels
from posevid.densepose.config import DensePoseConfig
from posevid.densepose.ops import batched_nms, roi_align
from posevid.errors import CheckpointError

FPN_LEVELS = ("p2", "p3", "p4", "p5", "p6")
FPN_STRIDES = (4, 8, 16, 32, 64)
STAGES = ("res2", "res3", "res4", "res5")


# --------------------------------------------------------------------------------------------------
# Backbone: ResNet with frozen batch norm, FPN
# --------------------------------------------------------------------------------------------------
class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics: ``x * scale + shift`` where scale = weight / sqrt(var + eps)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, init in (("weight", torch.ones), ("bias", torch.zeros), ("running_mean", torch.zeros), ("running_var", torch.ones)):
            self.register_buffer(name, init(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1).to(x.dtype) + shift.reshape(1, -1, 1, 1).to(x.dtype)


class ConvNorm(nn.Conv2d):
    """Bias-free convolution followed by frozen BN, stored as ``<conv>.weight`` + ``<conv>.norm.*`` like detectron2."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.norm = FrozenBatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, cout: int, stride: int, stride_in_1x1: bool) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.shortcut = ConvNorm(cin, cout, 1, stride=stride) if cin != cout else None
        self.conv1 = ConvNorm(cin, width, 1, stride=s1)
        self.conv2 = ConvNorm(width, width, 3, stride=s3, padding=1)
        self.conv3 = ConvNorm(width, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(out + skip)


class Stem(nn.Module):
    def __init__(self, cout: int) -> None:
        super().__init__()
        self.conv1 = ConvNorm(3, cout, 7, stride=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


@dataclass(frozen=True)
class Widths:
    """Architecture sizes read from a checkpoint (see :func:`widths_from_state_dict`)."""

    stem: int
    blocks: tuple[int, ...]  # blocks per stage res2..res5
    bottleneck: tuple[int, ...]  # inner width per stage
    stage_out: tuple[int, ...]  # output channels per stage
    fpn: int
    num_anchors: int
    box_fc: tuple[int, int]
    num_classes: int  # foreground classes (1: person)
    box_reg_classes: int
    decoder_dim: int
    decoder_out: int
    dp_head_dim: int
    dp_head_convs: int
    dp_kernel: int
    coarse_segm: int
    patches: int  # fine segm / U / V channels (24 parts + background)


class ResNet(nn.Module):
    def __init__(self, w: Widths, stride_in_1x1: bool) -> None:
        super().__init__()
        self.stem = Stem(w.stem)
        cin = w.stem
        for i, name in enumerate(STAGES):
            blocks = []
            for b in range(w.blocks[i]):
                stride = 2 if (b == 0 and i > 0) else 1
                blocks.append(Bottleneck(cin, w.bottleneck[i], w.stage_out[i], stride, stride_in_1x1))
                cin = w.stage_out[i]
            self.add_module(name, nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for name in STAGES:
            x = getattr(self, name)(x)
            outs.append(x)
        return outs


class FPN(nn.Module):
    """Feature pyramid p2-p6: 1x1 laterals, nearest 2x top-down sum, 3x3 outputs, p6 = stride-2 subsampling of p5."""

    def __init__(self, w: Widths, stride_in_1x1: bool) -> None:
        super().__init__()
        self.bottom_up = ResNet(w, stride_in_1x1)
        for i, cin in enumerate(w.stage_out):
            self.add_module(f"fpn_lateral{i + 2}", nn.Conv2d(cin, w.fpn, 1))
            self.add_module(f"fpn_output{i + 2}", nn.Conv2d(w.fpn, w.fpn, 3, padding=1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.bottom_up(x)
        prev = self.fpn_lateral5(c[3])
        outs = [self.fpn_output5(prev)]
        for lvl in (4, 3, 2):
            top_down = F.interpolate(prev, scale_factor=2.0, mode="nearest")
            prev = getattr(self, f"fpn_lateral{lvl}")(c[lvl - 2]) + top_down
            outs.insert(0, getattr(self, f"fpn_output{lvl}")(prev))
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2, padding=0))
        return dict(zip(FPN_LEVELS, outs, strict=True))


# --------------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------------
class RPNHead(nn.Module):
    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.objectness_logits = nn.Conv2d(channels, num_anchors, 1)
        self.anchor_deltas = nn.Conv2d(channels, num_anchors * 4, 1)


class RPN(nn.Module):
    def __init__(self, w: Widths) -> None:
        super().__init__()
        self.rpn_head = RPNHead(w.fpn, w.num_anchors)


class BoxHead(nn.Module):
    def __init__(self, in_features: int, fc: tuple[int, int]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, fc[0])
        self.fc2 = nn.Linear(fc[0], fc[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(F.relu(self.fc1(torch.flatten(x, 1)))))


class BoxPredictor(nn.Module):
    def __init__(self, dim: int, num_classes: int, reg_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(dim, num_classes + 1)
        self.bbox_pred = nn.Linear(dim, reg_classes * 4)


class ConvReLU(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class Decoder(nn.Module):
    """DensePose's FPN decoder: per level 3x3 conv+ReLU (+ bilinear 2x) until stride 4, summed, then a 1x1 predictor."""

    def __init__(self, w: Widths, common_stride: int) -> None:
        super().__init__()
        for name, stride in zip(FPN_LEVELS[:4], FPN_STRIDES[:4], strict=True):
            ops: list[nn.Module] = []
            for k in range(max(1, int(math.log2(stride) - math.log2(common_stride)))):
                ops.append(ConvReLU(w.fpn if k == 0 else w.decoder_dim, w.decoder_dim, 3, padding=1))
                if stride != common_stride:
                    ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(name, nn.Sequential(*ops))
        self.predictor = nn.Conv2d(w.decoder_dim, w.decoder_out, 1)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = None
        for name in FPN_LEVELS[:4]:
            y = getattr(self, name)(features[name])
            x = y if x is None else x + y
        return self.predictor(x)


class DensePoseHead(nn.Module):
    """``DensePoseV1ConvXHead``: a stack of 3x3 conv + ReLU named ``body_conv_fcn1..N``."""

    def __init__(self, cin: int, dim: int, n: int, kernel: int) -> None:
        super().__init__()
        self.n = n
        for i in range(n):
            self.add_module(f"body_conv_fcn{i + 1}", ConvReLU(cin if i == 0 else dim, dim, kernel, padding=kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n):
            x = getattr(self, f"body_conv_fcn{i + 1}")(x)
        return x


class ChartPredictor(nn.Module):
    """Four stride-2 transposed convolutions (coarse segm, fine segm, U, V), each then bilinearly upscaled."""

    def __init__(self, w: Widths, up_scale: int) -> None:
        super().__init__()
        k = w.dp_kernel
        pad = int(k / 2 - 1)
        self.up_scale = up_scale
        self.ann_index_lowres = nn.ConvTranspose2d(w.dp_head_dim, w.coarse_segm, k, stride=2, padding=pad)
        self.index_uv_lowres = nn.ConvTranspose2d(w.dp_head_dim, w.patches, k, stride=2, padding=pad)
        self.u_lowres = nn.ConvTranspose2d(w.dp_head_dim, w.patches, k, stride=2, padding=pad)
        self.v_lowres = nn.ConvTranspose2d(w.dp_head_dim, w.patches, k, stride=2, padding=pad)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=self.up_scale, mode="bilinear", align_corners=False)

        return {
            "coarse_segm": up(self.ann_index_lowres(x)),
            "fine_segm": up(self.index_uv_lowres(x)),
            "u": up(self.u_lowres(x)),
            "v": up(self.v_lowres(x)),
        }


class ROIHeads(nn.Module):
    def __init__(self, w: Widths, cfg: DensePoseConfig) -> None:
        super().__init__()
        res = cfg.box_pooler_resolution
        self.box_head = BoxHead(w.fpn * res * res, w.box_fc)
        self.box_predictor = BoxPredictor(w.box_fc[1], w.num_classes, w.box_reg_classes)
        self.decoder = Decoder(w, cfg.decoder_common_stride)
        self.densepose_head = DensePoseHead(w.decoder_out, w.dp_head_dim, w.dp_head_convs, 3)
        self.densepose_predictor = ChartPredictor(w, cfg.dp_up_scale)


# --------------------------------------------------------------------------------------------------
# Widths from a checkpoint
# --------------------------------------------------------------------------------------------------
def _shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(
            f"{source} is not a DensePose R-CNN checkpoint: it has no tensor {key}",
            hint="use densepose_rcnn_R_50_FPN_s1x's model_final_162be9.pkl or its safetensors conversion",
        )
    return tuple(state[key].shape)


def widths_from_state_dict(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> Widths:
    """Every architecture size of the model, read from tensor shapes (and counts of numbered modules)."""
    bu = "backbone.bottom_up"
    blocks, bottleneck, stage_out = [], [], []
    for name in STAGES:
        found = {int(m.group(1)) for k in state if (m := re.match(rf"{bu}\.{name}\.(\d+)\.", k))}
        if not found:
            _shape(state, f"{bu}.{name}.0.conv1.weight", source)
        blocks.append(max(found) + 1)
        bottleneck.append(_shape(state, f"{bu}.{name}.0.conv1.weight", source)[0])
        stage_out.append(_shape(state, f"{bu}.{name}.0.conv3.weight", source)[0])
    dp = "roi_heads.densepose_head"
    n_dp = len({k.split(".")[2] for k in state if k.startswith(f"{dp}.body_conv_fcn")})
    cls = _shape(state, "roi_heads.box_predictor.cls_score.weight", source)
    return Widths(
        stem=_shape(state, f"{bu}.stem.conv1.weight", source)[0],
        blocks=tuple(blocks),
        bottleneck=tuple(bottleneck),
        stage_out=tuple(stage_out),
        fpn=_shape(state, "backbone.fpn_output2.weight", source)[0],
        num_anchors=_shape(state, "proposal_generator.rpn_head.objectness_logits.weight", source)[0],
        box_fc=(_shape(state, "roi_heads.box_head.fc1.weight", source)[0], _shape(state, "roi_heads.box_head.fc2.weight", source)[0]),
        num_classes=cls[0] - 1,
        box_reg_classes=_shape(state, "roi_heads.box_predictor.bbox_pred.weight", source)[0] // 4,
        decoder_dim=_shape(state, "roi_heads.decoder.p2.0.weight", source)[0],
        decoder_out=_shape(state, "roi_heads.decoder.predictor.weight", source)[0],
        dp_head_dim=_shape(state, f"{dp}.body_conv_fcn1.weight", source)[0],
        dp_head_convs=n_dp,
        dp_kernel=_shape(state, "roi_heads.densepose_predictor.ann_index_lowres.weight", source)[2],
        coarse_segm=_shape(state, "roi_heads.densepose_predictor.ann_index_lowres.weight", source)[1],
        patches=_shape(state, "roi_heads.densepose_predictor.index_uv_lowres.weight", source)[1],
    )


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------
@dataclass
class Detections:
    """One image's detections in the coordinates of the (resized) network input, best score first."""

    boxes: torch.Tensor  # (N, 4) float32 XYXY
    scores: torch.Tensor  # (N,) float32
    classes: torch.Tensor  # (N,) int64


STAGE_ORDER = (
    "features", "proposals", "box_head", "detections", "densepose_boxes", "decoded", "densepose_pooled", "densepose_head", "charts",
)
"""The stages of :meth:`DensePoseRCNN.forward`, in the order they run; each fills the :class:`Stages` field of its name
(``proposals``: ``proposal_boxes`` and ``proposal_logits``; ``box_head``: ``box_features``, ``class_logits``, ``box_deltas``)."""

_RESULT = {"proposals": "proposal_boxes", "box_head": "class_logits"}  # the field that says a stage's result is there


def _need(stages: Stages, stage: str, field: str):
    value = getattr(stages, field)
    if value is None:
        raise ValueError(f"DensePose stage {stage!r} needs Stages.{field}: give it or start earlier")
    return value


@dataclass
class Stages:
    """Every intermediate result of one forward pass over a batch, in network coordinates, filled in stage order.

    The predictor gets it back with ``return_stages=True``; the golden tests compare its fields with detectron2's and
    give :meth:`DensePoseRCNN.forward` a record holding a golden previous stage to check the next one alone.
    """

    image_sizes: Sequence[tuple[int, int]]  # (h, w) of each resized image inside the padded batch
    batch: torch.Tensor | None = None  # (B, 3, H, W) normalised, zero-padded BGR
    features: dict[str, torch.Tensor] | None = None  # FPN p2..p6
    proposal_boxes: list[torch.Tensor] | None = None  # per image, best objectness first
    proposal_logits: list[torch.Tensor] | None = None
    box_features: torch.Tensor | None = None  # box head output for the proposals of every image (concatenated)
    class_logits: torch.Tensor | None = None
    box_deltas: torch.Tensor | None = None
    detections: list[Detections] | None = None
    densepose_boxes: list[torch.Tensor] | None = None  # per image, the detections' boxes that go through the DensePose head
    decoded: torch.Tensor | None = None  # the DensePose decoder's stride-4 map
    densepose_pooled: torch.Tensor | None = None  # 28x28 ROIAlign of every DensePose box (concatenated)
    densepose_head: torch.Tensor | None = None
    charts: dict[str, torch.Tensor] | None = None  # coarse_segm, fine_segm, u, v: one row per DensePose box (concatenated)


class DensePoseRCNN(nn.Module):
    """Generalized R-CNN with the DensePose chart head; inputs are normalised, padded BGR batches."""

    def __init__(self, widths: Widths, cfg: DensePoseConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DensePoseConfig()
        self.widths = widths
        if widths.num_anchors != len(self.cfg.anchor_ratios):
            raise CheckpointError(
                f"the checkpoint's RPN has {widths.num_anchors} anchors per location but the config has "
                f"{len(self.cfg.anchor_ratios)} aspect ratios"
            )
        self.backbone = FPN(widths, self.cfg.stride_in_1x1)
        self.proposal_generator = RPN(widths)
        self.roi_heads = ROIHeads(widths, self.cfg)
        self.register_buffer("pixel_mean", torch.tensor(self.cfg.pixel_mean).reshape(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(self.cfg.pixel_std).reshape(-1, 1, 1), persistent=False)

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, torch.Tensor], cfg: DensePoseConfig | None = None, *, source: str = "checkpoint"
    ) -> DensePoseRCNN:
        """Build with widths from ``state``'s shapes and load it strictly (missing/unexpected keys are named)."""
        from posevid.utils.checkpoint import load_into

        model = cls(widths_from_state_dict(state, source), cfg)
        load_into(model, {k: v.float() for k, v in state.items()}, what="DensePose R-CNN (densepose_rcnn_R_50_FPN_s1x)", source=source)
        return model.eval()

    # ---- input ---------------------------------------------------------------------------------
    def normalize_and_pad(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(3, h, w)`` float BGR images -> one zero-padded ``(B, 3, H, W)`` batch, H and W multiples of 32."""
        div = self.cfg.size_divisibility
        h = max(int(im.shape[1]) for im in images)
        w = max(int(im.shape[2]) for im in images)
        h, w = (h + div - 1) // div * div, (w + div - 1) // div * div
        mean, std = self.pixel_mean.to(images[0].device), self.pixel_std.to(images[0].device)
        batch = images[0].new_zeros((len(images), 3, h, w), dtype=torch.float32)
        for i, im in enumerate(images):
            batch[i, :, : im.shape[1], : im.shape[2]] = (im.float() - mean) / std
        return batch

    # ---- stages --------------------------------------------------------------------------------
    def features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        dtype = next(self.parameters()).dtype
        return self.backbone(batch.to(dtype))

    def propose(
        self, features: Mapping[str, torch.Tensor], image_sizes: Sequence[tuple[int, int]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """RPN: per image the (boxes, objectness logits) kept after per-level top-k and NMS, best first."""
        cfg, head = self.cfg, self.proposal_generator.rpn_head
        all_boxes, all_logits, all_levels = [], [], []
        for lvl, (name, stride) in enumerate(zip(FPN_LEVELS, FPN_STRIDES, strict=True)):
            t = F.relu(head.conv(features[name]))
            logits = head.objectness_logits(t)
            deltas = head.anchor_deltas(t)
            b, a, h, w = logits.shape
            logits = logits.permute(0, 2, 3, 1).reshape(b, -1).float()
            deltas = deltas.reshape(b, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4).float()
            base = cell_anchors(cfg.anchor_sizes[lvl], cfg.anchor_ratios).to(logits.device)
            anchors = grid_anchors(base, (h, w), stride, cfg.anchor_offset)
            boxes = apply_deltas(deltas.reshape(-1, 4), anchors.repeat(b, 1), cfg.rpn_bbox_weights).reshape(b, -1, 4)
            k = min(logits.shape[1], cfg.rpn_pre_nms_topk)
            top_logits, top_idx = logits.topk(k, dim=1)
            all_boxes.append(torch.gather(boxes, 1, top_idx[..., None].expand(-1, -1, 4)))
            all_logits.append(top_logits)
            all_levels.append(torch.full((k,), lvl, dtype=torch.int64, device=logits.device))
        boxes_b, logits_b, levels = torch.cat(all_boxes, 1), torch.cat(all_logits, 1), torch.cat(all_levels)
        out = []
        for i, size in enumerate(image_sizes):
            boxes, logits, lv = boxes_b[i], logits_b[i], levels
            valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(logits)
            if not bool(valid.all()):
                boxes, logits, lv = boxes[valid], logits[valid], lv[valid]
            boxes = clip_boxes(boxes, size)
            keep = nonempty(boxes, cfg.rpn_min_size)
            if not bool(keep.all()):
                boxes, logits, lv = boxes[keep], logits[keep], lv[keep]
            keep = batched_nms(boxes, logits, lv, cfg.rpn_nms_thresh)[: cfg.rpn_post_nms_topk]  # NMS per pyramid level
            out.append((boxes[keep], logits[keep]))
        return out

    def _pool(
        self, maps: Sequence[torch.Tensor], strides: Sequence[int], boxes: Sequence[torch.Tensor], size: int, ratio: int
    ) -> torch.Tensor:
        """ROIPooler: ROIAlign of every box on its FPN level (canonical 224 px at level 4), in input box order."""
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)])
        scales = [1.0 / s for s in strides]
        if len(maps) == 1:
            return roi_align(maps[0], rois, size, scales[0], ratio)
        min_level, max_level = int(-math.log2(scales[0])), int(-math.log2(scales[-1]))
        levels = pooler_levels(rois[:, 1:], min_level, max_level)
        out = maps[0].new_zeros((rois.shape[0], maps[0].shape[1], size, size))
        for lvl, fmap in enumerate(maps):
            idx = torch.nonzero(levels == lvl).flatten()
            if idx.numel():
                out[idx] = roi_align(fmap, rois[idx], size, scales[lvl], ratio)
        return out

    def box_outputs(
        self, features: Mapping[str, torch.Tensor], proposals: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Box head on the proposals of every image (concatenated): (features, class logits, box deltas)."""
        cfg, heads = self.cfg, self.roi_heads
        maps = [features[n] for n in FPN_LEVELS[:4]]
        pooled = self._pool(maps, FPN_STRIDES[:4], proposals, cfg.box_pooler_resolution, cfg.box_sampling_ratio)
        x = heads.box_head(pooled)
        return x, heads.box_predictor.cls_score(x), heads.box_predictor.bbox_pred(x)

    def detect(
        self, logits: torch.Tensor, deltas: torch.Tensor, proposals: Sequence[torch.Tensor], image_sizes: Sequence[tuple[int, int]]
    ) -> list[Detections]:
        """Fast R-CNN inference: softmax, decode, clip, score threshold, per-class NMS, top-k per image."""
        cfg = self.cfg
        out = []
        start = 0
        for props, size in zip(proposals, image_sizes, strict=True):
            n = props.shape[0]
            scores = F.softmax(logits[start : start + n].float(), dim=-1)
            boxes = apply_deltas(deltas[start : start + n].float(), props, cfg.box_bbox_weights)
            start += n
            valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
            if not bool(valid.all()):
                boxes, scores = boxes[valid], scores[valid]
            scores = scores[:, :-1]
            k = boxes.shape[1] // 4
            boxes = clip_boxes(boxes.reshape(-1, 4), size).reshape(-1, k, 4)
            mask = scores > cfg.score_thresh
            inds = torch.nonzero(mask)
            boxes = boxes[inds[:, 0], 0] if k == 1 else boxes[mask]
            scores = scores[mask]
            keep = batched_nms(boxes, scores, inds[:, 1], cfg.nms_thresh)
            if cfg.detections_per_image >= 0:
                keep = keep[: cfg.detections_per_image]
            out.append(Detections(boxes[keep], scores[keep], inds[keep, 1]))
        return out

    def decode(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The DensePose decoder's stride-4 map."""
        return self.roi_heads.decoder(features)

    def densepose_pool(self, decoded: torch.Tensor, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
        """The DensePose head's 28x28 ROIAlign input for the boxes of every image (concatenated)."""
        cfg = self.cfg
        return self._pool([decoded], [cfg.decoder_common_stride], boxes, cfg.dp_pooler_resolution, cfg.dp_sampling_ratio)

    # ---- the one composition ---------------------------------------------------------------------
    @torch.no_grad()
    def forward(
        self, stages: Stages, *, select: Callable[[list[Detections]], list[torch.Tensor]] | None = None, until: str = STAGE_ORDER[-1]
    ) -> Stages:
        """Run the missing stages of ``stages`` in :data:`STAGE_ORDER` up to ``until``; returns a new, filled record.

        The run starts after the latest stage whose result ``stages`` already holds, and uses every given field as it
        is: a normalised batch runs everything; a record with the golden proposals (and our features) starts at the
        box head. ``select(detections)`` returns, per image, the boxes that go through the DensePose head (the
        predictor: the kept and chosen instances); by default every detection does.
        """
        s = replace(stages)
        given = [i for i, name in enumerate(STAGE_ORDER) if getattr(s, _RESULT.get(name, name)) is not None]
        for name in STAGE_ORDER[max(given, default=-1) + 1 : STAGE_ORDER.index(until) + 1]:
            need = functools.partial(_need, s, name)
            if name == "features":
                s.features = self.features(need("batch"))
            elif name == "proposals":
                proposals = self.propose(need("features"), s.image_sizes)
                s.proposal_boxes, s.proposal_logits = [p[0] for p in proposals], [p[1] for p in proposals]
            elif name == "box_head":
                s.box_features, s.class_logits, s.box_deltas = self.box_outputs(need("features"), need("proposal_boxes"))
            elif name == "detections":
                s.detections = self.detect(need("class_logits"), need("box_deltas"), need("proposal_boxes"), s.image_sizes)
            elif name == "densepose_boxes":
                detections = need("detections")
                s.densepose_boxes = select(detections) if select is not None else [d.boxes for d in detections]
            elif name == "decoded":
                s.decoded = self.decode(need("features"))
            elif name == "densepose_pooled":
                s.densepose_pooled = self.densepose_pool(need("decoded"), need("densepose_boxes"))
            elif name == "densepose_head":
                s.densepose_head = self.roi_heads.densepose_head(need("densepose_pooled"))
            elif name == "charts":
                s.charts = self.roi_heads.densepose_predictor(need("densepose_head"))
        return s


__all__ = ["STAGE_ORDER", "DensePoseRCNN", "Detections", "FrozenBatchNorm2d", "Stages", "Widths", "widths_from_state_dict"]
