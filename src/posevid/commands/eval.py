"""``posevid eval``: score generated videos (pose accuracy, CLIP consistency/alignment, paired metrics)."""

from __future__ import annotations

import argparse

from posevid.commands import _flags

EPILOG = """\
examples:
  posevid eval results/*.mp4 --pose dance_pose/keypoints.json --prompt "a man dances" --clip ./clip-vit-base-patch32
  posevid eval results/ --reference ground_truth/ --metrics psnr,ssim,lpips,fid,fvd \\
      --lpips-weights alex.pth --lpips-backbone alexnet-owt-7be5be79.pth \\
      --inception-weights pt_inception-2015-12-05-6726825d.pth --i3d-weights rgb_imagenet.pt \\
      --out report.json --markdown report.md --plot per_frame.png

metrics: pose, clip_consistency, clip_text_alignment, clip_image_alignment (unpaired);
         l1, psnr, psnr_uint8_overflow_buggy, ssim, lpips, fid, fvd (paired, need --reference).
'auto' = l1,psnr,ssim (+lpips/fid/fvd when their weights are given) with --reference, else the unpaired
metrics whose inputs are given. 'all' = everything, skipping (with a note) metrics whose inputs are missing.
Protocols and weight files: docs/evaluation.md
"""


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score generated videos: pose accuracy, CLIP consistency/alignment, PSNR/SSIM/LPIPS/FID/FVD",
        description="Score generated videos. Without --reference: pose accuracy, CLIP frame consistency and text/image "
        "alignment. With --reference (videos or frame folders matched by file name): L1, PSNR, SSIM, LPIPS, FID, FVD.",
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("videos", nargs="+", help="generated videos, folders of videos, or folders of frames")
    p.add_argument("--reference", nargs="+", default=None, help="ground-truth videos/folders; paired with the inputs by file name")
    p.add_argument("--metrics", default="auto", help="comma list of metric names, 'auto' or 'all' (see below)")
    g = p.add_argument_group("pose accuracy")
    g.add_argument("--pose", default=None, help="conditioning keypoints (.json/.npz from 'posevid pose'), or a folder of <video name>.json")
    g.add_argument("--pose-estimator", default="auto", help="estimator that re-detects poses on the generated frames; 'auto' = dwpose "
                   "if its models are available locally and the conditioning was not made with it, else mediapipe")  # fmt: skip
    g.add_argument("--pose-fit", default="auto", choices=("auto", "stretch", "center-crop", "pad"),
                   help="how conditioning keypoints map onto the generated frame size; "
                   "auto = stretch if aspect ratios match, else center-crop")  # fmt: skip
    g.add_argument("--pose-start", type=int, default=0, help="conditioning frame matching the first generated frame")
    g.add_argument("--pose-stride", type=int, default=1, help="conditioning frames per generated frame (the generation's frame stride)")
    g.add_argument("--pose-threshold", type=float, default=0.3, help="a joint counts as visible/detected when its score exceeds this")
    g.add_argument(
        "--pck-ref", default="box", choices=("box", "torso"), help="PCK distance unit: max side of the pose box, or torso diagonal"
    )  # noqa: E501
    g = p.add_argument_group("CLIP consistency and alignment")
    g.add_argument("--clip", default=None, help="CLIP model folder or hub id [openai/clip-vit-base-patch32]")
    g.add_argument("--prompt", default=None, help="text prompt for clip_text_alignment (default: the 'prompt' in each video's sidecar)")
    g.add_argument("--reference-image", default=None, help="input photo for clip_image_alignment (DreamPose)")
    g = p.add_argument_group("learned paired metrics (weights)")
    g.add_argument("--lpips-weights", default=None, help="LPIPS linear layers (alex.pth/vgg.pth: lin0..4.model.1.weight), or a merged file")
    g.add_argument("--lpips-backbone", default=None, help="LPIPS backbone: torchvision's alexnet-owt-7be5be79.pth or vgg16-397923af.pth")
    g.add_argument("--inception-weights", default=None, help="FID Inception: pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    g.add_argument("--i3d-weights", default=None, help="FVD I3D: pytorch-i3d's rgb_imagenet.pt (Kinetics-400), or .safetensors")
    g.add_argument("--fvd-clip-length", type=int, default=16, help="frames per FVD clip (non-overlapping)")
    g.add_argument("--fvd-size", type=int, default=224, help="FVD clip resolution (short side resize + centre crop)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, help="write the full report (per-frame values, settings) as JSON")
    g.add_argument("--markdown", default=None, help="write the summary table as Markdown")
    g.add_argument("--plot", default=None, help="write a plot of the per-frame scores (png/pdf/svg; needs matplotlib)")
    g.add_argument("--max-frames", type=int, default=None, help="evaluate at most this many frames per video")
    g.add_argument("--batch-size", type=int, default=16, help="frames per network forward")
    _flags.add_device(g, what="where the feature networks run")
    _flags.add_quiet(g)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posevid.errors import InputError
    from posevid.eval.clip import DEFAULT_CLIP
    from posevid.eval.report import jsonable, markdown, write_json, write_markdown, write_plot
    from posevid.eval.runner import EvalConfig, evaluate
    from posevid.utils.devices import pick_device

    for flag, value in (("--fvd-clip-length", args.fvd_clip_length), ("--fvd-size", args.fvd_size), ("--pose-stride", args.pose_stride),
                        ("--batch-size", args.batch_size)):  # fmt: skip
        if value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    if args.pose_start < 0:
        raise InputError(f"--pose-start must be 0 or more, got {args.pose_start}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.plot:
        from posevid.utils.extras import require

        require("matplotlib", "posevid eval --plot")
    cfg = EvalConfig(
        videos=args.videos, reference=args.reference, metrics=args.metrics, pose=args.pose, pose_estimator=args.pose_estimator,
        pose_fit=args.pose_fit, pose_start=args.pose_start, pose_stride=args.pose_stride, pose_threshold=args.pose_threshold,
        pck_ref=args.pck_ref, prompt=args.prompt, reference_image=args.reference_image, clip=args.clip or DEFAULT_CLIP,
        clip_given=args.clip is not None, lpips_weights=args.lpips_weights, lpips_backbone=args.lpips_backbone,
        inception_weights=args.inception_weights, i3d_weights=args.i3d_weights, fvd_clip_length=args.fvd_clip_length,
        fvd_size=args.fvd_size, max_frames=args.max_frames, batch_size=args.batch_size, device=pick_device(args.device),
        progress=not args.quiet,
    )  # fmt: skip
    report = evaluate(cfg)
    if args.out:
        write_json(report, args.out)
    if args.markdown:
        write_markdown(report, args.markdown)
    if args.plot:
        write_plot(report, args.plot)
    if not args.out and (args.markdown or args.plot):
        from posevid.utils.outputs import write_sidecar

        # the full report holds the settings; without --out, leave them beside the table/plot as a sidecar
        write_sidecar(args.markdown or args.plot, jsonable({**report["settings"], "aggregate": report["aggregate"]}), kind="eval")
    print(markdown(report), end="")
    return 0
