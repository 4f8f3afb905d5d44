"""``posevid eval``: score generated videos (pose accuracy, CLIP consistency/alignment, paired metrics)."""

from __future__ import annotations

import argparse

from posevid.commands import _flags
from posevid.eval.defaults import EVAL_DEFAULTS
from posevid.tasks.eval import EvalSettings

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
    d = EvalSettings()  # every flag's default: the task's
    p = subparsers.add_parser(
        "eval",
        help="score generated videos: pose accuracy, CLIP consistency/alignment, PSNR/SSIM/LPIPS/FID/FVD",
        description="Score generated videos. Without --reference: pose accuracy, CLIP frame consistency and text/image "
        "alignment. With --reference (videos or frame folders matched by file name): L1, PSNR, SSIM, LPIPS, FID, FVD.",
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("videos", nargs="+", help="generated videos, folders of videos, or folders of frames")
    p.add_argument("--reference", nargs="+", default=d.reference, help="ground-truth videos/folders; paired with the inputs by file name")
    p.add_argument("--metrics", default=d.metrics, help="comma list of metric names, 'auto' or 'all' (see below)")
    g = p.add_argument_group("pose accuracy")
    g.add_argument("--pose", default=d.pose,
                   help="conditioning keypoints (.json/.npz from 'posevid pose'), or a folder of <video name>.json")
    g.add_argument("--pose-estimator", default=d.pose_estimator, help="estimator that re-detects poses on the generated frames; 'auto' = "
                   "dwpose if its models are available locally and the conditioning was not made with it, else mediapipe")  # fmt: skip
    g.add_argument("--pose-fit", default=d.pose_fit, choices=("auto", "stretch", "center-crop", "pad"),
                   help="how conditioning keypoints map onto the generated frame size; "
                   "auto = stretch if aspect ratios match, else center-crop")  # fmt: skip
    g.add_argument("--pose-start", type=int, default=d.pose_start, help="conditioning frame matching the first generated frame")
    g.add_argument("--pose-stride", type=int, default=d.pose_stride,
                   help="conditioning frames per generated frame (the generation's frame stride)")
    g.add_argument("--pose-threshold", type=float, default=d.pose_threshold,
                   help="a joint counts as visible/detected when its score exceeds this")
    g.add_argument(
        "--pck-ref", default=d.pck_ref, choices=("box", "torso"), help="PCK distance unit: max side of the pose box, or torso diagonal"
    )
    g = p.add_argument_group("CLIP consistency and alignment")
    g.add_argument("--clip", default=d.clip, help=f"CLIP model folder or hub id [{EVAL_DEFAULTS.clip}]")
    g.add_argument("--prompt", default=d.prompt, help="text prompt for clip_text_alignment (default: the 'prompt' in each video's sidecar)")
    g.add_argument("--reference-image", default=d.reference_image, help="input photo for clip_image_alignment (DreamPose)")
    g = p.add_argument_group("learned paired metrics (weights)")
    g.add_argument("--lpips-weights", default=d.lpips_weights,
                   help="LPIPS linear layers (alex.pth/vgg.pth: lin0..4.model.1.weight), or a merged file")
    g.add_argument("--lpips-backbone", default=d.lpips_backbone,
                   help="LPIPS backbone: torchvision's alexnet-owt-7be5be79.pth or vgg16-397923af.pth")
    g.add_argument("--inception-weights", default=d.inception_weights,
                   help="FID Inception: pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    g.add_argument("--i3d-weights", default=d.i3d_weights, help="FVD I3D: pytorch-i3d's rgb_imagenet.pt (Kinetics-400), or .safetensors")
    g.add_argument("--fvd-clip-length", type=int, default=d.fvd_clip_length, help="frames per FVD clip (non-overlapping)")
    g.add_argument("--fvd-size", type=int, default=d.fvd_size, help="FVD clip resolution (short side resize + centre crop)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=d.out, help="write the full report (per-frame values, settings) as JSON")
    g.add_argument("--markdown", default=d.markdown, help="write the summary table as Markdown")
    g.add_argument("--plot", default=d.plot, help="write a plot of the per-frame scores (png/pdf/svg; needs matplotlib)")
    g.add_argument("--max-frames", type=int, default=d.max_frames, help="evaluate at most this many frames per video")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="frames per network forward")
    _flags.add_device(g, default=d.device, what="where the feature networks run")
    _flags.add_quiet(g, default=d.quiet)
    p.set_defaults(func=run)


def collect_settings(args: argparse.Namespace) -> EvalSettings:
    """Parsed flags -> the task's settings: each flag fills the settings field of its own name."""
    return _flags.settings_from_args(EvalSettings, args)


def run(args: argparse.Namespace) -> int:
    from posevid.eval.report import markdown
    from posevid.tasks.eval import evaluate

    result = evaluate(collect_settings(args))
    print(markdown(result.report), end="")
    return 0
