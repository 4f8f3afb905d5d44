"""Training-data preparation, as a library call: :func:`prepare` with :class:`PrepareSettings` (``posevid prepare``).

The work is :func:`posevid.data.prepare.prepare_dataset`'s; this task checks the settings with the flags' names
(ranges, options that need ``--densepose`` or ``--engine ray``) and turns them into its arguments.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from posevid.data.defaults import PREPARE_DEFAULTS as D  # the defaults the library shares, defined once one layer down
from posevid.data.prepare_ray import RaySettings
from posevid.densepose.options import DensePoseOptions  # torch-free

_DENSEPOSE = DensePoseOptions()  # the DensePose model's defaults, defined once there


@dataclass
class PrepareSettings:
    """Everything ``posevid prepare`` can be told; the defaults here are the only ones (those the library shares are
    :data:`posevid.data.defaults.PREPARE_DEFAULTS`', the Ray sizes :class:`~posevid.data.prepare_ray.RaySettings`' and the
    DensePose model's :class:`~posevid.densepose.options.DensePoseOptions`', read here)."""

    src: str | None = None
    out: str | None = None
    kind: str = D.kind
    captions: str | None = None
    poses: bool | None = D.poses
    min_frames: int = D.min_frames
    frames_per_video: int = D.frames_per_video
    pose_workers: int | None = D.pose_workers
    quiet: bool = False
    # DensePose for DreamPose (--kind ubc from videos)
    densepose: bool = False
    densepose_weights: str | os.PathLike | None = _DENSEPOSE.weights
    densepose_device: str = _DENSEPOSE.device
    densepose_dtype: str = _DENSEPOSE.dtype
    densepose_batch_size: int = _DENSEPOSE.batch_size
    densepose_person: str = _DENSEPOSE.person
    densepose_short_side: int | None = _DENSEPOSE.short_side
    # the Ray engine
    engine: str = D.engine
    ray_address: str | None = RaySettings.address
    ray_num_cpus: int | None = RaySettings.num_cpus
    ray_stage_cpus: float = RaySettings.stage_cpus
    ray_model_cpus: float = RaySettings.model_cpus
    ray_model_gpus: float = RaySettings.model_gpus
    ray_model_concurrency: int | None = RaySettings.model_concurrency


_RAY_ONLY = ("ray_address", "ray_num_cpus", "ray_model_concurrency")  # options that mean nothing without --engine ray


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def densepose_options(settings: PrepareSettings) -> DensePoseOptions:
    """The DensePose model options of ``settings`` (unchecked: ``prepare_dataset`` checks them, naming the flags)."""
    return DensePoseOptions(**{f.name: getattr(settings, f"densepose_{f.name}") for f in dataclasses.fields(DensePoseOptions)})


def validate(settings: PrepareSettings) -> None:
    """The checks of the flags' values and combinations, named as the user typed them."""
    from posevid.errors import InputError

    for name, low in (("pose_workers", 1), ("ray_num_cpus", 1), ("ray_model_concurrency", 1), ("ray_model_gpus", 0)):
        value = getattr(settings, name)
        if value is not None and value < low:
            raise InputError(f"{_flag(name)} must be >= {low}, got {value}")
    for name in ("ray_stage_cpus", "ray_model_cpus"):
        if getattr(settings, name) <= 0:
            raise InputError(f"{_flag(name)} must be > 0, got {getattr(settings, name)}")
    if not settings.densepose:
        defaults = vars(_DENSEPOSE)
        given = [f"--densepose-{k.replace('_', '-')}" for k, v in vars(densepose_options(settings)).items() if v != defaults[k]]
        if given:
            raise InputError(f"{', '.join(given)} need(s) --densepose", hint="add --densepose or drop the option")
    if settings.engine == "ray":
        if settings.pose_workers is not None:
            raise InputError("--pose-workers applies to --engine plain", hint="Ray runs one pose process per clip; see --ray-model-*")
    else:
        given = [_flag(name) for name in _RAY_ONLY if getattr(settings, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)} need(s) --engine ray", hint="add --engine ray or drop the option")


def prepare(settings: PrepareSettings):
    """Run one ``posevid prepare``; returns :class:`posevid.data.prepare.PrepareResult` (``summary()`` says what was done)."""
    from posevid.data.prepare import prepare_dataset

    validate(settings)
    ray = None
    if settings.engine == "ray":
        ray = RaySettings(
            address=settings.ray_address, num_cpus=settings.ray_num_cpus, stage_cpus=settings.ray_stage_cpus,
            model_cpus=settings.ray_model_cpus, model_gpus=settings.ray_model_gpus, model_concurrency=settings.ray_model_concurrency,
        )  # fmt: skip
    return prepare_dataset(
        settings.src, settings.out, kind=settings.kind, captions=settings.captions, poses=settings.poses,
        min_frames=settings.min_frames, frames_per_video=settings.frames_per_video, progress=not settings.quiet,
        pose_workers=settings.pose_workers, engine=settings.engine, ray=ray,
        densepose=densepose_options(settings) if settings.densepose else None,
    )  # fmt: skip
