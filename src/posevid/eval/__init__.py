"""Evaluation of generated videos: pose accuracy, CLIP consistency/alignment, paired PSNR/SSIM/LPIPS/FID/FVD.

Library entry point: :func:`evaluate` with an :class:`EvalConfig`; the maths lives in small modules that
work on plain arrays (:mod:`~posevid.eval.paired`, :mod:`~posevid.eval.frechet`,
:mod:`~posevid.eval.pose_accuracy`, :mod:`~posevid.eval.clip`), the feature networks in
:mod:`posevid.eval.nets`. Protocols: ``docs/evaluation.md``.
"""

from posevid.eval.runner import ALL_METRICS, EvalConfig, evaluate, resolve_metrics

__all__ = ["ALL_METRICS", "EvalConfig", "evaluate", "resolve_metrics"]
