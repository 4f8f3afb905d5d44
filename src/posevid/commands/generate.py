"""``posevid generate``: text + pose -> video with Follow-Your-Pose.

Also accepts the reference's spelling, ``--config configs/pose_sample.yaml --skeleton_path video.mov``;
flags given on the command line override the config file. Every user mistake is caught before the
model is loaded where possible (sizes, frame counts, paths), and no output file appears unless the
whole generation succeeded.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from posevid.errors import CheckpointError, InputError

DEFAULTS: dict[str, Any] = {
    "video_length": 8,
    "stride": 5,
    "height": 512,
    "width": 512,
    "steps": 50,
    "guidance": 12.5,
    "seed": 33,
    "scheduler": "ddim",
    "num_videos_per_prompt": 1,
    "fps": 8.0,
    "device": "auto",
    "dtype": "fp32",
    "output_dir": "outputs",
}
KEYPOINT_SUFFIXES = {".json", ".npz", ".npy", ".pkl", ".csv"}
HOW_TO_GET_WEIGHTS = (
    "download the hub repos CompVis/stable-diffusion-v1-4 and YueMafighting/FollowYourPose_v1 into "
    "DIR/checkpoints/{stable-diffusion-v1-4, followyourpose_checkpoint-1000, pose_encoder.pth} and pass --model DIR "
    "(README: Weights); smoke test without weights: posevid make-tiny tiny/ && posevid generate --model tiny/ ..."
)


def register(subparsers, formatter_class) -> None:
    s = argparse.SUPPRESS  # unset flags stay absent, so config values are only overridden when a flag is given
    p = subparsers.add_parser(
        "generate",
        help="text + pose -> video (Follow-Your-Pose)",
        description=(
            "Generate a video of the PROMPT that follows the pose sequence of --pose (a skeleton video in the official style, "
            "a raw video of a person, or a keypoints file). Reference-compatible: "
            "'posevid generate --config configs/pose_sample.yaml --skeleton_path video.mov'."
        ),
        formatter_class=formatter_class,
    )
    p.add_argument(
        "--prompt", action="append", default=s, metavar="TEXT", help="text prompt; repeat for several videos (default: from --config)"
    )
    p.add_argument(
        "--pose",
        "--skeleton_path",
        "--skeleton-path",
        dest="pose",
        default=s,
        metavar="PATH",
        help="skeleton video, raw video of a person (converted to a skeleton first) or keypoints file",
    )
    p.add_argument(
        "--out",
        default=s,
        metavar="OUT.mp4",
        help="output file (.mp4, or .gif for a GIF only); several videos get numbered names (default: OUTPUT_DIR/<prompt>.mp4)",
    )
    p.add_argument("--gif", action="store_true", default=s, help="also write a GIF beside the mp4")
    p.add_argument("--frames-dir", default=s, metavar="DIR", help="also write every frame as PNG into DIR")
    p.add_argument(
        "--model",
        default=s,
        metavar="DIR",
        help="Follow-Your-Pose weights: the release folder (with checkpoints/...), a folder saved by posevid, or a hub id "
        "(default: the official release from the hub cache)",
    )
    p.add_argument(
        "--allow-untrained-temporal",
        action="store_true",
        default=s,
        help="run without followyourpose_checkpoint-1000/pytorch_model.bin (SD + pose encoder, identity temporal layers)",
    )
    p.add_argument("--config", default=s, metavar="YAML", help="reference-style sampling config (configs/pose_sample.yaml)")
    p.add_argument("--negative-prompt", default=s, metavar="TEXT", help="what to avoid (the unconditional prompt; default empty)")
    p.add_argument(
        "--frames",
        "--video-length",
        dest="video_length",
        type=int,
        default=s,
        metavar="N",
        help=f"number of frames to generate (default {DEFAULTS['video_length']})",
    )
    p.add_argument(
        "--stride",
        type=int,
        default=s,
        metavar="N",
        help=f"use every N-th frame of the skeleton video (default {DEFAULTS['stride']}, the reference's)",
    )
    p.add_argument("--height", type=int, default=s, help=f"output height, multiple of 64 (default {DEFAULTS['height']})")
    p.add_argument("--width", type=int, default=s, help=f"output width, multiple of 64 (default {DEFAULTS['width']})")
    p.add_argument("--steps", type=int, default=s, metavar="N", help=f"denoising steps (default {DEFAULTS['steps']})")
    p.add_argument(
        "--guidance",
        type=float,
        default=s,
        metavar="G",
        help=f"classifier-free guidance scale; <= 1 disables it (default {DEFAULTS['guidance']})",
    )
    p.add_argument(
        "--seed", type=int, default=s, metavar="S", help=f"random seed; same seed, same video on CPU and GPU (default {DEFAULTS['seed']})"
    )
    p.add_argument(
        "--scheduler", choices=("ddim", "dpm++", "unipc", "euler", "pndm"), default=s, help="sampler (default ddim, the reference's)"
    )
    p.add_argument("--num-videos-per-prompt", type=int, default=s, metavar="K", help="videos per prompt (default 1)")
    p.add_argument("--fps", type=float, default=s, help=f"frame rate of the written video (default {DEFAULTS['fps']:g})")
    p.add_argument("--side-by-side", action="store_true", default=s, help="put the (resized) skeleton left of the result")
    p.add_argument(
        "--pose-antialias",
        action="store_true",
        default=s,
        help="antialias the skeleton resize (changes results; off = reference behaviour)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=s, help="where to run (default auto: cuda > mps > cpu)")
    p.add_argument(
        "--dtype", choices=("fp32", "fp16", "bf16"), default=s, help="weights precision (default fp32); the VAE decodes in fp32 under fp16"
    )
    from posevid.pipelines.memory import add_run_arguments

    add_run_arguments(p)  # --fast, --low-memory, --attention, --split-cfg, --compile, --window/--overlap, ...
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------------- settings
def collect_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults < config file < command-line flags."""
    given = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    settings = dict(DEFAULTS)
    if "config" in given:
        from posevid.pipelines.fyp_config import read_sample_config

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            settings.update(read_sample_config(given["config"]))
        for w in caught:
            print(f"posevid generate: warning: {w.message}", file=sys.stderr)
    if "prompt" in given:
        settings["prompts"] = given.pop("prompt")
    settings.update(given)
    settings.setdefault("prompts", [])
    return settings


def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return slug[:limit].rstrip("_") or "video"


def output_names(settings: dict[str, Any], count: int) -> list[Path]:
    """One path per video, prompt-major.

    With ``--out``: that name, or ``stem-0``, ``stem-1``, ... for several videos. Without it (the reference
    config's ``output_dir``): ``<output_dir>/<prompt>.mp4`` per prompt, ``<prompt>-K.mp4`` for several videos
    per prompt, and a numbered suffix when two prompts give the same name.
    """
    out = settings.get("out")
    if out:
        base = Path(out)
        if base.suffix.lower() not in (".mp4", ".gif"):
            raise InputError(f"output {base} must end in .mp4 or .gif")
        return [base] if count == 1 else [base.with_name(f"{base.stem}-{k}{base.suffix}") for k in range(count)]
    per_prompt = settings["num_videos_per_prompt"]
    folder = Path(settings["output_dir"])
    paths: list[Path] = []
    used: set[str] = set()
    for i, prompt in enumerate(settings["prompts"]):
        stem = _slug(prompt)
        if stem in used:
            stem = f"{stem}_{i}"
        used.add(stem)
        paths += [folder / f"{stem}.mp4"] if per_prompt == 1 else [folder / f"{stem}-{j}.mp4" for j in range(per_prompt)]
    return paths


def validate(settings: dict[str, Any]) -> None:
    """Cheap checks before any model is loaded."""
    if not settings["prompts"]:
        raise InputError("no prompt given", hint='pass --prompt "a dancer on the beach" (or a --config with validation_data.prompts)')
    if "pose" not in settings:
        raise InputError("no pose given", hint="pass --pose SKELETON_OR_VIDEO (or --skeleton_path as in the reference)")
    for key, flag in (
        ("video_length", "--frames"),
        ("stride", "--stride"),
        ("steps", "--steps"),
        ("num_videos_per_prompt", "--num-videos-per-prompt"),
    ):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{flag} must be an integer >= 1, got {value!r}")
    h, w = settings["height"], settings["width"]
    if not isinstance(h, int) or not isinstance(w, int) or h <= 0 or w <= 0 or h % 64 or w % 64:
        raise InputError(f"--height/--width must be positive multiples of 64, got {h}x{w}", hint="e.g. 512x512 or 384x640")
    if settings["fps"] <= 0:
        raise InputError(f"--fps must be > 0, got {settings['fps']}")


def resolve_skeleton(pose: str) -> Path:
    """A skeleton video for ``pose``: itself, or one rendered from a raw video / keypoints file (cached)."""
    path = Path(pose).expanduser()
    if not path.exists():
        raise InputError(f"pose file not found: {path}", hint="check the --pose path")
    if path.is_dir():
        raise InputError(f"--pose expects a file but {path} is a folder")
    if path.stat().st_size == 0:
        raise InputError(f"pose file is empty (0 bytes): {path}", hint="re-export or re-download it")
    try:
        from posevid.pose import skeleton_video_for
    except ImportError:
        skeleton_video_for = None
    if skeleton_video_for is not None:
        return Path(skeleton_video_for(path, style="fyp"))
    if path.suffix.lower() in KEYPOINT_SUFFIXES:
        raise InputError(
            f"cannot render keypoints file {path}: pose rendering is not available in this install", hint="pass a skeleton video"
        )
    return path  # without the pose module every video is taken to be a skeleton video already


def check_pose_length(skeleton: Path, video_length: int, stride: int) -> None:
    from posevid.pipelines.fyp_pose_input import frames_needed, too_short_message
    from posevid.video import probe_video

    info = probe_video(skeleton)
    if info.num_frames < frames_needed(video_length, stride):
        raise InputError(too_short_message(str(skeleton), info.num_frames, video_length, stride))


def pick_device(name: str) -> str:
    import torch

    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked but no CUDA GPU is available", hint="use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise InputError("--device mps was asked but Apple MPS is not available", hint="use --device cpu or auto")
    return name


def model_spec(settings: dict[str, Any]):
    """``--model`` if given; else the config's SD + checkpoint folders; else None (the default release)."""
    if settings.get("model"):
        return settings["model"], str(settings["model"])
    if "pretrained_model_path" in settings or "resume_from_checkpoint" in settings:
        from posevid.pipelines.fyp_config import layout_from_paths

        layout = layout_from_paths(
            settings.get("pretrained_model_path"), settings.get("resume_from_checkpoint"), source=f"config {settings['config']}"
        )
        return layout, f"{layout.sd_dir} + {layout.checkpoint or layout.pose_encoder}"
    return None, "default (official release from the hub cache)"


def load_pipeline(model, device: str, dtype_name: str, *, allow_untrained_temporal: bool = False):
    import torch

    from posevid.pipelines.followyourpose import FollowYourPosePipeline

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    try:
        with warnings.catch_warnings():
            # Library chatter while reading weights (pickle protocol notes, dtype-cast notices) is noise on a
            # command line; real problems arrive as CheckpointError and posevid's own loader log messages.
            warnings.simplefilter("ignore")
            diffusers_logging.set_verbosity_error()
            return FollowYourPosePipeline.from_release(model, device=device, dtype=dtype, allow_untrained_temporal=allow_untrained_temporal)
    except CheckpointError as exc:
        if model is None and "make-tiny" not in str(exc):
            reason = str(exc).split(" (")[0]  # the loader's own hint is replaced by the fuller one below
            raise CheckpointError(f"no Follow-Your-Pose weights found: {reason}; {HOW_TO_GET_WEIGHTS}") from None
        raise
    finally:
        diffusers_logging.set_verbosity(level)


# ------------------------------------------------------------------------------------------- writing
def _to_uint8(frames) -> Any:
    import numpy as np

    return (np.asarray(frames) * 255).astype(np.uint8)  # truncation, as the reference writes its GIFs


def write_outputs(paths: list[Path], videos, pose, settings: dict[str, Any]) -> list[list[Path]]:
    """Write every video (mp4 and/or gif, PNG frames); all files appear together or none does."""
    import contextlib

    import numpy as np

    from posevid.utils.outputs import atomic_path
    from posevid.video import write_gif, write_video

    skeleton = None
    if settings.get("side_by_side"):
        skeleton = np.round(pose.permute(0, 1, 3, 4, 2).numpy() * 255).astype(np.uint8)  # (b|1, f, H, W, 3)
    written: list[list[Path]] = []
    with contextlib.ExitStack() as stack:
        for k, (path, video) in enumerate(zip(paths, videos, strict=True)):
            frames = _to_uint8(video)  # (f, H, W, 3)
            if skeleton is not None:
                frames = np.concatenate([skeleton[k if skeleton.shape[0] > 1 else 0], frames], axis=2)
            files: list[Path] = []
            targets = [path]
            if settings.get("gif") and path.suffix.lower() == ".mp4":
                targets.append(path.with_suffix(".gif"))
            for target in targets:
                tmp = stack.enter_context(atomic_path(target))
                (write_gif if target.suffix.lower() == ".gif" else write_video)(tmp, frames, fps=settings["fps"])
                files.append(target)
            if settings.get("frames_dir"):
                folder = Path(settings["frames_dir"])
                for t, frame in enumerate(frames):
                    target = folder / f"{path.stem}_{t:04d}.png"
                    tmp = stack.enter_context(atomic_path(target))
                    from PIL import Image

                    Image.fromarray(frame).save(tmp, format="PNG")
                    files.append(target)
            written.append(files)
    return written


# ------------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from posevid.pipelines.memory import FAST_SCHEDULER, FAST_STEPS, apply_run_options, run_options_from_settings

    settings = collect_settings(args)
    if settings.get("fast"):  # preset; explicit --scheduler/--steps still win
        settings["scheduler"] = vars(args).get("scheduler", FAST_SCHEDULER)
        settings["steps"] = vars(args).get("steps", FAST_STEPS)
    validate(settings)
    prompts = list(settings["prompts"])
    count = len(prompts) * settings["num_videos_per_prompt"]
    paths = output_names(settings, count)
    skeleton = resolve_skeleton(str(settings["pose"]))
    check_pose_length(skeleton, settings["video_length"], settings["stride"])
    device = pick_device(settings["device"])
    options = run_options_from_settings(settings, device)
    from posevid.pipelines.windowing import check_window_args

    check_window_args(options.window, options.overlap, options.window_weighting)
    if device == "cpu" and settings["dtype"] == "fp16":
        print("posevid generate: warning: fp16 on the CPU is slow and poorly supported; prefer fp32 or bf16", file=sys.stderr)

    model, model_name = model_spec(settings)
    started = time.time()
    pipe = load_pipeline(model, device, settings["dtype"], allow_untrained_temporal=bool(settings.get("allow_untrained_temporal")))
    settings["weights_read"] = pipe.weights_read  # recorded in the sidecar
    apply_run_options(pipe, options, device=device)
    loaded = time.time()
    streamed = (
        options.window is not None
        and count == 1
        and paths[0].suffix.lower() == ".mp4"
        and not (settings.get("gif") or settings.get("frames_dir") or settings.get("side_by_side"))
    )
    if streamed:  # long-video path: pose and decoded frames streamed, memory independent of --frames
        written = [_generate_streamed(pipe, prompts[0], skeleton, paths[0], settings, options)]
        finished = time.time()
        _finish(settings, prompts, skeleton, model_name, device, started, loaded, finished, paths, written, options)
        return 0
    result = pipe(
        prompts,
        pose=skeleton,
        **_sampling_kwargs(settings),
        num_videos_per_prompt=settings["num_videos_per_prompt"],
        seed=settings["seed"],
        scheduler=settings["scheduler"],
        output_type="np",
        pose_antialias=bool(settings.get("pose_antialias")),
        decode_chunk_size=options.decode_chunk_size,
        split_cfg=options.split_cfg,
        window_size=options.window,
        window_overlap=options.overlap,
        window_weighting=options.window_weighting,
    )
    finished = time.time()
    written = write_outputs(paths, result.videos, result.pose, settings)
    _finish(settings, prompts, skeleton, model_name, device, started, loaded, finished, paths, written, options)
    return 0


def _sampling_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    """The sampling settings shared by the plain and the streamed (long-video) paths."""
    return dict(
        video_length=settings["video_length"],
        frame_stride=settings["stride"],
        height=settings["height"],
        width=settings["width"],
        num_inference_steps=settings["steps"],
        guidance_scale=settings["guidance"],
        negative_prompt=settings.get("negative_prompt"),
    )


def _generate_streamed(pipe, prompt: str, skeleton: Path, path: Path, settings: dict[str, Any], options) -> list[Path]:
    from posevid.pipelines.windowing import generate_long

    generate_long(
        pipe,
        prompt,
        skeleton,
        path,
        **_sampling_kwargs(settings),
        seed=settings["seed"],
        scheduler=settings["scheduler"],
        window=options.window,
        overlap=options.overlap,
        weighting=options.window_weighting,
        split_cfg=options.split_cfg,
        decode_chunk_size=options.decode_chunk_size,
        fps=settings["fps"],
        pose_antialias=bool(settings.get("pose_antialias")),
    )
    return [path]


def _finish(settings, prompts, skeleton, model_name, device, started, loaded, finished, paths, written, options) -> None:
    """Sidecars and the printed output list."""
    from posevid.utils.outputs import write_sidecar

    record = {k: v for k, v in settings.items() if k not in ("prompts",)}
    record.update(
        prompts=prompts,
        pose=str(settings["pose"]),
        skeleton_video=str(skeleton),
        model=model_name,
        device=device,
        load_seconds=round(loaded - started, 3),
        generate_seconds=round(finished - loaded, 3),
        all_outputs=[str(f) for files in written for f in files],
        run_options=options.as_dict(),
    )
    k_per = settings["num_videos_per_prompt"]
    for k, (path, files) in enumerate(zip(paths, written, strict=True)):
        write_sidecar(path, dict(record, prompt=prompts[k // k_per], index=k, outputs=[f.name for f in files]), kind="generate")
        pngs = sum(f.suffix == ".png" for f in files)
        print(" ".join(str(f) for f in files if f.suffix != ".png") + (f" (+{pngs} PNG frames)" if pngs else ""))
