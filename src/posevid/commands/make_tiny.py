"""``posevid make-tiny``: write a tiny random model in the official release layout (offline smoke test)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers, formatter_class) -> None:
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
    p.add_argument("out", type=Path, metavar="OUT", help="folder to create (FYP: OUT/checkpoints/...; pass OUT as --model)")
    p.add_argument("--kind", choices=("fyp", "dreampose", "wan-animate"), default="fyp",
                   help="fyp = Follow-Your-Pose (text + pose, for 'generate'); dreampose = DreamPose (image + pose, for 'animate'); "
                        "wan-animate = Wan2.2-Animate in the diffusers layout (WanAnimatePipeline)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights (same seed, same files)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it already exists and is not empty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posevid.errors import InputError

    out: Path = args.out.expanduser()
    if out.exists() and (out.is_file() or any(out.iterdir())) and not args.overwrite:
        raise InputError(f"output folder {out} already exists and is not empty", hint="choose another OUT or pass --overwrite")
    if args.kind == "fyp":
        from posevid.models.tiny import tiny_example_command, write_tiny_followyourpose

        path = write_tiny_followyourpose(out, seed=args.seed, overwrite=args.overwrite)
        print(f"wrote a tiny random Follow-Your-Pose model to {path}; try it (seconds, from the repository root):")
        print(f"  {tiny_example_command(path)}")
        return 0
    if args.overwrite and out.exists():
        import shutil

        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if args.kind == "wan-animate":
        from posevid.models.tiny_wan import write_tiny_wan_animate

        path = write_tiny_wan_animate(out, seed=args.seed)
        print(f"wrote a tiny random Wan2.2-Animate model (diffusers layout) to {path}; it loads like the real folder:")
        print(f"  python -c \"from posevid.pipelines.wan_animate import load_wan_animate; print(load_wan_animate('{path}'))\"")
        return 0
    from posevid.models.tiny_dreampose import tiny_example_command, write_tiny_dreampose

    path = write_tiny_dreampose(out, seed=args.seed)
    print(f"wrote a tiny random DreamPose model and sample poses to {path}; try it (seconds, from the repository root):")
    print(f"  {tiny_example_command(path)}")
    return 0
