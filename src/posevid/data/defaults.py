"""The defaults of data preparation, defined once (numpy-free, so the command line can read them cheaply).

:func:`posevid.data.prepare.prepare_dataset` and ``posevid prepare`` (:class:`posevid.tasks.prepare.PrepareSettings`,
whose fields read them) share these; the building blocks cannot import the task, so they live here, one layer down.
The Ray engine's sizes are :class:`posevid.data.prepare_ray.RaySettings`' defaults, the DensePose model's
:class:`posevid.densepose.options.DensePoseOptions`' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("charades", "hdvila", "image-pose", "ubc")  # source layouts
ENGINES = ("plain", "ray")


@dataclass(frozen=True)
class PrepareDefaults:
    kind: str = "charades"  # charades | hdvila | image-pose | ubc
    poses: bool | None = None  # None: extract poses for image-pose only
    min_frames: int = 1  # skip clips with fewer frames
    frames_per_video: int = 4  # image-pose: evenly spaced frames per video
    pose_workers: int | None = None  # None: extract_keypoints' own choice
    engine: str = "plain"  # plain | ray


PREPARE_DEFAULTS = PrepareDefaults()
