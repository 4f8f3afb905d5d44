"""The adapter between a batch job and the code that makes the video: the ONLY place that knows how.

A job's flags are parsed by the command's own parser (with ``--out OUT/<id>.mp4`` added), turned into the
task's settings by the command's ``collect_settings`` and run by the task (:func:`posevid.tasks.generate.generate`,
:func:`posevid.tasks.animate.animate`), exactly what ``posevid generate`` / ``posevid animate`` do. Models are
kept between jobs by passing the tasks one :class:`~posevid.tasks.common.ModelCache` (``models=``): the task
builds the cache key from what changes a loaded pipeline (model, device, dtype, the untrained-temporal opt-in,
and for generate the run options applied in place: attention, channels-last, compile, VAE slicing/tiling,
offload), so jobs share a pipeline only when it is set up exactly as each needs. See docs/scale.md.

A job is finished when its video and its JSON sidecar both exist (the tasks write every file of a result
together, atomically), which is what :func:`is_done` checks.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
from pathlib import Path

from posevid.batch.jobs import Job, command_parser
from posevid.tasks.common import ModelCache


def output_path(job: Job, out_dir: Path) -> Path:
    return out_dir / f"{job.id}.mp4"


def is_done(job: Job, out_dir: Path) -> bool:
    """Output and sidecar both present (the sidecar is written last)."""
    video = output_path(job, out_dir)
    return video.is_file() and video.with_suffix(".json").is_file()


def model_cache(keep_models: int = 1) -> ModelCache:
    """The cache the jobs of one process share: the last ``keep_models`` pipelines (jobs are sorted by model)."""
    return ModelCache("posevid.batch", capacity=keep_models)


def _run_option_dests() -> frozenset[str]:
    """Dests of generate's speed/memory flags: jobs that differ in them do not share a pipeline, so they sort apart."""
    from posevid.commands._flags import add_run_arguments

    p = argparse.ArgumentParser()
    add_run_arguments(p)
    return frozenset(a.dest for a in p._actions if a.option_strings and a.dest != "help")


def model_key(job: Job) -> tuple:
    """The sort key that groups jobs able to share a loaded model (the tasks make the cache key itself)."""
    ns = vars(command_parser(job.task).parse_args(job.argv))
    if job.task == "generate":
        variant = tuple(sorted((d, repr(ns[d])) for d in _run_option_dests() if d in ns))
        load = (ns.get("model"), ns.get("config"), ns.get("device", "auto"), ns.get("dtype", "fp32"))
    else:
        variant = ()
        load = (ns["model"], ns["epoch"], ns["custom_vae"], ns["clip"], ns["scheduler"], ns["device"], ns["dtype"])
    return (job.task, repr(load), variant)


def run_job(job: Job, out_dir: Path, cache: ModelCache, *, quiet: bool = True) -> list[Path]:
    """Make the job's video in ``out_dir``; returns the files written. Raises what the task raises."""
    parser = command_parser(job.task)
    video = output_path(job, out_dir)
    args = parser.parse_args([*job.argv, "--out", str(video)])
    command = importlib.import_module(f"posevid.commands.{job.task}")
    task = importlib.import_module(f"posevid.tasks.{job.task}")
    hush = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with hush:
        settings = command.collect_settings(args)
        if quiet:
            settings.quiet = True  # one bar per job and step (or frame) is noise in a batch log
        if job.task == "generate":
            task.generate(settings, models=cache, warn=lambda msg: print(f"posevid batch: job {job.id}: warning: {msg}", file=sys.stderr))
        else:
            task.animate(settings, models=cache)
    return [p for p in (video, video.with_suffix(".json"), video.with_suffix(".gif")) if p.is_file()]
