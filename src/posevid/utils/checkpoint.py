"""Safe loading of weight files and strict, named reporting of key mismatches.

Every weight file posevid reads goes through :func:`load_state_dict_file`: safetensors directly, and
``.bin``/``.pth``/``.pt`` files only through ``torch.load(weights_only=True)``, which refuses pickles that
would build arbitrary objects. A refused or damaged file becomes a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from posevid.errors import CheckpointError, short_reason

PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt")


def load_state_dict_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a flat ``name -> tensor`` dict from a safetensors or a pickle-free torch file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}", hint="check the path or the --model folder")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}", hint="re-download or re-export it")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device=str(map_location))
        except Exception as exc:  # safetensors raises several types for truncated/corrupt headers
            raise CheckpointError(
                f"cannot read safetensors file {path}: {short_reason(exc)}", hint="the file is truncated or corrupt; re-download it"
            ) from None
    else:
        try:
            with warnings.catch_warnings():  # torch's "pickle protocol N" note is about its own reader, not the user's file
                warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
                state = torch.load(str(path), map_location=map_location, weights_only=True)
        except Exception as exc:
            raise _torch_load_error(path, exc) from None
        if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
            state = state["state_dict"]
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__})")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path} holds non-tensor entries, e.g. {bad[0]!r}", hint="expected a flat name -> tensor dict")
    return dict(state)


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove a leading ``prefix`` (DDP's ``module.``, say) from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def check_keys(
    expected: Iterable[str], found: Iterable[str], *, what: str, source: str | os.PathLike, allow_missing: Iterable[str] = ()
) -> None:
    """Raise a one-line error naming the first missing/unexpected keys; never ignore them silently."""
    expected, found = set(expected), set(found)
    allow = tuple(allow_missing)
    missing = sorted(k for k in expected - found if not k.startswith(allow))
    unexpected = sorted(found - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
        raise CheckpointError(
            f"{source} does not fit the {what}: {'; '.join(parts)}", hint="is this the right checkpoint for this model?"
        )


def check_shapes(
    model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], *, what: str, source: str | os.PathLike
) -> None:
    """Name the first tensor whose shape differs, instead of torch's multi-line size-mismatch report."""
    for key, tensor in state.items():
        ref = model_state.get(key)
        if ref is not None and tuple(ref.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: {key} has shape {tuple(tensor.shape)} but the {what} expects {tuple(ref.shape)}",
                hint="the checkpoint was made for a different model configuration",
            )


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, what: str, source: str | os.PathLike) -> None:
    """Strictly load ``state`` into ``module`` with readable errors."""
    own = module.state_dict()
    check_keys(own.keys(), state.keys(), what=what, source=source)
    check_shapes(own, state, what=what, source=source)
    module.load_state_dict(state, strict=True)


def _torch_load_error(path: Path, exc: BaseException) -> CheckpointError:
    """Tell a file that holds Python objects (refused on purpose) from a damaged one (re-download it)."""
    full = str(exc)  # torch puts the reason ("Unsupported global: ...") deep inside a long message
    if "Unsupported operand" in full and _is_zip(path):  # a whole torch.save archive, pickled with protocol 4+
        return CheckpointError(
            f"refusing to load {path}: its pickle uses instructions torch's safe loader does not accept",
            hint="re-save it with torch.save's default pickle protocol, or convert it to safetensors with a trusted tool",
        )
    if "Unsupported global" in full or _is_plain_pickle(path):
        return CheckpointError(
            f"refusing to load {path}: it contains Python objects, not only tensors",
            hint="posevid never unpickles arbitrary code; convert it to safetensors with a trusted tool",
        )
    return CheckpointError(
        f"{path} is damaged or not a torch weights file ({short_reason(exc)})", hint="the download is incomplete or corrupt; re-download it"
    )


def _is_plain_pickle(path: Path) -> bool:
    """A bare ``pickle.dump`` (protocol 2-5) rather than ``torch.save``'s zip archive: a pickle, not a damaged file."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and not _is_legacy_torch_file(path)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _is_legacy_torch_file(path: Path) -> bool:
    """torch's pre-1.6 format starts with a pickled magic number; a truncated one is damaged, not hostile."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head.startswith(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")
