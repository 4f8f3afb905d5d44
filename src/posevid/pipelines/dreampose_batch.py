"""Deprecated: frame batches are ``DreamPosePipeline.__call__(frame_batch_size=K)`` now (one loop)."""

from __future__ import annotations

import warnings
from typing import Any


def generate_batched(pipe, image, poses, *, batch_size: int = 4, **kwargs: Any):
    """``pipe(image, poses, frame_batch_size=batch_size, **kwargs)``, with a DeprecationWarning."""
    warnings.warn("generate_batched is deprecated: call DreamPosePipeline(..., frame_batch_size=K)", DeprecationWarning, stacklevel=2)
    return pipe(image, poses, frame_batch_size=batch_size, **kwargs)


__all__ = ["generate_batched"]
