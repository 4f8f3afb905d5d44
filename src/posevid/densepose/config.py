"""Test-time settings of DensePose R-CNN (``densepose_rcnn_R_50_FPN_s1x``); widths are *not* here.

Every default is the published model's value (detectron2 defaults + ``Base-DensePose-RCNN-FPN.yaml``).
Channel widths are read from the checkpoint's tensor shapes instead (see :mod:`posevid.densepose.model`),
so a reduced-width checkpoint loads without a config. :meth:`DensePoseConfig.from_yaml` reads the same
settings from a detectron2 config dump (tests use it on the golden's ``config.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class DensePoseConfig:
    # input (INPUT.*, MODEL.PIXEL_*)
    min_size: int = 800
    max_size: int = 1333
    input_format: str = "BGR"
    pixel_mean: tuple[float, float, float] = (103.53, 116.28, 123.675)
    pixel_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    size_divisibility: int = 32
    # backbone (MODEL.RESNETS.*; the depth comes from the checkpoint)
    stride_in_1x1: bool = True
    # RPN (MODEL.ANCHOR_GENERATOR.*, MODEL.RPN.*)
    anchor_sizes: tuple[float, ...] = (32, 64, 128, 256, 512)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    anchor_offset: float = 0.0
    rpn_nms_thresh: float = 0.7
    rpn_pre_nms_topk: int = 1000
    rpn_post_nms_topk: int = 1000
    rpn_min_size: float = 0.0
    rpn_bbox_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    # box head (MODEL.ROI_BOX_HEAD.*, MODEL.ROI_HEADS.*, TEST.*)
    box_pooler_resolution: int = 7
    box_sampling_ratio: int = 2
    box_bbox_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    # DensePose (MODEL.ROI_DENSEPOSE_HEAD.*)
    dp_pooler_resolution: int = 28
    dp_sampling_ratio: int = 2
    dp_up_scale: int = 2
    decoder_common_stride: int = 4

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> DensePoseConfig:
        """Settings from a detectron2 config dump (``config.yaml``); unknown keys are ignored."""
        from posevid.utils.config import read_yaml

        cfg = read_yaml(path, what="DensePose config", hint="pass a detectron2 config dump (config.yaml)")
        m, i, t = cfg["MODEL"], cfg["INPUT"], cfg["TEST"]
        rpn, box, heads, dp = m["RPN"], m["ROI_BOX_HEAD"], m["ROI_HEADS"], m["ROI_DENSEPOSE_HEAD"]
        anchors = m["ANCHOR_GENERATOR"]
        return cls(
            min_size=int(i["MIN_SIZE_TEST"]),
            max_size=int(i["MAX_SIZE_TEST"]),
            input_format=str(i["FORMAT"]),
            pixel_mean=tuple(float(v) for v in m["PIXEL_MEAN"]),
            pixel_std=tuple(float(v) for v in m["PIXEL_STD"]),
            stride_in_1x1=bool(m["RESNETS"]["STRIDE_IN_1X1"]),
            anchor_sizes=tuple(float(s[0]) for s in anchors["SIZES"]),
            anchor_ratios=tuple(float(r) for r in anchors["ASPECT_RATIOS"][0]),
            anchor_offset=float(anchors["OFFSET"]),
            rpn_nms_thresh=float(rpn["NMS_THRESH"]),
            rpn_pre_nms_topk=int(rpn["PRE_NMS_TOPK_TEST"]),
            rpn_post_nms_topk=int(rpn["POST_NMS_TOPK_TEST"]),
            rpn_min_size=float(m["PROPOSAL_GENERATOR"]["MIN_SIZE"]),
            rpn_bbox_weights=tuple(float(v) for v in rpn["BBOX_REG_WEIGHTS"]),
            box_pooler_resolution=int(box["POOLER_RESOLUTION"]),
            box_sampling_ratio=int(box["POOLER_SAMPLING_RATIO"]),
            box_bbox_weights=tuple(float(v) for v in box["BBOX_REG_WEIGHTS"]),
            score_thresh=float(heads["SCORE_THRESH_TEST"]),
            nms_thresh=float(heads["NMS_THRESH_TEST"]),
            detections_per_image=int(t["DETECTIONS_PER_IMAGE"]),
            dp_pooler_resolution=int(dp["POOLER_RESOLUTION"]),
            dp_sampling_ratio=int(dp["POOLER_SAMPLING_RATIO"]),
            dp_up_scale=int(dp["UP_SCALE"]),
            decoder_common_stride=int(dp["DECODER_COMMON_STRIDE"]),
        )

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


__all__ = ["DensePoseConfig"]
