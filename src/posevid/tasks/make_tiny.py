"""Tiny random models in the official layouts, as a library call: :func:`make_tiny` with :class:`MakeTinySettings`
(``posevid make-tiny``): a smoke test of the whole toolchain offline, in seconds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posevid.models import TINY_SEED

KINDS = ("fyp", "dreampose", "wan-animate")


@dataclass
class MakeTinySettings:
    """Everything ``posevid make-tiny`` can be told; the defaults here are the only ones (the seed is the models')."""

    out: str | None = None  # the folder to create
    kind: str = "fyp"  # fyp (generate) | dreampose (animate) | wan-animate (the diffusers layout)
    seed: int = TINY_SEED  # seed of the random weights: same seed, same files
    overwrite: bool = False


@dataclass
class MakeTinyResult:
    path: Path
    message: str  # what was written and a command that tries it


def make_tiny(settings: MakeTinySettings) -> MakeTinyResult:
    """Write the tiny model; an existing non-empty folder is refused unless ``overwrite``."""
    from posevid.errors import InputError

    if not settings.out:
        raise InputError("no output folder given", hint="pass OUT")
    if settings.kind not in KINDS:
        raise InputError(f"unknown kind {settings.kind!r}", hint=f"use one of {', '.join(KINDS)}")
    out = Path(settings.out).expanduser()
    if out.exists() and (out.is_file() or any(out.iterdir())) and not settings.overwrite:
        raise InputError(f"output folder {out} already exists and is not empty", hint="choose another OUT or pass --overwrite")
    if settings.kind == "fyp":
        from posevid.models.tiny import tiny_example_command, write_tiny_followyourpose

        path = write_tiny_followyourpose(out, seed=settings.seed, overwrite=settings.overwrite)
        return MakeTinyResult(path, f"wrote a tiny random Follow-Your-Pose model to {path}; try it (seconds, from the repository root):\n"
                                    f"  {tiny_example_command(path)}")  # fmt: skip
    if settings.overwrite and out.exists():
        import shutil

        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if settings.kind == "wan-animate":
        from posevid.models.tiny_wan import write_tiny_wan_animate

        path = write_tiny_wan_animate(out, seed=settings.seed)
        return MakeTinyResult(path, f"wrote a tiny random Wan2.2-Animate model (diffusers layout) to {path}; it loads like the real "
                                    "folder:\n  python -c \"from posevid.pipelines.wan_animate import load_wan_animate; "
                                    f"print(load_wan_animate('{path}'))\"")  # fmt: skip
    from posevid.models.tiny_dreampose import tiny_example_command, write_tiny_dreampose

    path = write_tiny_dreampose(out, seed=settings.seed)
    return MakeTinyResult(path, f"wrote a tiny random DreamPose model and sample poses to {path}; try it (seconds, from the repository "
                                f"root):\n  {tiny_example_command(path)}")  # fmt: skip
