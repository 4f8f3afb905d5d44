"""``posevid convert``: rewrite a Follow-Your-Pose model between the official layout and posevid's format.

Also ``--densepose-pkl X.pkl --out Y.safetensors``: DensePose R-CNN model-zoo weights to safetensors.
"""

from __future__ import annotations

import argparse

from posevid.commands import _flags
from posevid.tasks.convert import ConvertSettings


def register(subparsers, formatter_class) -> None:
    d = ConvertSettings()  # every flag's default: the task's
    p = subparsers.add_parser(
        "convert",
        help="convert a Follow-Your-Pose model (official release <-> posevid's format) or DensePose .pkl weights to safetensors",
        description=(
            "Load a Follow-Your-Pose model (official release folder, its checkpoints/ folder, a hub id, or a posevid folder) "
            "strictly and pickle-free, and write it again: by default in posevid's format (model_index.json + one safetensors "
            "folder per component; loads faster and never needs pickle), or with --to-reference in the official release "
            "layout (checkpoints/{stable-diffusion-v1-4, followyourpose_checkpoint-1000/pytorch_model.bin, pose_encoder.pth}) "
            "that the original Follow-Your-Pose code loads. With --densepose-pkl, DensePose R-CNN model-zoo weights "
            "(model_final_162be9.pkl, read without arbitrary unpickling and checked against the architecture) are written "
            "as one safetensors file at --out."
        ),
        formatter_class=formatter_class,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", default=d.model, metavar="DIR",
                        help="model to read: official release folder (with checkpoints/), the checkpoints/ folder itself, "
                        "or a posevid folder")
    source.add_argument("--densepose-pkl", default=d.densepose_pkl, metavar="PKL",
                        help="DensePose R-CNN model-zoo weights (.pkl) to rewrite as the safetensors file --out")
    p.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="folder to write (must not exist or be empty); with --densepose-pkl the .safetensors file")
    p.add_argument("--to-reference", action="store_true", default=d.to_reference,
                   help="write the official release layout (reference-loadable .bin/.pth tensor files) instead of posevid's format")
    _flags.add_dtype(p, default=d.dtype, what="precision of the written weights (the official release is fp32)")
    p.add_argument("--overwrite", action="store_true", default=d.overwrite, help="replace OUT_DIR if it already exists and is not empty")
    p.set_defaults(func=run)


def collect_settings(args: argparse.Namespace) -> ConvertSettings:
    """Parsed flags -> the task's settings: each flag fills the settings field of its own name."""
    return _flags.settings_from_args(ConvertSettings, args)


def run(args: argparse.Namespace) -> int:
    from posevid.tasks.convert import convert

    print(convert(collect_settings(args)).message)
    return 0
