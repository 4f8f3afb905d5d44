"""The only module of the app that calls into posevid's pose code and pipelines.

Why one thin module: the UI (``ui.py``) deals in form values and file paths; everything that knows how
the pose extractor, the Follow-Your-Pose pipeline or the animate task's backbones are called lives here, so a
change in their signatures is fixed in one place. Each ``run_*`` function takes plain values, writes
its files into the job's own folder (mp4 + gif + JSON sidecar) and returns a small dict of results.

Models are loaded once per task key (backbone, path, device, dtype, ...) and reused across requests (:class:`ModelCache`);
a pipeline object keeps per-call state (scheduler timesteps), so each cached model also carries a lock
and two requests never run the same pipeline object at the same time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from posevid.errors import InputError
from posevid.tasks.common import ModelCache  # noqa: F401  (the app's model cache is the tasks')
from posevid.tasks.generate import GenerateSettings
from posevid.tasks.pose import PoseSettings
from posevid.utils.progress import Progress, no_progress

log = logging.getLogger("posevid.app")

# ---------------------------------------------------------------------------------------------------
# Model cache, device and dtype, schedulers


def placement(device: str | None = None, dtype: str | None = None) -> dict[str, str]:
    """The app's ``--device``/``--dtype`` as task settings: only those given, so a task keeps its own default for the
    others (animate's dtype ``auto`` = the backbone's GPU dtype, fp32 on the CPU, as ``posevid animate``)."""
    return {name: value for name, value in (("device", device), ("dtype", dtype)) if value is not None}


def scheduler_names(kind: str) -> list[str]:
    """Scheduler choices of a pipeline, the reference's first (the one table: posevid.pipelines.schedulers)."""
    from posevid.pipelines.schedulers import DREAMPOSE_SCHEDULERS, FYP_SCHEDULERS

    return list(FYP_SCHEDULERS if kind == "followyourpose" else DREAMPOSE_SCHEDULERS)


# ---------------------------------------------------------------------------------------------------
# Pose


def run_pose(video: Path, out_dir: Path, *, style: str = PoseSettings.style, smoothing: bool = not PoseSettings.no_smooth,
             stride: int = PoseSettings.stride, size: str | None = PoseSettings.size, progress: Progress = no_progress) -> dict[str, Any]:
    """Keypoints + skeleton video + overlay video for one uploaded clip: the ``posevid pose`` task, files in ``out_dir``.
    ``size``: WxH as ``posevid pose --size`` takes it, None = the video's own."""
    from posevid.tasks.pose import pose

    settings = PoseSettings(video=str(video), out=str(out_dir), style=style, no_smooth=not smoothing, stride=max(1, int(stride)),
                            size=size, overlay=True, quiet=True)  # fmt: skip
    # overlay=True: the app shows it (the CLI writes it only with --overlay since issue 14)
    result = pose(settings, progress=progress)
    meta = result.meta
    fps = float(meta.get("fps") or 0) or None
    return {"keypoints": out_dir / "keypoints.json", "skeleton": out_dir / "skeleton.mp4", "overlay": out_dir / "overlay.mp4",
            "sidecar": out_dir / "pose.json", "detection_rate": float(meta["detection_rate"]), "num_frames": int(meta["num_frames"]),
            "fps": fps}  # fmt: skip


def skeleton_from_pose_input(pose_file: Path, pose_type: str, out_dir: Path, *, style: str = "fyp",
                             progress: Progress = no_progress) -> Path:
    """Turn what the user gave as pose (raw video, skeleton video, keypoints file) into a skeleton video.

    The pose module's one implementation (:func:`posevid.pose.skeleton_video_for`, what ``posevid generate --pose``
    uses), written into the job folder: a raw video gets the same keypoints and drawing as ``posevid pose``.
    """
    from posevid.pose.skeleton import skeleton_video_for

    return skeleton_video_for(pose_file, style=style, cache_dir=out_dir, progress=False, kind=pose_type,
                              on_extract=lambda: progress("pose", 0, 1))  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Text -> video (Follow-Your-Pose)


def run_text_to_video(settings: GenerateSettings, *, out_dir: Path, models: ModelCache | None = None, pose_source: str | None = None,
                      progress: Progress = no_progress) -> dict[str, Any]:
    """The ``posevid generate`` task for one request: mp4, gif, PNG frames, side-by-side mp4 and sidecar in ``out_dir``.

    ``settings.pose`` is the skeleton video. ``models`` is the app's cache: the task takes the pipeline's lock
    for the whole run, so two requests never run one pipeline object at once. ``progress`` is the job's
    :meth:`~posevid.app.jobs.Job.progress`, called at every denoising step; it raises
    :class:`~posevid.app.jobs.JobCancelled` when the user cancelled, which stops the loop there and leaves no
    half-written outputs (the task writes them atomically).
    """
    from dataclasses import replace

    from posevid.tasks.generate import generate

    if not settings.prompts or not all(p and p.strip() for p in settings.prompts):
        raise InputError("prompt is empty", hint="describe the video to generate")
    mp4, sbs = out_dir / "result.mp4", out_dir / "side_by_side.mp4"
    extra = {**settings.extra, "pose_source": pose_source or Path(str(settings.pose)).name}
    settings = replace(settings, out=str(mp4), gif=True, frames_dir=str(out_dir / "frames"), side_by_side_out=str(sbs), quiet=True,
                       extra=extra)  # the side-by-side is the task's own (posevid generate --side-by-side), written with the rest
    result = generate(settings, models=models, progress=progress)
    frames = sum(f.suffix == ".png" for f in result.files[0])
    return {"mp4": mp4, "gif": mp4.with_suffix(".gif"), "side_by_side": sbs, "sidecar": result.sidecars[0], "num_frames": frames}


# ---------------------------------------------------------------------------------------------------
# Image -> video (any backbone: posevid.tasks.backbones)


def run_image_to_video(models: ModelCache | None, *, out_dir: Path, progress: Progress = no_progress, **values: Any) -> dict[str, Any]:
    """Reference image + pose input (DensePose folder or driving video for DreamPose; a driving video for the other
    backbones) -> mp4, gif and sidecar in ``out_dir``.

    ``values``: the ``posevid animate`` task's settings as flat values (``backbone``, ``image``, ``driving_video``,
    ``model``, ``seed`` and the backbone's own options, e.g. DreamPose's ``s1``, ``densepose``); what is not given
    keeps the task's default (:class:`~posevid.tasks.animate.AnimateSettings` and the backbone's options dataclass).
    It runs the task itself (:func:`posevid.tasks.animate.animate`), so the app and the CLI give the same frames and a
    driving video goes through the same cached DensePose extraction. ``progress`` is the job's
    :meth:`~posevid.app.jobs.Job.progress`, so a Cancel stops any stage within a batch, frame or denoising step and
    leaves no output or cache entry.
    """
    from posevid.tasks.animate import animate, settings_from_values

    settings = settings_from_values({**values, "out": str(out_dir / "result.mp4"), "quiet": True})
    result = animate(settings, models=models, progress=progress, note=lambda msg: log.info("image -> video: %s", msg))
    return {"mp4": result.video, "gif": result.gif, "sidecar": result.sidecar, "num_frames": len(result.frame_files)}
