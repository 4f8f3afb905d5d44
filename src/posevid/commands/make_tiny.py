"""``posevid make-tiny``: write a tiny random model in the official release layout (offline smoke test)."""

from __future__ import annotations

import argparse

from posevid.commands import _flags
from posevid.tasks.make_tiny import KINDS, MakeTinySettings


def register(subparsers, formatter_class) -> None:
    d = MakeTinySettings()  # every flag's default: the task's
    p = subparsers.add_parser(
        "make-tiny",
        help="write a tiny random model in the official release layout (smoke-test an install offline)",
        description=(
            "Write a tiny model with RANDOM weights in the same folder layout and file formats as the official release, "
            "so the whole toolchain (loading, generate, animate, app) can be tried offline in seconds. "
            "Its videos are noise: it checks that things run, not that they look good. "
            "Example (seconds): posevid make-tiny tiny/ && posevid generate --model tiny/ --prompt 'a robot dancing' "
            "--pose examples/dance_skeleton.mp4 --frames 8 --stride 2 --height 64 --width 64 --steps 4 --out tiny.mp4"
        ),
        formatter_class=formatter_class,
    )
    p.add_argument("out", metavar="OUT", help="folder to create (FYP: OUT/checkpoints/...; pass OUT as --model)")
    p.add_argument("--kind", choices=KINDS, default=d.kind,
                   help="fyp = Follow-Your-Pose (text + pose, for 'generate'); dreampose = DreamPose (image + pose, for 'animate'); "
                        "wan-animate = Wan2.2-Animate in the diffusers layout (WanAnimatePipeline)")
    _flags.add_seed(p, default=d.seed, help="random seed of the weights (same seed, same files)")
    p.add_argument("--overwrite", action="store_true", default=d.overwrite, help="replace OUT if it already exists and is not empty")
    p.set_defaults(func=run)


def collect_settings(args: argparse.Namespace) -> MakeTinySettings:
    """Parsed flags -> the task's settings: each flag fills the settings field of its own name."""
    return _flags.settings_from_args(MakeTinySettings, args)


def run(args: argparse.Namespace) -> int:
    from posevid.tasks.make_tiny import make_tiny

    print(make_tiny(collect_settings(args)).message)
    return 0
