"""The one scheduler name table of posevid (Follow-Your-Pose, DreamPose, CLI, app).

A short name (``--scheduler ddim``) maps to a diffusers scheduler class plus the config overrides that keep
the reference's behaviour: DDIM/DDPM with ``clip_sample=False`` (the reference pipelines force it off), PNDM
with PRK steps skipped (SD's config), DPM-Solver++ as the second-order multistep solver. A new sampler is
added here, and only here.

Swapping follows diffusers: ``pipe.scheduler = make_scheduler("dpm++", pipe.scheduler.config)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from posevid.errors import InputError

# name -> (diffusers class, config overrides); "dpmpp" is an alias of "dpm++"
TABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": ("DDIMScheduler", {"clip_sample": False}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "ddpm": ("DDPMScheduler", {"clip_sample": False}),
}
ALIASES = {"dpmpp": "dpm++"}
# The names each pipeline offers, its reference sampler first.
FYP_SCHEDULERS = ("ddim", "dpm++", "unipc", "euler", "pndm")
DREAMPOSE_SCHEDULERS = ("pndm", "ddim", "dpm++", "euler", "euler-a", "unipc", "lms", "ddpm")


def canonical_name(name: str, allowed: tuple[str, ...] = tuple(TABLE)) -> str:
    """``"DDIM"``/``"dpmpp"``/``"euler_a"`` -> the table's name; one-line InputError for an unknown one."""
    key = str(name).lower().strip().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in allowed:
        raise InputError(f"unknown scheduler {name!r}", hint=f"use one of {', '.join(allowed)}")
    return key


def scheduler_class(name: str, allowed: tuple[str, ...] = tuple(TABLE)):
    """The diffusers class for a short name."""
    import diffusers

    return getattr(diffusers, TABLE[canonical_name(name, allowed)][0])


def make_scheduler(name: str, config: Mapping[str, Any], allowed: tuple[str, ...] = tuple(TABLE), *, pin_defaults: bool = True):
    """Scheduler ``name`` built from an existing scheduler's ``config`` with the table's overrides.

    ``pin_defaults``: the values the source scheduler took by default (e.g. DDIM's ``timestep_spacing="leading"``)
    are passed on explicitly, as DreamPose's ``--sampler`` did. False is diffusers' ``from_config``: those keys take
    the new class's defaults (DPM-Solver's ``linspace``), as Follow-Your-Pose's ``--scheduler`` did. Both are kept
    because each pipeline's outputs were released with its own behaviour.
    """
    key = canonical_name(name, allowed)
    cls_name, overrides = TABLE[key]
    config = dict(config)
    if pin_defaults:
        config = {k: v for k, v in config.items() if not k.startswith("_")}
    if key == "pndm":
        overrides = {"skip_prk_steps": config.get("skip_prk_steps", True)}
    return scheduler_class(key).from_config({**config, **overrides})


def swap_scheduler(pipe, name: str | None, allowed: tuple[str, ...] = tuple(TABLE), *, pin_defaults: bool = True) -> None:
    """Set ``pipe.scheduler`` to a fresh ``name``, as diffusers swaps schedulers.

    Built from the config of the scheduler the pipeline was loaded with (remembered on the first swap), so a
    cached pipeline gives the same sampler for the same name whatever ran on it before."""
    if name is None:
        return
    if getattr(pipe, "_loaded_scheduler_config", None) is None:
        pipe._loaded_scheduler_config = dict(pipe.scheduler.config)
    pipe.scheduler = make_scheduler(name, pipe._loaded_scheduler_config, allowed, pin_defaults=pin_defaults)


__all__ = ["DREAMPOSE_SCHEDULERS", "FYP_SCHEDULERS", "TABLE", "canonical_name", "make_scheduler", "scheduler_class", "swap_scheduler"]
