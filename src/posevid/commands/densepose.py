"""``posevid densepose``: DreamPose's ``frame_N_densepose.npy`` poses from a video, a frame folder or an image."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from posevid.commands import _flags
from posevid.densepose.options import PERSON_RULES, DensePoseOptions
from posevid.tasks.densepose import DensePoseSettings

D = DensePoseSettings()  # the defaults, defined once in the task (its model options: DensePoseOptions)
MODEL_OPTIONS = tuple(f.name for f in fields(DensePoseOptions))


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
    add_model_arguments(p, defaults=D)
    p.add_argument("--iuv", action="store_true", default=D.iuv, help="also write iuv/frame_N.png (DensePose IUV images)")
    p.add_argument("--preview", action="store_true", default=D.preview, help="also write preview.mp4 with the body parts coloured")
    p.add_argument("--overwrite", action="store_true", default=D.overwrite, help="replace DIR if it exists and is not empty")
    _flags.add_quiet(p, default=D.quiet)  # also no summary line
    p.set_defaults(func=run)


def add_model_arguments(parser, prefix: str = "", when: str = "", names: tuple[str, ...] = MODEL_OPTIONS, defaults=None) -> None:
    """The model flags (weights, device, dtype, batch size, person rule, short side), defined once.

    ``posevid densepose`` adds them as they are; other commands add them with ``prefix="densepose-"``
    (``--densepose-weights`` ...): ``posevid prepare`` all of them, read back with :func:`model_options`,
    ``posevid animate`` only ``names=("weights", "person", "short_side")``. ``when`` starts each help text (e.g.
    "with --densepose: "). Defaults: the attributes of ``defaults`` (a task's settings, named as the flags' ``dest``)
    or else :class:`~posevid.densepose.options.DensePoseOptions`' own, which are also the extraction job's and the app's.
    """
    dash, dest = f"--{prefix}", prefix.replace("-", "_")
    d = {name: getattr(defaults, dest + name) if defaults is not None else getattr(DensePoseOptions(), name) for name in names}
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


def model_options(args: argparse.Namespace, prefix: str = "") -> DensePoseOptions:
    """The values of :func:`add_model_arguments`' flags (all of them given), unchecked: the task or ``prepare`` checks them
    with :meth:`DensePoseOptions.validate`, naming the flags with ``prefix``."""
    dest = prefix.replace("-", "_")
    return DensePoseOptions(**{name: getattr(args, dest + name) for name in MODEL_OPTIONS})


def collect_settings(args: argparse.Namespace) -> DensePoseSettings:
    """Parsed flags -> the task's settings (``tasks.densepose.densepose`` runs them)."""
    options = model_options(args).as_dict()
    return DensePoseSettings(input=str(args.input), out=str(args.out), **options, iuv=args.iuv, preview=args.preview,
                             overwrite=args.overwrite, quiet=args.quiet)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from posevid.tasks.densepose import densepose

    settings = collect_settings(args)
    report = densepose(settings)
    if not settings.quiet:
        print(report.summary)
    return 0
