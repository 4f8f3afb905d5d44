"""The defaults of evaluation, defined once (no numpy or torch, so the command line can read them cheaply).

:class:`posevid.eval.config.EvalConfig` (the library), the metric functions that take the same parameters
(:func:`~posevid.eval.pose_accuracy.pose_accuracy`, :func:`~posevid.eval.runner.fvd_clips`, the CLIP model) and
``posevid eval`` (:class:`posevid.tasks.eval.EvalSettings`, an EvalConfig plus its report files) share these; the building blocks
cannot import the task, so they live here, one layer down.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalDefaults:
    metrics: str = "auto"  # auto | all | a comma list
    pose_estimator: str = "auto"  # re-detects poses on the generated frames
    pose_fit: str = "auto"  # auto | stretch | center-crop | pad
    pose_start: int = 0
    pose_stride: int = 1
    pose_threshold: float = 0.3  # a joint counts as visible / detected above this score
    pck_ref: str = "box"  # box | torso
    clip: str = "openai/clip-vit-base-patch32"  # CLIP ViT-B/32, hub id or folder
    fvd_clip_length: int = 16  # frames per FVD clip
    fvd_size: int = 224  # FVD clip resolution
    batch_size: int = 16  # frames per network forward
    device: str = "auto"


EVAL_DEFAULTS = EvalDefaults()
