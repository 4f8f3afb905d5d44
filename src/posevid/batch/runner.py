"""The adapter between a batch job and the code that makes the video: the ONLY place that knows how.

Today it calls the command-level code: the job's flags are parsed by the command's own parser and the
command's ``run(args)`` is called, exactly what ``posevid generate`` / ``posevid animate`` would do, with
``--out OUT/<id>.mp4`` added. Models are kept between jobs by wrapping the two loaders those commands call
(``posevid.commands.generate.load_pipeline`` and ``DreamPosePipeline.from_pretrained``) while a job runs:
a job whose model, device, dtype and model-changing run options match the previous one's reuses its
pipeline. That wrapping is the part to drop when the use-case layer (``posevid.tasks``, with its own
model cache) lands: :func:`run_job` then builds the task's settings from the parsed arguments and calls the
task; nothing else in ``posevid.batch`` changes. See docs/scale.md. With the tasks API as drafted on the
``redesign`` branch (commit 9f472a8) that is, for generate::

    args = command_parser("generate").parse_args([*job.argv, "--out", str(video)])
    settings = posevid.commands.generate.collect_settings(args)          # -> GenerateSettings
    result = posevid.tasks.generate.generate(settings, models=cache)      # cache: tasks.common.ModelCache

(and the same for animate), with ``tasks.common.ModelCache`` replacing :class:`ModelCache` (its ``loads``
feeds the summary's ``model_loads``; it keeps every model, so ``--keep-models`` needs an eviction there).

A job is finished when its video and its JSON sidecar both exist (the commands write the sidecar last,
and every file atomically), which is what :func:`is_done` checks.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from posevid.batch.jobs import Job, command_parser


def output_path(job: Job, out_dir: Path) -> Path:
    return out_dir / f"{job.id}.mp4"


def is_done(job: Job, out_dir: Path) -> bool:
    """Output and sidecar both present (the sidecar is written last)."""
    video = output_path(job, out_dir)
    return video.is_file() and video.with_suffix(".json").is_file()


class ModelCache:
    """The last ``capacity`` loaded pipelines by key (jobs are sorted by model, so 1 is usually enough)."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = max(1, int(capacity))
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self.loads = 0  # how many times a model was actually loaded

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        while len(self._items) >= self.capacity:
            self._items.popitem(last=False)
        value = load()
        self.loads += 1
        self._items[key] = value
        return value


def _run_option_dests() -> frozenset[str]:
    """Dests of generate's speed/memory flags: they change the pipeline in place, so they are part of its cache key."""
    from posevid.pipelines.memory import add_run_arguments

    p = argparse.ArgumentParser()
    add_run_arguments(p)
    return frozenset(a.dest for a in p._actions if a.option_strings and a.dest != "help")


def model_key(job: Job) -> tuple:
    """What decides which loaded model a job can reuse; also the sort key that groups such jobs together."""
    ns = vars(command_parser(job.task).parse_args(job.argv))
    if job.task == "generate":
        variant = tuple(sorted((d, repr(ns[d])) for d in _run_option_dests() if d in ns))
        load = (ns.get("model"), ns.get("config"), ns.get("device", "auto"), ns.get("dtype", "fp32"))
    else:
        variant = ()
        load = (ns["model"], ns["epoch"], ns["custom_vae"], ns["clip"], ns["scheduler"], ns["device"], ns["dtype"])
    return (job.task, repr(load), variant)


@contextlib.contextmanager
def _cached_loaders(cache: ModelCache, key: tuple, *, quiet: bool) -> Iterator[None]:
    """While a job runs, the commands' loaders go through ``cache`` under the job's model key."""
    generate = importlib.import_module("posevid.commands.generate")
    from posevid.pipelines.dreampose import DreamPosePipeline

    original_generate = generate.load_pipeline
    original_dreampose = DreamPosePipeline.__dict__["from_pretrained"]

    def load_pipeline(model, device, dtype_name):
        pipe = cache.get((key, repr(model), device, dtype_name), lambda: original_generate(model, device, dtype_name))
        pipe.set_progress_bar_config(disable=quiet)  # one bar per job and step is noise in a batch log
        return pipe

    def from_pretrained(cls, *args, **kwargs):
        return cache.get((key, repr(args), repr(sorted(kwargs.items()))), lambda: original_dreampose.__func__(cls, *args, **kwargs))

    generate.load_pipeline = load_pipeline
    DreamPosePipeline.from_pretrained = classmethod(from_pretrained)
    try:
        yield
    finally:
        generate.load_pipeline = original_generate
        DreamPosePipeline.from_pretrained = original_dreampose


def run_job(job: Job, out_dir: Path, cache: ModelCache, *, quiet: bool = True) -> list[Path]:
    """Make the job's video in ``out_dir``; returns the files written. Raises what the command raises."""
    parser = command_parser(job.task)
    video = output_path(job, out_dir)
    args = parser.parse_args([*job.argv, "--out", str(video)])
    if job.task == "animate" and quiet:
        args.quiet = True  # no per-frame progress bars from many jobs
    module = importlib.import_module(f"posevid.commands.{job.task}")
    hush = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with _cached_loaders(cache, model_key(job), quiet=quiet), hush:
        module.run(args)
    return [p for p in (video, video.with_suffix(".json"), video.with_suffix(".gif")) if p.is_file()]
