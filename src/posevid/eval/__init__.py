"""Evaluation of generated videos: pose accuracy, CLIP consistency/alignment, paired PSNR/SSIM/LPIPS/FID/FVD.

Library entry point: :func:`evaluate` with an :class:`EvalConfig`; the maths lives in small modules that
work on plain arrays (:mod:`~posevid.eval.paired`, :mod:`~posevid.eval.frechet`,
:mod:`~posevid.eval.pose_accuracy`, :mod:`~posevid.eval.clip`), the feature networks in
:mod:`posevid.eval.nets`. Protocols: ``docs/evaluation.md``.

The names below are imported on first use (PEP 562), so that reading a default of :mod:`posevid.eval.defaults` (the
command line does, to build its flags) does not import numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ALL_METRICS", "EvalConfig", "evaluate", "resolve_metrics"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("posevid.eval.config" if name == "EvalConfig" else "posevid.eval.runner"), name)
    raise AttributeError(f"module 'posevid.eval' has no attribute {name!r}")
