"""``posevid prepare SRC --out DATA``: validate clips/images/frames, cache poses, write a resumable manifest."""

from __future__ import annotations

import argparse

from posevid.commands import _flags
from posevid.commands.densepose import add_model_arguments
from posevid.data.defaults import ENGINES, KINDS
from posevid.tasks.prepare import PrepareSettings


def register(subparsers, formatter_class) -> None:
    d = PrepareSettings()  # every flag's default: the task's
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
    parser.add_argument("--kind", default=d.kind, choices=list(KINDS), help="source layout")
    parser.add_argument("--captions", default=d.captions, help="caption CSV with columns part_id, clip_id, caption (UTF-8, BOM allowed)")
    poses = parser.add_mutually_exclusive_group()
    poses.add_argument(
        "--poses",
        dest="poses",
        action="store_const",
        const=True,
        default=d.poses,
        help="extract keypoints and render official-style skeleton videos (default: only for image-pose)",
    )
    poses.add_argument("--no-poses", dest="poses", action="store_const", const=False, help="do not extract poses")
    parser.add_argument("--min-frames", type=int, default=d.min_frames, help="skip clips with fewer frames")
    parser.add_argument("--frames-per-video", type=int, default=d.frames_per_video,
                        help="image-pose: evenly spaced frames taken from each video")
    parser.add_argument(
        "--pose-workers",
        type=int,
        default=d.pose_workers,
        help="plain engine: parallel pose processes per clip (as 'posevid pose --workers'; default: 2 for clips of 120+ frames)",
    )
    _flags.add_quiet(parser, default=d.quiet)
    dp = parser.add_argument_group(
        "DensePose for DreamPose (--kind ubc from videos; see docs/densepose.md)",
    )
    dp.add_argument(
        "--densepose",
        action="store_true",
        default=d.densepose,
        help="with --kind ubc: SRC holds videos (or is a text file of their paths); their frames and DensePose are written "
        "to OUT/frames/<video>/frame_N.png + frame_N_densepose.npy for the DreamPose recipes",
    )
    add_model_arguments(dp, prefix="densepose-", when="with --densepose: ", defaults=d)
    ray = parser.add_argument_group(
        "Ray engine (video kinds; needs 'pip install \"posevid[ray]\"', see docs/scale.md)",
    )
    ray.add_argument(
        "--engine",
        choices=list(ENGINES),
        default=d.engine,
        help="plain: one clip at a time in this process; ray: clips streamed through Ray Data stages (local or a cluster)",
    )
    ray.add_argument("--ray-address", default=d.ray_address,
                     help="existing Ray cluster ('auto', 'ray://HEAD:10001'); default: RAY_ADDRESS or a local instance")
    ray.add_argument("--ray-num-cpus", type=int, default=d.ray_num_cpus, help="CPUs of the local Ray instance (default: all cores)")
    ray.add_argument("--ray-stage-cpus", type=float, default=d.ray_stage_cpus,
                     help="CPUs per task of the CPU stages (captions, decode)")
    ray.add_argument("--ray-model-cpus", type=float, default=d.ray_model_cpus,
                     help="CPUs per task of the model stages (pose, DensePose)")
    ray.add_argument("--ray-model-gpus", type=float, default=d.ray_model_gpus,
                     help="GPUs per task of the model stages (pose, DensePose)")
    ray.add_argument("--ray-model-concurrency", type=int, default=d.ray_model_concurrency,
                     help="at most this many model-stage tasks at once (default: as resources allow)")
    parser.set_defaults(func=run)


def collect_settings(args: argparse.Namespace) -> PrepareSettings:
    """Parsed flags -> the task's settings: each flag fills the settings field of its own name (``--densepose-batch-size``
    fills ``densepose_batch_size``)."""
    return _flags.settings_from_args(PrepareSettings, args)


def run(args: argparse.Namespace) -> int:
    import logging

    from posevid.tasks.prepare import prepare

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(prepare(collect_settings(args)).summary())
    return 0
