"""``posevid prepare SRC --out DATA``: validate clips/images/frames, cache poses, write a resumable manifest."""

from __future__ import annotations

import argparse

from posevid.commands import _flags


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="prepare training data (Charades/HD-VILA clips, image-pose pairs, UBC frames with DensePose)",
        description=__doc__ + "\n\nRerun the same command to continue an interrupted preparation; finished items are kept.",
        formatter_class=formatter_class,
    )
    parser.add_argument(
        "src",
        help="source folder: clips (charades: SRC/<clip_id>.mp4; hdvila: SRC/part_<p>/video_clips/<clip_id>), "
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
    _flags.add_quiet(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from posevid.data.prepare import prepare_dataset

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = prepare_dataset(
        args.src,
        args.out,
        kind=args.kind,
        captions=args.captions,
        poses=args.poses,
        min_frames=args.min_frames,
        frames_per_video=args.frames_per_video,
        progress=not args.quiet,
    )
    print(result.summary())
    return 0
