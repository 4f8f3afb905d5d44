"""What a training recipe provides to the engine (:mod:`posevid.training.engine`).

The engine owns everything generic - accelerate, optimizer, LR schedule, EMA, accumulation, checkpoints,
resume, logging. A recipe owns the models and the loss: it builds its frozen and trainable modules, names
the trainable tensors, computes the loss of one micro-batch from per-sample keys, and writes the exported
weights (reference layout + ours) and validation samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


def keyed_generator(key: tuple[int, ...], salt: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator for one sample and one purpose (``salt``): noise, timestep, VAE sample, dropout."""
    import numpy as np

    seed = int(np.random.default_rng([*map(int, key), salt]).integers(0, 2**63 - 1))
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def keyed_randn(keys: list[tuple[int, ...]], salt: int, shape: tuple[int, ...], device, dtype=torch.float32) -> torch.Tensor:
    """One standard-normal tensor of ``shape`` per sample, each from its own keyed generator (CPU, then moved)."""
    return torch.stack([torch.randn(shape, generator=keyed_generator(k, salt)) for k in keys]).to(device=device, dtype=dtype)


def keyed_randint(keys: list[tuple[int, ...]], salt: int, high: int, device) -> torch.Tensor:
    return torch.stack([torch.randint(0, high, (), generator=keyed_generator(k, salt)) for k in keys]).to(device)


def keyed_uniform(key: tuple[int, ...], salt: int) -> float:
    return float(torch.rand((), generator=keyed_generator(key, salt)))


def move(module: nn.Module, device=None, dtype: torch.dtype | None = None) -> nn.Module:
    """``module.to(device, dtype)`` casting only when needed (diffusers warns on every no-op dtype cast)."""
    if device is not None:
        module.to(device=device)
    current = next(module.parameters()).dtype if any(True for _ in module.parameters()) else None
    if dtype is not None and current is not None and current != dtype:
        module.to(dtype=dtype)
    return module


class Recipe:
    """Base class; see the module docstring. Subclasses set ``name`` and override the hooks."""

    name = "recipe"
    data_kind: str | tuple[str, ...] = ()

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg

    # -- models ------------------------------------------------------------------------------
    def setup(self, accelerator, weight_dtype: torch.dtype) -> None:
        raise NotImplementedError

    def trainable_modules(self) -> list[nn.Module]:
        """Modules that hold trainable tensors (they are wrapped by ``accelerator.prepare``)."""
        raise NotImplementedError

    def set_prepared(self, modules: list[nn.Module]) -> None:
        """Receive the prepared (possibly DDP-wrapped) versions of :meth:`trainable_modules`, same order."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.trainable_modules() for p in m.parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Trainable tensors with stable names (no wrapper prefixes)."""
        raise NotImplementedError

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    # -- data and loss -----------------------------------------------------------------------
    def dataset(self):
        raise NotImplementedError

    def loss(self, batch: dict[str, Any], keys: list[tuple[int, ...]], micro_step: int) -> torch.Tensor:
        raise NotImplementedError

    # -- outputs -----------------------------------------------------------------------------
    def export(self, out_dir: Path, step: int, epoch: int) -> list[Path]:
        """Write the trained weights in the reference layout and ours; returns the written paths."""
        return []

    def validate(self, out_dir: Path, step: int) -> list[Path]:
        return []
