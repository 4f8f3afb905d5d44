"""``posevid generate``: text + pose -> video with Follow-Your-Pose.

Also accepts the reference's spelling, ``--config configs/pose_sample.yaml --skeleton_path video.mov``;
flags given on the command line override the config file. Every user mistake is caught before the
model is loaded where possible (sizes, frame counts, paths), and no output file appears unless the
whole generation succeeded.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from posevid.commands import _flags
from posevid.tasks.generate import GenerateSettings

D = GenerateSettings()  # the defaults, defined once in the task


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
        "--prompt", action="append", default=s, metavar="TEXT", help="text prompt; repeat for several videos (or from --config)"
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
        help="output file (.mp4, or .gif for a GIF only); several videos get numbered names (default: outputs/<prompt>.mp4)",
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
    _flags.add_allow_untrained_temporal(p, default=s)
    p.add_argument("--config", default=s, metavar="YAML", help="reference-style sampling config (configs/pose_sample.yaml)")
    p.add_argument("--negative-prompt", default=s, metavar="TEXT", help="what to avoid (the unconditional prompt; default empty)")
    p.add_argument(
        "--frames",
        "--video-length",
        dest="video_length",
        type=int,
        default=s,
        metavar="N",
        help=f"number of frames to generate (default {D.video_length})",
    )
    p.add_argument(
        "--stride",
        type=int,
        default=s,
        metavar="N",
        help=f"use every N-th frame of the skeleton video (default {D.stride}, the reference's)",
    )
    p.add_argument("--height", type=int, default=s, help=f"output height, multiple of 64 (default {D.height})")
    p.add_argument("--width", type=int, default=s, help=f"output width, multiple of 64 (default {D.width})")
    p.add_argument("--steps", type=int, default=s, metavar="N", help=f"denoising steps (default {D.steps})")
    p.add_argument(
        "--guidance",
        type=float,
        default=s,
        metavar="G",
        help=f"classifier-free guidance scale; <= 1 disables it (default {D.guidance})",
    )
    _flags.add_seed(p, default=s, help=f"random seed; same seed, same video on CPU and GPU (default {D.seed})")
    from posevid.pipelines.schedulers import FYP_SCHEDULERS

    _flags.add_scheduler(p, choices=FYP_SCHEDULERS, default=s)
    p.add_argument(
        "--num-videos-per-prompt", type=int, default=s, metavar="K", help=f"videos per prompt (default {D.num_videos_per_prompt})"
    )
    p.add_argument("--fps", type=float, default=s, help=f"frame rate of the written video (default {D.fps:g})")
    p.add_argument("--side-by-side", action="store_true", default=s, help="put the (resized) skeleton left of the result")
    p.add_argument(
        "--pose-antialias",
        action="store_true",
        default=s,
        help="antialias the skeleton resize (changes results; off = reference behaviour)",
    )
    _flags.add_device(p, default=s)
    _flags.add_dtype(p, default=s, what="weights precision; the VAE decodes in fp32 under fp16")
    _flags.add_quiet(p, default=s)
    _flags.add_overwrite(p)
    _flags.add_run_arguments(p)  # --fast, --low-memory, --attention, --split-cfg, --compile, --window/--overlap, ...
    p.set_defaults(func=run)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``posevid generate ARGV`` parsed, not run (a batch job's line): a bad flag or value is a one-line InputError."""
    from posevid.commands.fields import command_parser

    return command_parser("generate").parse_args(list(argv))


# ------------------------------------------------------------------------------------------- settings
def collect_settings(args: argparse.Namespace) -> GenerateSettings:
    """Defaults (the task's) < config file < command-line flags."""
    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "overwrite")}
    values: dict = {}
    if "config" in given:
        from posevid.tasks.fyp_config import read_sample_config

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values.update(read_sample_config(given["config"]))
        for w in caught:
            print(f"posevid generate: warning: {w.message}", file=sys.stderr)
    if "prompt" in given:
        values["prompts"] = given.pop("prompt")
    values.update(given)
    for key in ("pretrained_model_path", "resume_from_checkpoint"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return GenerateSettings.from_mapping(values)


def run(args: argparse.Namespace) -> int:
    from posevid.tasks.generate import generate

    settings = collect_settings(args)
    result = generate(settings, warn=lambda msg: print(f"posevid generate: warning: {msg}", file=sys.stderr))
    for files in result.files:
        pngs = sum(f.suffix == ".png" for f in files)
        print(" ".join(str(f) for f in files if f.suffix != ".png") + (f" (+{pngs} PNG frames)" if pngs else ""))
    return 0
