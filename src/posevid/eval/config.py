"""What :func:`posevid.eval.runner.evaluate` is asked: :class:`EvalConfig`, with no numpy or torch import.

Why its own light module: ``posevid eval``'s settings (:class:`posevid.tasks.eval.EvalSettings`) are this dataclass
plus the report files, and the command line reads its defaults to build its flags without importing the metrics.
The defaults themselves are :data:`~posevid.eval.defaults.EVAL_DEFAULTS`, which the metric functions read too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posevid.eval.defaults import EVAL_DEFAULTS as D


@dataclass
class EvalConfig:
    """The videos to score, the metrics and what they need; ``evaluate`` never changes the object it is given."""

    videos: list[str] = field(default_factory=list)
    reference: list[str] | None = None
    metrics: str = D.metrics
    pose: str | None = None
    pose_estimator: str = D.pose_estimator
    pose_fit: str = D.pose_fit
    pose_start: int = D.pose_start
    pose_stride: int = D.pose_stride
    pose_threshold: float = D.pose_threshold
    pck_ref: str = D.pck_ref
    clip: str | None = None  # None: the default CLIP (EVAL_DEFAULTS.clip), skipped with a note under metrics "all" when not at hand
    prompt: str | None = None
    reference_image: str | None = None
    lpips_weights: str | None = None
    lpips_backbone: str | None = None
    inception_weights: str | None = None
    i3d_weights: str | None = None
    fvd_clip_length: int = D.fvd_clip_length
    fvd_size: int = D.fvd_size
    max_frames: int | None = None
    batch_size: int = D.batch_size
    device: str = D.device  # auto = cuda > mps > cpu, resolved by evaluate()
    quiet: bool = False  # no progress bars
    notes: list[str] = field(default_factory=list)  # what was skipped or adapted; evaluate() reports its own copy
