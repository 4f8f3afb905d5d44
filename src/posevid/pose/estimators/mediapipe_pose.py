"""Default estimator: mediapipe BlazePose (legacy ``solutions.pose`` API), fully offline.

Why these settings: ``model_complexity=1`` is the only landmark model bundled in the wheel (0 and 2 try to
download and fail offline); video mode (``static_image_mode=False``) tracks the person between frames and
found someone in 98.6 % of Charades frames against 95.6 % for per-frame detection (72-84 fps with 2 processes on
a 2-core AMD EPYC; a 2.5 GHz Xeon runs the same model about half as fast).
One person per frame; 33 landmarks; score = landmark visibility.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import types
from collections.abc import Iterator

import numpy as np

from posevid.pose.estimators.base import EstimatorBase

_QUIET_LOCK = threading.Lock()
_QUIET_DEPTH = 0
_QUIET_SAVED: int | None = None


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide the C++ start-up warnings mediapipe prints straight to fd 2 (they are harmless and alarming).

    Thread-safe: nested or concurrent users share one redirection, undone when the last one leaves.
    """
    global _QUIET_DEPTH, _QUIET_SAVED
    if os.environ.get("POSEVID_DEBUG"):
        yield
        return
    with _QUIET_LOCK:
        if _QUIET_DEPTH == 0:
            try:
                sys.stderr.flush()
                _QUIET_SAVED = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except (OSError, ValueError):
                _QUIET_SAVED = None
        _QUIET_DEPTH += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_DEPTH -= 1
            if _QUIET_DEPTH == 0 and _QUIET_SAVED is not None:
                os.dup2(_QUIET_SAVED, 2)
                os.close(_QUIET_SAVED)
                _QUIET_SAVED = None


class _LazyPyplot(types.ModuleType):
    """Stands for ``matplotlib.pyplot`` in mediapipe's drawing helpers; imports the real one on first use."""

    def __getattr__(self, name: str):
        import importlib

        return getattr(importlib.import_module("matplotlib.pyplot"), name)


def import_mediapipe() -> types.ModuleType:
    """``import mediapipe`` without importing matplotlib (about 0.6 s CPU of its ~1 s import).

    Why: ``mediapipe/__init__`` imports ``solutions.drawing_utils``, which imports ``matplotlib.pyplot`` at the top
    for one 3-D plotting helper we never call; each pose worker process paid that on start-up. While mediapipe is
    imported, stand-ins take matplotlib's place in ``sys.modules``; they are removed right after, so a later
    ``import matplotlib`` gets the real package, and ``drawing_utils.plt`` imports it when first used. When
    matplotlib (or mediapipe) is already imported, this is a plain import.
    """
    if "mediapipe" in sys.modules or "matplotlib" in sys.modules:
        import mediapipe

        return mediapipe
    pyplot = _LazyPyplot("matplotlib.pyplot")
    stub = types.ModuleType("matplotlib")
    stub.pyplot = pyplot  # type: ignore[attr-defined]
    sys.modules["matplotlib"], sys.modules["matplotlib.pyplot"] = stub, pyplot
    try:
        import mediapipe
    finally:
        for name, module in (("matplotlib", stub), ("matplotlib.pyplot", pyplot)):
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return mediapipe


def landmarks_to_array(landmarks, width: int, height: int, score: float | None = None) -> np.ndarray:
    """mediapipe normalised landmarks -> ``(N, 3)`` float32 pixels; score = clipped visibility, or ``score`` for all."""
    rows = [(p.x * width, p.y * height, p.visibility if score is None else score) for p in landmarks.landmark]
    out = np.array(rows, dtype=np.float32)
    out[:, 2] = np.clip(out[:, 2], 0.0, 1.0)
    return out


class MediaPipePose(EstimatorBase):
    name = "mediapipe"
    keypoint_format = "blazepose33"
    _graph = ("pose", "Pose")  # mediapipe.solutions module and class built on the first frame

    def __init__(
        self,
        *,
        static_image_mode: bool = False,
        model_complexity: int = 1,
        smooth_landmarks: bool = True,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # silence mediapipe's C++ logging
        mp = import_mediapipe()

        self._opts = dict(
            static_image_mode=static_image_mode,
            model_complexity=model_complexity,
            smooth_landmarks=smooth_landmarks,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        # The graph is built on the first frame, under the quiet stderr: its threads log (absl, TFLite) for a
        # while after the constructor returns, and a graph built here printed those lines over the caller's output.
        module, graph = self._graph
        self._solution = getattr(getattr(mp.solutions, module), graph)
        self._pose = None
        self._quiet_calls = 5  # the graph's threads log during the first few frames

    def __call__(self, rgb_frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(rgb_frame, dtype=np.uint8)  # mediapipe needs C-contiguous input
        h, w = frame.shape[:2]
        if self._quiet_calls <= 0:
            result = self._pose.process(frame)
        else:  # the first calls build the graph and log its warnings
            with quiet_native_stderr():
                if self._pose is None:
                    self._pose = self._solution(**self._opts)
                result = self._pose.process(frame)
            self._quiet_calls -= 1
        return self._people(result, w, h)

    def _people(self, result, width: int, height: int) -> np.ndarray:
        """``(P, K, 3)`` keypoints of one mediapipe result (P = 0 or 1)."""
        if result.pose_landmarks is None:
            return np.zeros((0, 33, 3), np.float32)
        return landmarks_to_array(result.pose_landmarks, width, height)[None]

    def reset(self) -> None:
        if self._pose is not None:
            with quiet_native_stderr():
                self._pose.reset()
        self._quiet_calls = 5

    def close(self) -> None:
        if self._pose is not None:
            with quiet_native_stderr():
                self._pose.close()
            self._pose = None
