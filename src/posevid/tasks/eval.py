"""Scoring generated videos, as a library call: :func:`evaluate` with :class:`EvalSettings` (``posevid eval``).

The metrics are :func:`posevid.eval.runner.evaluate`'s; this task checks the settings, runs it and writes the report
files asked for (JSON, Markdown table, per-frame plot; without a JSON report the settings go into a sidecar beside the
table or plot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posevid.eval.config import EvalConfig  # light: the library's config, whose defaults are EVAL_DEFAULTS


@dataclass
class EvalSettings(EvalConfig):
    """Everything ``posevid eval`` can be told: the library's :class:`~posevid.eval.config.EvalConfig` (whose defaults are
    :data:`posevid.eval.defaults.EVAL_DEFAULTS`) plus the report files to write."""

    out: str | None = None  # the full report as JSON
    markdown: str | None = None  # the summary table
    plot: str | None = None  # the per-frame plot (needs matplotlib)


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


def evaluate(settings: EvalSettings) -> EvalResult:
    """Run one ``posevid eval``: the report, and the files written (JSON, Markdown, plot, or the settings sidecar)."""
    from posevid.eval.report import jsonable, write_json, write_markdown, write_plot
    from posevid.eval.runner import evaluate as run_metrics

    validate(settings)
    report = run_metrics(settings)  # the settings are an EvalConfig
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
