"""Scoring generated videos, as a library call: :func:`evaluate` with :class:`EvalSettings` (``posevid eval``).

The metrics are :func:`posevid.eval.runner.evaluate`'s; this task checks the settings, runs it and writes the report
files asked for (JSON, Markdown table, per-frame plot; without a JSON report the settings go into a sidecar beside the
table or plot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posevid.eval.defaults import EVAL_DEFAULTS as D  # the defaults the library shares, defined once one layer down


@dataclass
class EvalSettings:
    """Everything ``posevid eval`` can be told; the defaults here are the only ones (those the library shares are
    :data:`posevid.eval.defaults.EVAL_DEFAULTS`', read here)."""

    videos: list[str] = field(default_factory=list)
    reference: list[str] | None = None
    metrics: str = D.metrics
    pose: str | None = None
    pose_estimator: str = D.pose_estimator
    pose_fit: str = D.pose_fit
    pose_start: int = D.pose_start
    pose_stride: int = D.pose_stride
    pose_threshold: float = D.pose_threshold
    pck_ref: str = D.pck_ref
    clip: str | None = None  # None: the default CLIP (EVAL_DEFAULTS.clip), skipped with a note under --metrics all if not at hand
    prompt: str | None = None
    reference_image: str | None = None
    lpips_weights: str | None = None
    lpips_backbone: str | None = None
    inception_weights: str | None = None
    i3d_weights: str | None = None
    fvd_clip_length: int = D.fvd_clip_length
    fvd_size: int = D.fvd_size
    out: str | None = None  # the full report as JSON
    markdown: str | None = None  # the summary table
    plot: str | None = None  # the per-frame plot (needs matplotlib)
    max_frames: int | None = None
    batch_size: int = D.batch_size
    device: str = D.device
    quiet: bool = False


@dataclass
class EvalResult:
    report: dict[str, Any]
    files: list[Path]


def validate(settings: EvalSettings) -> None:
    """Cheap checks with the flags' names, before any video or network is loaded."""
    from posevid.errors import InputError

    for flag, value in (("--fvd-clip-length", settings.fvd_clip_length), ("--fvd-size", settings.fvd_size),
                        ("--pose-stride", settings.pose_stride), ("--batch-size", settings.batch_size)):  # fmt: skip
        if value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    if settings.pose_start < 0:
        raise InputError(f"--pose-start must be 0 or more, got {settings.pose_start}")
    if settings.max_frames is not None and settings.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {settings.max_frames}")
    if settings.plot:
        from posevid.utils.extras import require

        require("matplotlib", "posevid eval --plot")


def config_of(settings: EvalSettings):
    """The library's :class:`~posevid.eval.runner.EvalConfig` for ``settings``."""
    from posevid.eval.runner import EvalConfig

    return EvalConfig(
        videos=list(settings.videos), reference=settings.reference, metrics=settings.metrics, pose=settings.pose,
        pose_estimator=settings.pose_estimator, pose_fit=settings.pose_fit, pose_start=settings.pose_start,
        pose_stride=settings.pose_stride, pose_threshold=settings.pose_threshold, pck_ref=settings.pck_ref, prompt=settings.prompt,
        reference_image=settings.reference_image, clip=settings.clip or D.clip, clip_given=settings.clip is not None,
        lpips_weights=settings.lpips_weights, lpips_backbone=settings.lpips_backbone, inception_weights=settings.inception_weights,
        i3d_weights=settings.i3d_weights, fvd_clip_length=settings.fvd_clip_length, fvd_size=settings.fvd_size,
        max_frames=settings.max_frames, batch_size=settings.batch_size, device=settings.device, progress=not settings.quiet,
    )  # fmt: skip


def evaluate(settings: EvalSettings) -> EvalResult:
    """Run one ``posevid eval``: the report, and the files written (JSON, Markdown, plot, or the settings sidecar)."""
    from posevid.eval.report import jsonable, write_json, write_markdown, write_plot
    from posevid.eval.runner import evaluate as run_metrics

    validate(settings)
    report = run_metrics(config_of(settings))
    files = []
    if settings.out:
        files.append(write_json(report, settings.out))
    if settings.markdown:
        files.append(write_markdown(report, settings.markdown))
    if settings.plot:
        files.append(write_plot(report, settings.plot))
    if not settings.out and (settings.markdown or settings.plot):
        from posevid.utils.outputs import write_sidecar

        # the full report holds the settings; without --out, leave them beside the table/plot as a sidecar
        files.append(write_sidecar(settings.markdown or settings.plot, jsonable({**report["settings"], "aggregate": report["aggregate"]}),
                                   kind="eval"))  # fmt: skip
    return EvalResult(report, files)
