"""The model options of every DensePose extraction, their defaults and their one check (torch-free).

``posevid densepose`` (its task's settings), ``posevid animate --driving-video`` (``--densepose-*``), ``posevid prepare
--densepose`` and the app's image -> video tab all run the same extraction with these options, so they are defined
here once: :class:`DensePoseOptions` holds the defaults, :meth:`DensePoseOptions.validate` is the only check (its
errors name the flag as the command spells it), :meth:`DensePoseOptions.model_config` applies the short side.
The building block lives here rather than in ``tasks/`` because the extraction job, ``data/`` and the tasks all read it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from posevid.errors import InputError

if TYPE_CHECKING:
    from posevid.densepose.config import DensePoseConfig

PERSON_RULES = ("top-score", "largest", "track")
"""Which detected person a frame's pose follows: the reference's first instance, the biggest box, or one person tracked."""

MIN_SHORT_SIDE = 32
"""The smallest ``short_side`` accepted (``None``, the default, is the model's own 800 pixels: the reference)."""


@dataclass(frozen=True)
class DensePoseOptions:
    """How the DensePose model runs; the defaults here are the only ones (flags, tasks, ``prepare`` and the app read them)."""

    weights: str | os.PathLike | None = None  # None: $POSEVID_DENSEPOSE_WEIGHTS or the cache (downloaded once when online)
    device: str = "auto"
    dtype: str = "fp32"  # the reference
    batch_size: int = 4  # frames per forward pass
    person: str = "top-score"  # one of PERSON_RULES; top-score = DreamPose's first instance
    short_side: int | None = None  # None: the model's 800 (the reference); smaller is faster, less exact

    @classmethod
    def from_mapping(cls, values: Any) -> DensePoseOptions:
        """Options from a mapping of some of the field names (``prepare_dataset(densepose={...})``); an unknown name is one line."""
        if isinstance(values, cls):
            return values
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise InputError(f"unknown DensePose option(s) {', '.join(unknown)}", hint=f"use {', '.join(names)}")
        return cls(**values)

    def validate(self, *, flag_prefix: str = "--") -> DensePoseOptions:
        """Every option checked (no torch, no file access); errors name the flag: ``flag_prefix`` + the option, dashed.

        ``posevid densepose`` says ``--short-side``, ``animate`` and ``prepare`` ``--densepose-short-side``. The device
        is checked where it is chosen (``utils.devices.pick_device``), the weights file where it is read.
        Returns ``self`` so that a caller can check and keep in one expression.
        """
        from posevid.utils.devices import DTYPES

        def flag(name: str) -> str:
            return f"{flag_prefix}{name.replace('_', '-')}"

        if self.dtype not in DTYPES:
            raise InputError(f"{flag('dtype')} {self.dtype!r} is not a dtype", hint=f"use one of {', '.join(DTYPES)}")
        if self.person not in PERSON_RULES:
            raise InputError(f"{flag('person')} {self.person!r} is not a person rule", hint=f"use one of {', '.join(PERSON_RULES)}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"{flag('batch_size')} must be at least 1, got {self.batch_size}")
        if self.short_side is not None and (not isinstance(self.short_side, int) or self.short_side < MIN_SHORT_SIDE):
            raise InputError(f"{flag('short_side')} must be at least {MIN_SHORT_SIDE}, got {self.short_side}")
        return self

    def model_config(self, base: DensePoseConfig) -> DensePoseConfig:
        """``base`` with this short side (the long-side cap scaled as the reference's 800/1333); ``base`` itself without one."""
        if self.short_side is None:
            return base
        return replace(base, min_size=self.short_side, max_size=round(self.short_side * 1333 / 800))

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON values (the weights path as a string), for sidecars and cache keys."""
        return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in asdict(self).items()}


__all__ = ["MIN_SHORT_SIDE", "PERSON_RULES", "DensePoseOptions"]
