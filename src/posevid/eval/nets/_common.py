"""Shared helpers for loading the metric networks' weight files."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from posevid.errors import CheckpointError
from posevid.utils.checkpoint import load_into, load_state_dict_file, strip_prefix


def read_weights(path: str | os.PathLike, *, flag: str, what: str) -> dict[str, torch.Tensor]:
    """Load a flat state dict, naming the CLI flag in the error when the file is missing."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} weights not found: {path}", hint=f"pass an existing file with {flag} (see docs/evaluation.md)")
    return strip_prefix(load_state_dict_file(path), "module.")


def scale(channels: int, width: float) -> int:
    """Channel count of a width-scaled network (width 1 = the published network)."""
    return max(1, int(round(channels * width)))


def infer_width(state: Mapping[str, torch.Tensor], key: str, base: int, *, what: str, source: str | os.PathLike) -> float:
    if key not in state:
        raise CheckpointError(f"{source} is not a {what} weight file: it has no '{key}'", hint="see docs/evaluation.md for accepted files")
    return state[key].shape[0] / base


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, what: str, source: str | os.PathLike) -> None:
    """Strict load; BatchNorm ``num_batches_tracked`` counters (absent from converted TF weights) default to 0."""
    state = dict(state)
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    load_into(module, state, what=what, source=source)
    module.eval().requires_grad_(False)
