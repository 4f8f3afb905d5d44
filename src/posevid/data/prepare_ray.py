"""``posevid prepare --engine ray``: the clip stages of :mod:`posevid.data.prepare` as Ray Data operators.

Why Ray Data and not a home-made pool: it streams items through the stages (a clip is decoded while
another's poses are extracted), gives every operator its own resources (CPU stages and the model stage
are sized separately, so a GPU stage can sit on GPU nodes while decoding runs everywhere), re-runs the
tasks of a worker that died, and runs unchanged on a laptop or on a cluster (``--ray-address``).

Data flow::

    work items (driver: caption CSV + clip lookup, already-finished ids dropped)
      -> from_items, one block per clip
      -> map(captions) -> map(decode) -> map(pose, model stage) -> map(extra stages: DensePose hook)
      -> iter_rows in the driver -> Manifest.append_item(item)

Each row is one JSON string (the work item of ``prepare.clip_items``), so the stage functions are the very
functions the plain engine calls and the manifest is the same, line for line (the order may differ: rows
arrive as they finish). Only the driver writes the manifest, one line per finished clip, so an
interrupted run resumes like the plain one; the workers write keypoints and skeleton videos atomically
straight into ``OUT``, which on a cluster must be a folder every node sees (NFS, a mounted bucket).

Worker failures: a task whose worker process dies is re-run by Ray (Ray's default for tasks: 3 retries on
system failures); a stage that raises an ordinary exception fails the run after the clips finished so far
were written, and rerunning the command continues from there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posevid.data.manifest import Manifest
from posevid.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class RaySettings:
    """Where Ray runs and how the stages are sized (``posevid prepare --ray-*``)."""

    address: str | None = None  # existing cluster ("auto", "ray://host:10001", ...); None: RAY_ADDRESS or a local instance
    num_cpus: int | None = None  # CPUs of a local instance (None: all cores); ignored on a cluster
    stage_cpus: float = 1.0  # CPUs per task of the CPU stages (captions, decode)
    model_cpus: float = 1.0  # CPUs per task of the model stages (pose, DensePose)
    model_gpus: float = 0.0  # GPUs per task of the model stages (0: CPU-only models such as mediapipe)
    model_concurrency: int | None = None  # at most this many model tasks at once (None: as resources allow)


def require_ray() -> None:
    """One-line error with the install command when Ray (with Ray Data) is missing."""
    from posevid.utils.extras import require

    require("ray.data", "--engine ray")


class _RowStage:
    """Wraps a work-item stage as a Ray Data row function (one JSON string per row; picklable)."""

    def __init__(self, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.fn = fn

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"item": json.dumps(self.fn(json.loads(row["item"])))}


@contextlib.contextmanager
def ray_session(settings: RaySettings) -> Iterator[None]:
    """Use an already initialised Ray, else connect to ``address`` / RAY_ADDRESS, else start a local instance."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address is None:
        kwargs["num_cpus"] = settings.num_cpus
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot reach the Ray cluster at {address!r}: {first}", hint="check --ray-address / RAY_ADDRESS") from None
    try:
        yield
    finally:
        ray.shutdown()


def build_dataset(items: list[dict[str, Any]], stages: list, settings: RaySettings):
    """The lazy Ray Dataset of processed work items (one map operator per stage)."""
    import ray.data

    ds = ray.data.from_items([{"item": json.dumps(it)} for it in items], override_num_blocks=max(1, len(items)))
    for stage in stages:
        if stage.model:
            ds = ds.map(
                _RowStage(stage.fn),
                num_cpus=settings.model_cpus,
                num_gpus=settings.model_gpus or None,
                concurrency=settings.model_concurrency,
            )
        else:
            ds = ds.map(_RowStage(stage.fn), num_cpus=settings.stage_cpus)
    return ds


def prepare_clips_ray(items: list[dict[str, Any]], stages: list, out: Path, *, settings: RaySettings | None, progress: bool):
    """Run the unfinished ``items`` through ``stages`` on Ray; the driver appends each finished clip to the manifest."""
    settings = settings or RaySettings()
    manifest = Manifest(out)
    manifest.repair()
    done = manifest.done_ids()
    todo = [it for it in items if it["id"] not in done]
    if todo:
        with ray_session(settings):
            import ray
            from ray.data import DataContext

            gpus = ray.cluster_resources().get("GPU", 0)
            if settings.model_gpus > 0 and gpus < settings.model_gpus:  # Ray would wait for them forever
                raise InputError(
                    f"--ray-model-gpus {settings.model_gpus:g} but the Ray cluster has {gpus:g} GPU(s)",
                    hint="drop --ray-model-gpus or connect to a cluster with GPUs (--ray-address)",
                )

            DataContext.get_current().enable_progress_bars = progress
            for row in build_dataset(todo, stages, settings).iter_rows():
                manifest.append_item(json.loads(row["item"]))
    return manifest.result(len(items) - len(todo))
