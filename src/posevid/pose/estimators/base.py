"""One interface for every pose estimator, and a registry to pick one by name.

An estimator takes one RGB uint8 frame ``(H, W, 3)`` and returns ``(P, K, 3)`` keypoints (x, y in pixels of
that frame, score), ``P`` = persons found (0 when nobody). ``reset()`` forgets the tracking state of video
mode (call it between videos); ``close()`` frees native resources (also via ``with``).

Adding an estimator (e.g. an ``mmpose`` wrapper when that library is installed)::

    @register_estimator("mmpose")
    def _make(**opts): return MyEstimator(**opts)

The factory is imported lazily, so optional back-ends cost nothing until used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from posevid.errors import InputError


@runtime_checkable
class PoseEstimator(Protocol):
    name: str
    keypoint_format: str

    def __call__(self, rgb_frame: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class EstimatorBase:
    """Convenience base: context manager and no-op reset/close."""

    name = "base"
    keypoint_format = "coco17"

    def reset(self) -> None:  # noqa: B027 - optional hook
        pass

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_REGISTRY: dict[str, Callable[..., PoseEstimator]] = {}
_LAZY: dict[str, str] = {
    "mediapipe": "posevid.pose.estimators.mediapipe_pose:MediaPipePose",
    "mediapipe-holistic": "posevid.pose.estimators.mediapipe_holistic:MediaPipeHolistic",
    "dwpose": "posevid.pose.estimators.rtmpose:make_dwpose",
    "rtmpose": "posevid.pose.estimators.rtmpose:make_rtmpose",
}


def register_estimator(name: str) -> Callable[[Callable[..., PoseEstimator]], Callable[..., PoseEstimator]]:
    """Decorator registering a factory ``(**opts) -> PoseEstimator`` under ``name``."""

    def deco(factory: Callable[..., PoseEstimator]) -> Callable[..., PoseEstimator]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available_estimators() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))


def get_estimator(name: str, **opts) -> PoseEstimator:
    """Build the estimator called ``name`` with its options (one-line error for an unknown name)."""
    if name not in _REGISTRY and name in _LAZY:
        import importlib

        module, attr = _LAZY[name].split(":")
        _REGISTRY[name] = getattr(importlib.import_module(module), attr)
    if name not in _REGISTRY:
        raise InputError(f"unknown pose estimator '{name}'", hint=f"use one of {', '.join(available_estimators())}")
    return _REGISTRY[name](**opts)
