"""Model conversion, as a library call: :func:`convert` with :class:`ConvertSettings` (``posevid convert``).

A Follow-Your-Pose model (official release folder, its ``checkpoints/`` folder, a hub id or a posevid folder) is loaded
strictly and pickle-free and written again, in posevid's format or the official layout
(:mod:`posevid.models.loading`); or DensePose R-CNN model-zoo weights become one safetensors file
(:mod:`posevid.densepose.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ConvertSettings:
    """Everything ``posevid convert`` can be told; the defaults here are the only ones."""

    model: str | None = None  # the Follow-Your-Pose model to read
    densepose_pkl: str | None = None  # or: DensePose model-zoo weights (.pkl) to rewrite as safetensors
    out: str | None = None  # the folder to write (with densepose_pkl: the .safetensors file)
    to_reference: bool = False  # write the official release layout instead of posevid's format
    dtype: str = "fp32"  # precision of the written weights (the official release is fp32)
    overwrite: bool = False


@dataclass
class ConvertResult:
    path: Path
    message: str  # what was written and how to use it


def convert(settings: ConvertSettings) -> ConvertResult:
    """Run one ``posevid convert``; nothing is written when the output exists (unless ``overwrite``) or the input is bad."""
    from posevid.errors import InputError

    if not settings.out:
        raise InputError("no output given", hint="pass --out")
    if bool(settings.model) == bool(settings.densepose_pkl):
        raise InputError("give either --model or --densepose-pkl")
    if settings.densepose_pkl:
        return _convert_densepose(Path(settings.densepose_pkl).expanduser(), Path(settings.out).expanduser(), overwrite=settings.overwrite)
    from posevid.models.loading import load_followyourpose_components, save_followyourpose, save_followyourpose_reference
    from posevid.utils.devices import torch_dtype

    out = Path(settings.out).expanduser()
    if out.exists() and (out.is_file() or any(out.iterdir())) and not settings.overwrite:
        raise InputError(f"--out folder {out} already exists and is not empty", hint="choose another --out or pass --overwrite")
    if out.resolve() == Path(settings.model).expanduser().resolve():
        raise InputError("--out must differ from --model")
    components = load_followyourpose_components(settings.model, dtype=torch_dtype(settings.dtype))
    save = save_followyourpose_reference if settings.to_reference else save_followyourpose
    path = save(components, out, overwrite=settings.overwrite)
    layout = "official release layout" if settings.to_reference else "posevid format"
    return ConvertResult(path, f"wrote {path} ({layout}, {settings.dtype}); load it with --model {path}")


def _convert_densepose(src: Path, out: Path, *, overwrite: bool) -> ConvertResult:
    from posevid.densepose.weights import convert_pkl_to_safetensors, resolve_weights
    from posevid.errors import InputError

    src = resolve_weights(src, flag="--densepose-pkl")  # a missing file: the hint names this command's flag
    if out.suffix != ".safetensors":
        raise InputError(f"--out {out} must be a .safetensors file with --densepose-pkl", hint="e.g. --out densepose_r50_fpn.safetensors")
    if out.exists() and not overwrite:
        raise InputError(f"--out file {out} already exists", hint="choose another --out or pass --overwrite")
    path = convert_pkl_to_safetensors(src, out)
    return ConvertResult(path, f"wrote {path}; use it with posevid densepose --weights {path}")
