"""DreamPose's sampling defaults, defined once and torch-free.

Why here: :meth:`DreamPosePipeline.__call__ <posevid.pipelines.dreampose.DreamPosePipeline.__call__>` (a library call)
and the ``dreampose`` backbone's options (``tasks/backbones/dreampose.py``: ``DreamPoseOptions``, whose flags and app
controls show them) take the same parameters; the options read these values, and a pipeline must not import a task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DreamPoseSamplingDefaults:
    s1: float = 8.0  # image guidance: the README demo's (test.py's own default is 0.5)
    s2: float = 3.0  # pose guidance: the README demo's (test.py's own default is 0.5)
    num_inference_steps: int = 100
    frame_batch_size: int = 1  # frames per UNet call; 1 is the reference's loop


DREAMPOSE_DEFAULTS = DreamPoseSamplingDefaults()

__all__ = ["DREAMPOSE_DEFAULTS", "DreamPoseSamplingDefaults"]
