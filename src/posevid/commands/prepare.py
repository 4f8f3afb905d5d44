"""``posevid prepare SRC --out DATA``: validate clips/images/frames, cache poses, write a resumable manifest."""

from __future__ import annotations

import argparse

from posevid.commands import _flags
from posevid.commands.densepose import add_model_arguments


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="prepare training data (Charades/HD-VILA clips, image-pose pairs, UBC frames with DensePose)",
        description=__doc__ + "\n\nRerun the same command to continue an interrupted preparation; finished items are kept.",
        formatter_class=formatter_class,
    )
    parser.add_argument(
        "src",
        help="source folder: clips (charades: SRC/<clip_id>.mp4; hdvila: SRC/part_<p>/video_clips/<clip_id>; "
        "or a text file with one clip path per line), "
        "images/videos (image-pose) or frame_N.png + frame_N_densepose.npy (ubc)",
    )
    parser.add_argument("--out", required=True, help="output data folder (manifest.jsonl, meta.json, poses/, skeletons/)")
    parser.add_argument("--kind", default="charades", choices=["charades", "hdvila", "image-pose", "ubc"], help="source layout")
    parser.add_argument("--captions", help="caption CSV with columns part_id, clip_id, caption (UTF-8, BOM allowed)")
    poses = parser.add_mutually_exclusive_group()
    poses.add_argument(
        "--poses",
        dest="poses",
        action="store_const",
        const=True,
        default=None,
        help="extract keypoints and render official-style skeleton videos (default: only for image-pose)",
    )
    poses.add_argument("--no-poses", dest="poses", action="store_const", const=False, help="do not extract poses")
    parser.add_argument("--min-frames", type=int, default=1, help="skip clips with fewer frames")
    parser.add_argument("--frames-per-video", type=int, default=4, help="image-pose: evenly spaced frames taken from each video")
    parser.add_argument(
        "--pose-workers",
        type=int,
        default=None,
        help="plain engine: parallel pose processes per clip (as 'posevid pose --workers'; default: 2 for clips of 120+ frames)",
    )
    _flags.add_quiet(parser)
    dp = parser.add_argument_group(
        "DensePose for DreamPose (--kind ubc from videos; see docs/densepose.md)",
    )
    dp.add_argument(
        "--densepose",
        action="store_true",
        help="with --kind ubc: SRC holds videos (or is a text file of their paths); their frames and DensePose are written "
        "to OUT/frames/<video>/frame_N.png + frame_N_densepose.npy for the DreamPose recipes",
    )
    add_model_arguments(dp, prefix="densepose-", when="with --densepose: ")
    ray = parser.add_argument_group(
        "Ray engine (video kinds; needs 'pip install \"posevid[ray]\"', see docs/scale.md)",
    )
    ray.add_argument(
        "--engine",
        choices=["plain", "ray"],
        default="plain",
        help="plain: one clip at a time in this process; ray: clips streamed through Ray Data stages (local or a cluster)",
    )
    ray.add_argument("--ray-address", help="existing Ray cluster ('auto', 'ray://HEAD:10001'); default: RAY_ADDRESS or a local instance")
    ray.add_argument("--ray-num-cpus", type=int, help="CPUs of the local Ray instance (default: all cores)")
    ray.add_argument("--ray-stage-cpus", type=float, default=1.0, help="CPUs per task of the CPU stages (captions, decode)")
    ray.add_argument("--ray-model-cpus", type=float, default=1.0, help="CPUs per task of the model stages (pose, DensePose)")
    ray.add_argument("--ray-model-gpus", type=float, default=0.0, help="GPUs per task of the model stages (pose, DensePose)")
    ray.add_argument("--ray-model-concurrency", type=int, help="at most this many model-stage tasks at once (default: as resources allow)")
    parser.set_defaults(func=run)


_RAY_OPTIONS = ("ray_address", "ray_num_cpus", "ray_model_concurrency")


def run(args: argparse.Namespace) -> int:
    import logging

    from posevid.commands.densepose import model_options
    from posevid.data.prepare import prepare_dataset
    from posevid.data.prepare_ray import RaySettings
    from posevid.densepose.options import DensePoseOptions
    from posevid.errors import InputError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name, low in (("pose_workers", 1), ("ray_num_cpus", 1), ("ray_model_concurrency", 1), ("ray_model_gpus", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise InputError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    for name in ("ray_stage_cpus", "ray_model_cpus"):
        if getattr(args, name) <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    densepose = model_options(args, prefix="densepose-")  # checked by prepare_dataset, before anything is written
    if not args.densepose:
        defaults = vars(DensePoseOptions())
        given = [f"--densepose-{k.replace('_', '-')}" for k, v in vars(densepose).items() if v != defaults[k]]
        if given:
            raise InputError(f"{', '.join(given)} need(s) --densepose", hint="add --densepose or drop the option")
    ray = None
    if args.engine == "ray":
        if args.pose_workers is not None:
            raise InputError("--pose-workers applies to --engine plain", hint="Ray runs one pose process per clip; see --ray-model-*")
        ray = RaySettings(
            address=args.ray_address,
            num_cpus=args.ray_num_cpus,
            stage_cpus=args.ray_stage_cpus,
            model_cpus=args.ray_model_cpus,
            model_gpus=args.ray_model_gpus,
            model_concurrency=args.ray_model_concurrency,
        )
    else:
        given = [f"--{name.replace('_', '-')}" for name in _RAY_OPTIONS if getattr(args, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)} need(s) --engine ray", hint="add --engine ray or drop the option")
    result = prepare_dataset(
        args.src,
        args.out,
        kind=args.kind,
        captions=args.captions,
        poses=args.poses,
        min_frames=args.min_frames,
        frames_per_video=args.frames_per_video,
        progress=not args.quiet,
        pose_workers=args.pose_workers,
        engine=args.engine,
        ray=ray,
        densepose=densepose if args.densepose else None,
    )
    print(result.summary())
    return 0
