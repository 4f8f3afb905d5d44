"""``posevid densepose``: DreamPose's ``frame_N_densepose.npy`` poses from a video, a frame folder or an image."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        "densepose",
        help="extract DensePose (densepose_rcnn_R_50_FPN_s1x) for DreamPose: frame_N_densepose.npy files, no detectron2 needed",
        description=(
            "Run DensePose R-CNN (densepose_rcnn_R_50_FPN_s1x, in plain PyTorch) on every frame and write DreamPose's "
            "frame_N_densepose.npy files into --out, exactly as DreamPose's utils/densepose.py makes them from an "
            "apply_net.py dump. Frames without a person get an all-zero pose (DreamPose's background); the count is "
            "reported. Weights: --weights, else $POSEVID_DENSEPOSE_WEIGHTS, else the cache (downloaded once when online)."
        ),
        formatter_class=formatter_class,
    )
    p.add_argument("input", type=Path, help="a video, a folder of frames, or one image")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (must not exist or be empty)")
    p.add_argument("--weights", type=Path, default=None, metavar="PATH", help="model_final_162be9.pkl or its .safetensors conversion")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where to run the model")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32", help="model precision (fp32 = the reference)")
    p.add_argument("--batch-size", type=int, default=4, metavar="N", help="frames per forward pass")
    p.add_argument("--person", choices=("top-score", "largest", "track"), default="top-score",
                   help="which detected person to keep per frame (top-score = the reference's first instance)")
    p.add_argument("--short-side", type=int, default=None, metavar="PX",
                   help="resize frames to this short side instead of the model's 800 (faster, no longer the reference)")
    p.add_argument("--iuv", action="store_true", help="also write iuv/frame_N.png (DensePose IUV images)")
    p.add_argument("--preview", action="store_true", help="also write preview.mp4 with the body parts coloured")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posevid.densepose.extract import DensePoseSettings, extract_densepose

    settings = DensePoseSettings(
        input=args.input, out=args.out, weights=args.weights, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
        person=args.person, iuv=args.iuv, preview=args.preview, overwrite=args.overwrite, short_side=args.short_side,
    )
    report = extract_densepose(settings, progress=not args.quiet)
    if not args.quiet:
        print(report.summary)
    return 0
