"""Text + pose -> video with Follow-Your-Pose, as a library call: :func:`generate` with :class:`GenerateSettings`.

``posevid generate`` only parses flags into the settings; the app and a batch runner call :func:`generate`
directly (``models=`` a :class:`~posevid.tasks.common.ModelCache` to load once). Inputs are checked before
any model is loaded; the outputs (mp4 and/or gif, PNG frames, JSON sidecar per video) appear together or
not at all, and replace a previous run's whole output set.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posevid.errors import CheckpointError, InputError
from posevid.pipelines.fyp_checks import SAMPLING_DEFAULTS
from posevid.pipelines.memory import RunSettings
from posevid.tasks.common import FrameFiles, record_of
from posevid.utils.devices import dtype_name, pick_device, torch_dtype
from posevid.utils.outputs import OutputSet
from posevid.utils.progress import Progress, no_progress

if TYPE_CHECKING:
    from posevid.video import VideoInfo

HOW_TO_GET_WEIGHTS = (
    "download the hub repos CompVis/stable-diffusion-v1-4 and YueMafighting/FollowYourPose_v1 into "
    "DIR/checkpoints/{stable-diffusion-v1-4, followyourpose_checkpoint-1000, pose_encoder.pth} and pass --model DIR "
    "(README: Weights); smoke test without weights: posevid make-tiny tiny/ && posevid generate --model tiny/ ..."
)
# Flag names used in messages (the settings are what the CLI fills).
FLAG_NAMES = {
    "video_length": "--frames",
    "stride": "--stride",
    "steps": "--steps",
    "num_videos_per_prompt": "--num-videos-per-prompt",
    "height": "--height/--width",
}
# Always in the sidecar (the reference's sampling settings); other fields only when not at their default.
RECORDED = ("video_length", "stride", "height", "width", "steps", "guidance", "seed", "scheduler", "num_videos_per_prompt", "fps",
            "device", "dtype", "output_dir")  # fmt: skip


@dataclass
class GenerateSettings(RunSettings):
    """Everything ``posevid generate`` can be told; the defaults here are the only ones (CLI help and app read them).

    The speed / memory / long-video fields (``fast``, ``low_memory``, ``attention``, ``attention_chunk``, ``channels_last``,
    ``compile``, ``split_cfg``, ``vae_slicing``, ``vae_tiling``, ``decode_chunk``, ``offload``, ``window``, ``overlap``,
    ``window_weighting``) come from :data:`posevid.pipelines.memory.RunSettings`, derived from
    :class:`~posevid.pipelines.memory.RunOptions`, whose defaults are the authoritative ones: here they default to
    "not given" (None, or False for a switch), so RunOptions' default, or the ``low_memory`` preset's value, applies.
    The sampling defaults the pipeline shares are :data:`~posevid.pipelines.fyp_checks.SAMPLING_DEFAULTS`', read here.
    """

    prompts: list[str] = field(default_factory=list)
    pose: str | None = None
    out: str | None = None
    output_dir: str = "outputs"
    gif: bool = False
    frames_dir: str | None = None
    model: str | None = None
    negative_prompt: str | None = None
    video_length: int = 8
    stride: int = SAMPLING_DEFAULTS.frame_stride
    height: int = 512
    width: int = 512
    steps: int = SAMPLING_DEFAULTS.num_inference_steps
    guidance: float = SAMPLING_DEFAULTS.guidance_scale
    seed: int = 33
    scheduler: str = "ddim"
    num_videos_per_prompt: int = SAMPLING_DEFAULTS.num_videos_per_prompt
    fps: float = 8.0
    side_by_side: bool = False
    side_by_side_out: str | None = None  # also write a skeleton | result copy of the (one) video here (the app's preview)
    pose_antialias: bool = SAMPLING_DEFAULTS.pose_antialias
    device: str = "auto"
    dtype: str = "fp32"
    allow_untrained_temporal: bool = False
    # what a reference config names instead of --model
    config: str | None = None
    pretrained_model_path: str | None = None
    resume_from_checkpoint: str | None = None
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # other config keys, recorded as given

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> GenerateSettings:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        settings = cls(**{k: v for k, v in values.items() if k in known})
        settings.extra = {k: v for k, v in values.items() if k not in known}
        return settings


@dataclass
class GenerateResult:
    files: list[list[Path]]  # per video: mp4/gif first, then PNG frames
    sidecars: list[Path]
    seconds: dict[str, float]


# ------------------------------------------------------------------------------------------- checks
def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return slug[:limit].rstrip("_") or "video"


def output_names(settings: GenerateSettings, count: int) -> list[Path]:
    """One path per video, prompt-major.

    With ``out``: that name, or ``stem-0``, ``stem-1``, ... for several videos. Without it (the reference
    config's ``output_dir``): ``<output_dir>/<prompt>.mp4`` per prompt, ``<prompt>-K.mp4`` for several videos
    per prompt, and a numbered suffix when two prompts give the same name.
    """
    if settings.out:
        base = Path(settings.out)
        if base.suffix.lower() not in (".mp4", ".gif"):
            raise InputError(f"output {base} must end in .mp4 or .gif")
        return [base] if count == 1 else [base.with_name(f"{base.stem}-{k}{base.suffix}") for k in range(count)]
    per_prompt = settings.num_videos_per_prompt
    folder = Path(settings.output_dir)
    paths: list[Path] = []
    used: set[str] = set()
    for i, prompt in enumerate(settings.prompts):
        stem = _slug(prompt)
        if stem in used:
            stem = f"{stem}_{i}"
        used.add(stem)
        paths += [folder / f"{stem}.mp4"] if per_prompt == 1 else [folder / f"{stem}-{j}.mp4" for j in range(per_prompt)]
    return paths


def validate(settings: GenerateSettings) -> None:
    """Cheap checks before any model is loaded (the pipeline's own validation, with the CLI's flag names)."""
    from posevid.pipelines.fyp_checks import check_sampling_args

    if not settings.prompts:
        raise InputError("no prompt given", hint='pass --prompt "a dancer on the beach" (or a --config with validation_data.prompts)')
    if not settings.pose:
        raise InputError("no pose given", hint="pass --pose SKELETON_OR_VIDEO (or --skeleton_path as in the reference)")
    if not isinstance(settings.stride, int) or isinstance(settings.stride, bool) or settings.stride < 1:
        raise InputError(f"--stride must be an integer >= 1, got {settings.stride!r}")
    check_sampling_args(
        list(settings.prompts), settings.height, settings.width, num_videos_per_prompt=settings.num_videos_per_prompt,
        num_inference_steps=settings.steps, video_length=settings.video_length, names=FLAG_NAMES,
    )  # fmt: skip
    if settings.fps <= 0:
        raise InputError(f"--fps must be > 0, got {settings.fps}")
    if settings.side_by_side_out and (len(settings.prompts) * settings.num_videos_per_prompt != 1
                                      or Path(settings.side_by_side_out).suffix.lower() != ".mp4"):  # fmt: skip
        raise InputError(f"side_by_side_out {settings.side_by_side_out} takes one video and an .mp4 name")
    dtype_name(settings.dtype)


def resolve_skeleton(pose: str) -> VideoInfo:
    """A skeleton video for ``pose`` (itself, or one rendered from a raw video / keypoints file, cached), probed.

    The :class:`~posevid.video.VideoInfo` stands for the file (``os.fspath`` gives its path) and goes on to the
    length check and the pipeline, so the skeleton video is not probed again: ``posevid generate`` opens it twice
    (classify + probe, then the pose read; ``tests/test_generate_cli.py`` counts).
    """
    path = Path(pose).expanduser()
    if not path.exists():
        raise InputError(f"pose file not found: {path}", hint="check the --pose path")
    if path.is_dir():
        raise InputError(f"--pose expects a file but {path} is a folder")
    if path.stat().st_size == 0:
        raise InputError(f"pose file is empty (0 bytes): {path}", hint="re-export or re-download it")
    from posevid.pose import skeleton_video_for

    return skeleton_video_for(path, style="fyp", return_info=True)[1]


def check_pose_length(skeleton: VideoInfo, video_length: int, stride: int) -> None:
    """The skeleton's (header) frame count against ``video_length`` at ``stride``, before any model is loaded."""
    from posevid.pipelines.fyp_pose_input import frames_needed, too_short_message

    if skeleton.num_frames < frames_needed(video_length, stride):
        raise InputError(too_short_message(skeleton.path, skeleton.num_frames, video_length, stride))


def model_spec(settings: GenerateSettings):
    """``model`` if given; else the config's SD + checkpoint folders; else None (the default release)."""
    if settings.model:
        return settings.model, str(settings.model)
    if settings.pretrained_model_path or settings.resume_from_checkpoint:
        from posevid.models.layout import layout_from_paths

        layout = layout_from_paths(
            Path(settings.pretrained_model_path) if settings.pretrained_model_path else None,
            Path(settings.resume_from_checkpoint) if settings.resume_from_checkpoint else None,
            source=f"config {settings.config}",
        )
        return layout, f"{layout.sd_dir} + {layout.checkpoint or layout.pose_encoder}"
    return None, "default (official release from the hub cache)"


def load_pipeline(model, device: str, dtype: str, *, allow_untrained_temporal: bool = False):
    """The Follow-Your-Pose pipeline, library chatter silenced; a missing default release says how to get it."""
    from diffusers.utils import logging as diffusers_logging

    from posevid.pipelines.followyourpose import FollowYourPosePipeline

    level = diffusers_logging.get_verbosity()
    try:
        with warnings.catch_warnings():
            # Library chatter while reading weights (pickle protocol notes, dtype-cast notices) is noise on a
            # command line; real problems arrive as CheckpointError and posevid's own loader log messages.
            warnings.simplefilter("ignore")
            diffusers_logging.set_verbosity_error()
            return FollowYourPosePipeline.from_release(
                model, device=device, dtype=torch_dtype(dtype), allow_untrained_temporal=allow_untrained_temporal
            )
    except CheckpointError as exc:
        raise _weights_error(model, exc) from None
    finally:
        diffusers_logging.set_verbosity(level)


def check_weights(model) -> None:
    """Find the model's files before anything heavy is imported (milliseconds): no weights is a one-line error at once."""
    from posevid.models.layout import FollowYourPoseLayout, locate_followyourpose

    if isinstance(model, FollowYourPoseLayout):
        return  # a reference config's folders, checked when they were read
    try:
        locate_followyourpose(model)
    except CheckpointError as exc:
        raise _weights_error(model, exc) from None


def _weights_error(model, exc: CheckpointError) -> CheckpointError:
    """Without ``--model`` (the official release from the hub cache) the error says how to get the weights."""
    if model is None and "make-tiny" not in str(exc):
        reason = str(exc).split(" (")[0]  # the loader's own hint is replaced by the fuller one below
        return CheckpointError(f"no Follow-Your-Pose weights found: {reason}; {HOW_TO_GET_WEIGHTS}")
    return exc


# what apply_run_options changes in a loaded pipeline (the other run options are per call)
IN_PLACE_OPTIONS = ("attention", "attention_chunk", "channels_last", "compile", "vae_slicing", "vae_tiling", "offload")


def pipeline_key(model_name: str, device: str, settings: GenerateSettings, options) -> tuple:
    """The ModelCache key of a loaded pipeline: a job only reuses a pipeline loaded and set up exactly as it needs."""
    in_place = tuple((name, getattr(options, name)) for name in IN_PLACE_OPTIONS)
    return ("followyourpose", str(model_name), device, settings.dtype, settings.allow_untrained_temporal, in_place)


def _pipeline_loader(settings: GenerateSettings, device: str, options) -> tuple[tuple, Callable[[], Any], str]:
    """The model-cache key, the loader and the model's name for ``settings`` (one key for generate and preload)."""
    from posevid.pipelines.memory import apply_run_options

    model, model_name = model_spec(settings)
    key = pipeline_key(model_name, device, settings, options)

    def load():
        pipe = load_pipeline(model, device, settings.dtype, allow_untrained_temporal=settings.allow_untrained_temporal)
        apply_run_options(pipe, options, device=device)
        return pipe

    return key, load, model_name


def _loader_for(settings: GenerateSettings) -> tuple[tuple, Callable[[], Any], str]:
    from posevid.pipelines.memory import run_options_from_settings

    device = pick_device(settings.device)
    return _pipeline_loader(settings, device, run_options_from_settings(record_of(settings), device))


def model_key(settings: GenerateSettings) -> tuple:
    """The :class:`~posevid.tasks.common.ModelCache` key :func:`generate` uses for ``settings``, without loading anything:
    jobs with equal keys share one loaded pipeline (a batch runner groups its jobs by it)."""
    return _loader_for(settings)[0]


def preload(settings: GenerateSettings, models) -> None:
    """Load the pipeline that :func:`generate` would use for ``settings`` into ``models`` now (the app's ``--preload``)."""
    key, load, _ = _loader_for(settings)
    models.get(key, load)


# ------------------------------------------------------------------------------------------- run
def with_presets(settings: GenerateSettings) -> GenerateSettings:
    """``settings`` with the ``fast`` preset applied (20-step DPM-Solver++), as a new object: an app or a batch runner
    may reuse the one it passed. An explicit scheduler or step count (not at its default) still wins."""
    if not settings.fast:
        return settings
    from posevid.pipelines.memory import FAST_SCHEDULER, FAST_STEPS

    defaults = type(settings)()
    return replace(
        settings,
        scheduler=FAST_SCHEDULER if settings.scheduler == defaults.scheduler else settings.scheduler,
        steps=FAST_STEPS if settings.steps == defaults.steps else settings.steps,
    )


def generate(settings: GenerateSettings, *, models=None, progress: Progress = no_progress, warn=None) -> GenerateResult:
    """Run one ``posevid generate`` job. ``models``: a ModelCache to reuse loaded pipelines across calls."""
    from posevid.pipelines.memory import run_options_from_settings

    settings = with_presets(settings)  # a copy: the caller's settings object is left as it was
    validate(settings)
    prompts = list(settings.prompts)
    count = len(prompts) * settings.num_videos_per_prompt
    paths = output_names(settings, count)
    check_weights(model_spec(settings)[0])  # before the pose video is read and the pipeline imported
    skeleton = resolve_skeleton(str(settings.pose))
    check_pose_length(skeleton, settings.video_length, settings.stride)
    device = pick_device(settings.device)
    options = run_options_from_settings(record_of(settings), device)
    from posevid.pipelines.fyp_checks import check_window_args

    check_window_args(options.window, options.overlap, options.window_weighting)
    if device == "cpu" and settings.dtype == "fp16" and warn is not None:
        warn("fp16 on the CPU is slow and poorly supported; prefer fp32 or bf16")

    started = time.time()
    progress("load", 0, 1)
    key, load, model_name = _pipeline_loader(settings, device, options)
    if models is None:
        pipe = load()
        return _run(pipe, settings, prompts, paths, skeleton, model_name, device, options, started, progress)
    with models.use(key, load) as pipe:
        return _run(pipe, settings, prompts, paths, skeleton, model_name, device, options, started, progress)


def _run(pipe, settings, prompts, paths, skeleton, model_name, device, options, started, progress) -> GenerateResult:
    from posevid.pipelines.schedulers import swap_scheduler

    swap_scheduler(pipe, settings.scheduler, pin_defaults=False)  # the component, as diffusers swaps it
    pipe.set_progress_bar_config(disable=settings.quiet)
    loaded = time.time()
    progress("load", 1, 1)

    def on_step(pipe_, i, t, kwargs):
        progress("denoise", i + 1, settings.steps)
        return kwargs

    sampling = dict(
        video_length=settings.video_length,
        frame_stride=settings.stride,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        negative_prompt=settings.negative_prompt,
        seed=settings.seed,
        pose_antialias=settings.pose_antialias,
        split_cfg=options.split_cfg,
        window_size=options.window,
        window_overlap=options.overlap,
        window_weighting=options.window_weighting,
        callback_on_step_end=on_step,
    )
    streamed = (
        options.window is not None
        and len(paths) == 1
        and paths[0].suffix.lower() == ".mp4"
        and not (settings.gif or settings.frames_dir or settings.side_by_side or settings.side_by_side_out)
    )
    with OutputSet(paths[0]) as outputs:
        if streamed:  # long-video path: pose and decoded frames streamed, memory independent of --frames
            from posevid.pipelines.windowing import decode_frames

            latents = pipe(prompts[0], skeleton, **sampling, stream_pose=True, output_type="latent").videos
            with FrameFiles(outputs, video=paths[0], fps=settings.fps) as sink:
                for t, frame in enumerate(decode_frames(pipe, latents, options.decode_chunk_size)):
                    sink.write(frame, t)
            pipe.maybe_free_model_hooks()
            written = [[paths[0]]]
        else:
            result = pipe(
                prompts, pose=skeleton, **sampling, num_videos_per_prompt=settings.num_videos_per_prompt, output_type="np",
                decode_chunk_size=options.decode_chunk_size,
            )  # fmt: skip
            written = _write_videos(outputs, paths, result.videos, result.pose, settings)
        finished = time.time()
        sidecars = _write_sidecars(outputs, settings, prompts, skeleton, model_name, device, started, loaded, finished, paths, written,
                                   options, weights_read=list(getattr(pipe, "weights_read", [])))  # fmt: skip
        outputs.commit(previous_sidecar=paths[0].with_suffix(".json"))
    progress("done", 1, 1)
    return GenerateResult(files=written, sidecars=sidecars, seconds={"load": loaded - started, "generate": finished - loaded})


def _write_videos(outputs: OutputSet, paths: list[Path], videos, pose, settings: GenerateSettings) -> list[list[Path]]:
    """Every video (mp4 and/or gif, PNG frames, the side-by-side copy) into the output set.

    The one side-by-side of posevid (``--side-by-side``, the app's preview): the skeleton frames as the pipeline read
    them (resized to the output size), left of the result."""
    import numpy as np

    skeleton = None
    if settings.side_by_side or settings.side_by_side_out:
        skeleton = np.round(pose.permute(0, 1, 3, 4, 2).numpy() * 255).astype(np.uint8)  # (b|1, f, H, W, 3)
    written: list[list[Path]] = []
    for k, (path, video) in enumerate(zip(paths, videos, strict=True)):
        frames = (np.asarray(video) * 255).astype(np.uint8)  # (f, H, W, 3); truncation, as the reference writes its GIFs
        both = None if skeleton is None else np.concatenate([skeleton[k if skeleton.shape[0] > 1 else 0], frames], axis=2)
        if settings.side_by_side:
            frames = both
        mp4 = path if path.suffix.lower() != ".gif" else None
        gif = path if mp4 is None else path.with_suffix(".gif") if settings.gif else None
        sbs = Path(settings.side_by_side_out) if settings.side_by_side_out else None
        pngs = [Path(settings.frames_dir) / f"{path.stem}_{t:04d}.png" for t in range(len(frames))] if settings.frames_dir else []
        staged = [outputs.path(p) for p in pngs]
        if sbs is not None:  # the --side-by-side frames as their own mp4 (the app's preview), through the same writer
            with FrameFiles(outputs, video=sbs, fps=settings.fps) as sink:
                for t, frame in enumerate(both):
                    sink.write(frame, t)
        with FrameFiles(outputs, video=mp4, gif=gif, png=staged.__getitem__ if staged else None, fps=settings.fps) as sink:
            for t, frame in enumerate(frames):
                sink.write(frame, t)
        written.append([p for p in (mp4, gif, sbs) if p is not None] + pngs)
    return written


def _write_sidecars(outputs, settings, prompts, skeleton, model_name, device, started, loaded, finished, paths, written, options,
                    weights_read: list[str]):  # fmt: skip
    import json

    from posevid.utils.outputs import sidecar_payload

    record = record_of(settings, RECORDED)
    for name in ("prompts", "quiet", "extra", "pretrained_model_path", "resume_from_checkpoint"):
        record.pop(name, None)
    for name in ("pretrained_model_path", "resume_from_checkpoint"):
        if getattr(settings, name):
            record[name] = getattr(settings, name)
    record.update(settings.extra)
    record.update(
        prompts=prompts,
        pose=str(settings.pose),
        skeleton_video=skeleton.path,
        model=model_name,
        device=device,
        output_dir=str(paths[0].parent),
        load_seconds=round(loaded - started, 3),
        generate_seconds=round(finished - loaded, 3),
        all_outputs=[str(f) for files in written for f in files],
        run_options=options.as_dict(),
        weights_read=weights_read,  # the weight files really loaded (issue 12)
    )
    sidecars = [p.with_suffix(".json") for p in paths]
    every_file = [str(f) for files in written for f in files] + [str(s) for s in sidecars]
    k_per = settings.num_videos_per_prompt
    for k, (path, files) in enumerate(zip(paths, written, strict=True)):
        payload = sidecar_payload(path, dict(record, prompt=prompts[k // k_per], index=k, outputs=[f.name for f in files],
                                             files=every_file), kind="generate")  # fmt: skip
        outputs.path(sidecars[k]).write_text(json.dumps(payload, indent=2) + "\n")
    return sidecars
