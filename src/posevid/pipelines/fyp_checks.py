"""Cheap, torch-free checks of Follow-Your-Pose sampling arguments: one validation for the pipeline, the
long-video path and the generate task (which runs it before loading anything)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from posevid.errors import InputError

OUTPUT_TYPES = ("np", "pt", "latent", "uint8")
DEFAULT_WINDOW = 24
DEFAULT_OVERLAP = 8  # frames shared by neighbouring windows (RunOptions.overlap, the pipeline's window_overlap)


@dataclass(frozen=True)
class SamplingDefaults:
    """The reference's sampling defaults, defined once: :meth:`FollowYourPosePipeline.__call__
    <posevid.pipelines.followyourpose.FollowYourPosePipeline.__call__>`, the checks below and ``posevid generate``
    (:class:`~posevid.tasks.generate.GenerateSettings`, whose fields read them) share them."""

    frame_stride: int = 5  # every 5th skeleton frame
    num_inference_steps: int = 50
    guidance_scale: float = 12.5
    num_videos_per_prompt: int = 1
    pose_antialias: bool = False  # the reference resizes the skeleton without antialiasing


SAMPLING_DEFAULTS = SamplingDefaults()
WEIGHTINGS = ("triangular", "uniform")
ANCHORS = ("video", "window")


def check_window_args(window: int | None, overlap: int, weighting: str = "triangular", anchor: str = "video") -> None:
    """One-line InputErrors for impossible window settings (checked before any model time is spent)."""
    if window is not None and (not isinstance(window, int) or window < 1):
        raise InputError(f"window size must be an integer >= 1, got {window!r}", hint=f"e.g. --window {DEFAULT_WINDOW}")
    if not isinstance(overlap, int) or overlap < 0:
        raise InputError(f"window overlap must be an integer >= 0, got {overlap!r}")
    if window is not None and overlap >= window:
        raise InputError(f"window overlap {overlap} must be smaller than the window size {window}", hint="e.g. --window 24 --overlap 8")
    if weighting not in WEIGHTINGS:
        raise InputError(f"unknown window weighting {weighting!r}", hint=f"choose one of {', '.join(WEIGHTINGS)}")
    if anchor not in ANCHORS:
        raise InputError(f"unknown window anchor {anchor!r}", hint=f"choose one of {', '.join(ANCHORS)}")


def check_sampling_args(
    prompt: str | list[str],
    height: int | None,
    width: int | None,
    *,
    negative_prompt: str | list[str] | None = None,
    num_videos_per_prompt: int = SAMPLING_DEFAULTS.num_videos_per_prompt,
    num_inference_steps: int = SAMPLING_DEFAULTS.num_inference_steps,
    video_length: int | None = None,
    output_type: str = "np",
    generator: Any = None,
    window_size: int | None = None,
    window_overlap: int = 8,
    window_weighting: str = "triangular",
    window_anchor: str = "video",
    names: dict[str, str] | None = None,
) -> tuple[list[str], list[str], int, int]:
    """The one validation of Follow-Your-Pose sampling arguments (:meth:`FollowYourPosePipeline.check_inputs`).

    Torch-free, so the generate task runs it before any heavy import. ``names`` relabels parameters in the
    messages (the CLI passes its flag names: ``{"num_videos_per_prompt": "--num-videos-per-prompt"}``).
    """
    names = names or {}

    def label(key: str, default: str) -> str:
        return names.get(key, default)

    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise InputError("prompt must be a string or a non-empty list of strings")
    if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt < 1:
        raise InputError(
            f"{label('num_videos_per_prompt', 'num_videos_per_prompt')} must be an integer >= 1, got {num_videos_per_prompt!r}"
        )
    if output_type not in OUTPUT_TYPES:
        raise InputError(f"unknown output_type {output_type!r}", hint=f"choose one of {', '.join(OUTPUT_TYPES)}")
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise InputError(f"{label('num_inference_steps', 'num_inference_steps')} must be >= 1, got {num_inference_steps!r}")
    height = 512 if height is None else height
    width = 512 if width is None else width
    if not isinstance(height, int) or not isinstance(width, int) or height <= 0 or width <= 0 or height % 64 or width % 64:
        raise InputError(
            f"{label('height', 'height and width')} must be positive multiples of 64, got {height}x{width}", hint="e.g. 512x512, 384x640"
        )
    if video_length is not None and (not isinstance(video_length, int) or isinstance(video_length, bool) or video_length < 1):
        raise InputError(f"{label('video_length', 'video_length')} must be an integer >= 1, got {video_length!r}")
    if negative_prompt is None:
        negatives = [""] * len(prompts)
    elif isinstance(negative_prompt, str):
        negatives = [negative_prompt] * len(prompts)
    else:
        negatives = list(negative_prompt)
        if len(negatives) != len(prompts):
            raise InputError(
                f"{len(negatives)} negative prompt(s) for {len(prompts)} prompt(s)", hint="give one per prompt, or a single one"
            )
    batch = len(prompts) * num_videos_per_prompt
    if isinstance(generator, list) and len(generator) != batch:
        raise InputError(f"{len(generator)} generators for a batch of {batch} videos", hint="give one per video, or a single one")
    check_window_args(window_size, window_overlap, window_weighting, window_anchor)
    return prompts, negatives, height, width
