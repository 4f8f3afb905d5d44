"""``posevid densepose``: DreamPose's ``frame_N_densepose.npy`` poses from a video, a frame folder or an image."""

from __future__ import annotations

import argparse
from pathlib import Path

from posevid.commands import _flags
from posevid.densepose import MODEL_DEFAULTS, PERSON_RULES, check_short_side


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
    add_model_arguments(p)
    p.add_argument("--iuv", action="store_true", help="also write iuv/frame_N.png (DensePose IUV images)")
    p.add_argument("--preview", action="store_true", help="also write preview.mp4 with the body parts coloured")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")
    _flags.add_quiet(p)  # also no summary line
    p.set_defaults(func=run)


def add_model_arguments(parser, prefix: str = "", when: str = "", names: tuple[str, ...] = tuple(MODEL_DEFAULTS)) -> None:
    """The model flags (weights, device, dtype, batch size, person rule, short side), defined once.

    ``posevid densepose`` adds them as they are; other commands add them with ``prefix="densepose-"``
    (``--densepose-weights`` ...): ``posevid prepare`` all of them, read back with :func:`model_options`,
    ``posevid animate`` only ``names=("short_side",)``. ``when`` starts each help text (e.g. "with --densepose: ").
    Defaults: :data:`posevid.densepose.MODEL_DEFAULTS`, also the extraction job's and the app's.
    """
    dash, d = f"--{prefix}", MODEL_DEFAULTS
    if "weights" in names:
        parser.add_argument(f"{dash}weights", type=Path, default=d["weights"], metavar="PATH",
                            help=f"{when}model_final_162be9.pkl or its .safetensors conversion "
                                 "(default: $POSEVID_DENSEPOSE_WEIGHTS or the cache)")  # fmt: skip
    if "device" in names:
        _flags.add_device(parser, default=d["device"], what=f"{when}where to run the model", flag=f"{dash}device")
    if "dtype" in names:
        _flags.add_dtype(parser, default=d["dtype"], what=f"{when}model precision; fp32 = the reference", flag=f"{dash}dtype")
    if "batch_size" in names:
        parser.add_argument(f"{dash}batch-size", type=int, default=d["batch_size"], metavar="N", help=f"{when}frames per forward pass")
    if "person" in names:
        parser.add_argument(f"{dash}person", choices=PERSON_RULES, default=d["person"],
                            help=f"{when}which detected person to keep per frame (top-score = the reference's first instance)")
    if "short_side" in names:
        parser.add_argument(f"{dash}short-side", type=int, default=d["short_side"], metavar="PX",
                            help=f"{when}resize frames to this short side instead of the model's 800 (faster, no longer the reference)")


def model_options(args: argparse.Namespace, prefix: str = "") -> dict:
    """The values of :func:`add_model_arguments`' flags as ``DensePoseSettings`` keyword arguments (range-checked,
    so an error names the flag as the user typed it)."""
    from posevid.errors import InputError

    dest = prefix.replace("-", "_")
    values = {name: getattr(args, dest + name) for name in MODEL_DEFAULTS}
    if values["batch_size"] < 1:
        raise InputError(f"--{prefix}batch-size must be at least 1, got {values['batch_size']}")
    check_short_side(values["short_side"], f"--{prefix}short-side")
    return values


def run(args: argparse.Namespace) -> int:
    from posevid.densepose.extract import DensePoseSettings, extract_densepose

    settings = DensePoseSettings(
        input=args.input, out=args.out, iuv=args.iuv, preview=args.preview, overwrite=args.overwrite, **model_options(args)
    )
    report = extract_densepose(settings, progress=not args.quiet)
    if not args.quiet:
        print(report.summary)
    return 0
