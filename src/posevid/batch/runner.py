"""The adapter between a batch job and the code that makes the video: the ONLY place that knows how.

A job's flags are parsed by the command's own ``parse_args`` (with ``--out OUT/<id>.mp4`` added), turned into the
task's settings by the command's ``collect_settings`` and run by the task (:func:`posevid.tasks.generate.generate`,
:func:`posevid.tasks.animate.animate`, :func:`posevid.tasks.pose.pose`), exactly what ``posevid generate`` / ``posevid
animate`` / ``posevid pose`` do. Models are
kept between jobs by passing the tasks one :class:`~posevid.tasks.common.ModelCache` (``models=``); jobs are sorted
by the task's own ``model_key``, so those sharing a pipeline run one after another. The task builds the cache key
from what changes a loaded pipeline (model, device, dtype, the untrained-temporal opt-in,
and for generate the run options applied in place: attention, channels-last, compile, VAE slicing/tiling,
offload), so jobs share a pipeline only when it is set up exactly as each needs. See docs/scale.md.

A job is finished when its video and its JSON sidecar both exist (the tasks write every file of a result
together, atomically, the sidecar last), which is what :func:`is_done` checks; a pose job writes the folder
``OUT/<id>/`` of ``posevid pose --out`` and is finished when its ``pose.json`` is there.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from pathlib import Path
from typing import Any

from posevid.batch.jobs import Job
from posevid.errors import PosevidError
from posevid.tasks.common import ModelCache


def output_path(job: Job, out_dir: Path) -> Path:
    """Where the job's outputs go: ``OUT/<id>.mp4`` (its sidecar beside it), or the folder ``OUT/<id>/`` of a pose job."""
    return out_dir / job.id if job.task == "pose" else out_dir / f"{job.id}.mp4"


def is_done(job: Job, out_dir: Path) -> bool:
    """Output and sidecar both present (the sidecar is moved into place last)."""
    out = output_path(job, out_dir)
    if job.task == "pose":
        return (out / "pose.json").is_file()
    return out.is_file() and out.with_suffix(".json").is_file()


def model_cache(keep_models: int = 1) -> ModelCache:
    """The cache the jobs of one process share: the last ``keep_models`` pipelines (jobs are sorted by model)."""
    return ModelCache("posevid.batch", capacity=keep_models)


def job_settings(job: Job, video: Path) -> Any:
    """The task's settings for ``job`` writing ``video``: the command's ``parse_args`` then its ``collect_settings``."""
    command = importlib.import_module(f"posevid.commands.{job.task}")
    return command.collect_settings(command.parse_args([*job.argv, "--out", str(video)]))


def model_key(job: Job) -> tuple:
    """The sort key that groups jobs able to share a loaded model: the task's own cache key (``tasks.X.model_key``).

    A job whose key cannot be computed (a config file or a device that is not there) sorts by its task alone; it
    fails with its one-line error when it runs.
    """
    task = importlib.import_module(f"posevid.tasks.{job.task}")
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # a config's warnings are printed when the job runs, not here
            return (job.task, repr(task.model_key(job_settings(job, Path(f"{job.id}.mp4")))))
    except PosevidError:
        return (job.task, "")


def run_job(job: Job, out_dir: Path, cache: ModelCache, *, quiet: bool = True) -> list[Path]:
    """Make the job's video in ``out_dir``; returns the files written. Raises what the task raises."""
    video = output_path(job, out_dir)
    task = importlib.import_module(f"posevid.tasks.{job.task}")
    hush = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with hush:
        settings = job_settings(job, video)
        if quiet:
            settings.quiet = True  # one bar per job and step (or frame) is noise in a batch log
        def warn(msg: str) -> None:
            print(f"posevid batch: job {job.id}: warning: {msg}", file=sys.stderr)

        if job.task == "generate":
            task.generate(settings, models=cache, warn=warn)
        elif job.task == "animate":
            task.animate(settings, models=cache)
        else:
            return task.pose(settings, warn=warn).files  # no model to keep: each job builds its estimator
    return [p for p in (video, video.with_suffix(".json"), video.with_suffix(".gif")) if p.is_file()]
