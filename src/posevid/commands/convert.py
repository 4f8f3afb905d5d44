"""``posevid convert``: rewrite a Follow-Your-Pose model between the official layout and posevid's format.

Also ``--densepose-pkl X.pkl --out Y.safetensors``: DensePose R-CNN model-zoo weights to safetensors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posevid.commands import _flags


def register(subparsers, formatter_class) -> None:
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
    source.add_argument("--model", metavar="DIR",
                        help="model to read: official release folder (with checkpoints/), the checkpoints/ folder itself, "
                        "or a posevid folder")
    source.add_argument("--densepose-pkl", type=Path, metavar="PKL",
                        help="DensePose R-CNN model-zoo weights (.pkl) to rewrite as the safetensors file --out")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_DIR",
                   help="folder to write (must not exist or be empty); with --densepose-pkl the .safetensors file")
    p.add_argument("--to-reference", action="store_true",
                   help="write the official release layout (reference-loadable .bin/.pth tensor files) instead of posevid's format")
    _flags.add_dtype(p, what="precision of the written weights (the official release is fp32)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it already exists and is not empty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.densepose_pkl is not None:
        return _convert_densepose(args.densepose_pkl.expanduser(), args.out.expanduser(), overwrite=args.overwrite)
    from posevid.errors import InputError
    from posevid.models.loading import load_followyourpose_components, save_followyourpose, save_followyourpose_reference
    from posevid.utils.devices import torch_dtype

    out: Path = args.out.expanduser()
    if out.exists() and (out.is_file() or any(out.iterdir())) and not args.overwrite:
        raise InputError(f"--out folder {out} already exists and is not empty", hint="choose another --out or pass --overwrite")
    if out.resolve() == Path(args.model).expanduser().resolve():
        raise InputError("--out must differ from --model")
    components = load_followyourpose_components(args.model, dtype=torch_dtype(args.dtype))
    save = save_followyourpose_reference if args.to_reference else save_followyourpose
    path = save(components, out, overwrite=args.overwrite)
    layout = "official release layout" if args.to_reference else "posevid format"
    print(f"wrote {path} ({layout}, {args.dtype}); load it with --model {path}")
    return 0


def _convert_densepose(src: Path, out: Path, *, overwrite: bool) -> int:
    from posevid.densepose.weights import convert_pkl_to_safetensors, resolve_weights
    from posevid.errors import InputError

    src = resolve_weights(src, flag="--densepose-pkl")  # a missing file: the hint names this command's flag

    if out.suffix != ".safetensors":
        raise InputError(f"--out {out} must be a .safetensors file with --densepose-pkl", hint="e.g. --out densepose_r50_fpn.safetensors")
    if out.exists() and not overwrite:
        raise InputError(f"--out file {out} already exists", hint="choose another --out or pass --overwrite")
    path = convert_pkl_to_safetensors(src, out)
    print(f"wrote {path}; use it with posevid densepose --weights {path}")
    return 0
