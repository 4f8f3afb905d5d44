"""Device and dtype choice, defined once for every command, task, model and the training loop.

``--device auto|cpu|cuda|cuda:N|mps`` and ``--dtype fp32|fp16|bf16`` mean the same everywhere: the CLI's flag
types, the tasks, the DensePose predictor, ``posevid convert``, the app and training's mixed precision all come
through here, so a new spelling or a new rule is one edit. Torch is imported only by the functions that need it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from posevid.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("fp32", "fp16", "bf16")
DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "half": "fp16"}
"""Old spellings still accepted (the app used to say float32...)."""


def _has_mps() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(name: str = "auto") -> str:
    """``auto`` -> cuda > mps > cpu; an explicit device that is not there is a one-line InputError."""
    import torch

    base = name.split(":")[0]
    if base not in DEVICES:
        raise InputError(f"unknown device {name!r}", hint=f"use one of {', '.join(DEVICES)}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if _has_mps() else "cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked but no CUDA GPU is available", hint="use --device cpu or auto")
    if name == "mps" and not _has_mps():
        raise InputError("--device mps was asked but Apple MPS is not available", hint="use --device cpu or auto")
    return name


def dtype_name(name: str) -> str:
    """``fp32|fp16|bf16`` (old spellings accepted); anything else is a one-line InputError."""
    key = DTYPE_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DTYPES:
        raise InputError(f"unknown dtype {name!r}", hint=f"use one of {', '.join(DTYPES)}")
    return key


def dtype_for_device(name: str, device: str, *, accelerator: str = "fp16") -> str:
    """``name`` checked, with ``auto`` resolved for ``device``: ``accelerator`` (fp16; a model released in bf16 says
    so) on an accelerator, fp32 on the CPU."""
    if name == "auto":
        return "fp32" if device.split(":")[0] == "cpu" else dtype_name(accelerator)
    return dtype_name(name)


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of ``fp32|fp16|bf16`` (old spellings accepted): the one name -> dtype map."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name(name)]


def cpu_only() -> bool:
    """True on a machine without an accelerator: accelerate then needs ``cpu=True`` to form gloo ranks under torchrun.

    Training and ``posevid batch`` (both under ``accelerate launch``) share this rule.
    """
    import torch

    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return True
    has_xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    return not (torch.cuda.is_available() or has_xpu or _has_mps())


__all__ = ["DEVICES", "DTYPES", "DTYPE_ALIASES", "cpu_only", "dtype_for_device", "dtype_name", "pick_device", "torch_dtype"]
