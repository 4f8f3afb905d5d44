"""The flags shared by several commands, defined once: same name, values and default everywhere.

``--device`` (auto|cpu|cuda|mps, default auto), ``--dtype`` (fp32|fp16|bf16), ``--quiet`` (old spellings
``--no-progress`` and ``--no_progress`` kept as hidden aliases), ``--seed``, ``--scheduler``, ``--overwrite``,
and the speed/memory/long-video group of ``generate``. Defaults come from the task settings
(:mod:`posevid.tasks`), where they are defined once; a command passes ``default=argparse.SUPPRESS`` when it
layers a config file under its flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from posevid.errors import InputError
from posevid.utils.devices import DEVICES, DTYPES, dtype_name

SUPPRESS = argparse.SUPPRESS


def _dtype(value: str) -> str:
    try:
        return dtype_name(value)  # old spellings (float32, half...) accepted
    except InputError:
        raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(DTYPES)})") from None


def _help_default(text: str, default: Any) -> str:
    """Help with the default stated once, also when the flag's own default is SUPPRESS (config layering)."""
    return text if default is None else f"{text} (default: {default})"


def _device(value: str) -> str:
    base, _, index = value.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(DEVICES)}, or cuda:N)")
    return value


def settings_from_args(settings_class, args: argparse.Namespace, **overrides: Any):
    """Parsed flags -> a task's settings dataclass: each flag fills the field of its own name (its ``dest``); a field
    without a flag keeps its default, ``overrides`` set fields whose flag says it another way (``--no-preview``)."""
    from dataclasses import fields

    given = {f.name: getattr(args, f.name) for f in fields(settings_class) if hasattr(args, f.name)}
    return settings_class(**{**given, **overrides})


def add_device(parser, *, default: Any = "auto", what: str = "where to run", flag: str = "--device") -> None:
    shown = "auto" if default is SUPPRESS else default
    parser.add_argument(
        flag,
        type=_device,
        default=default,
        metavar="{" + ",".join(DEVICES) + "}",
        help=f"{what}: auto = cuda > mps > cpu; cuda:N picks a GPU (default: {shown})",
    )


def add_dtype(
    parser, *, default: Any = "fp32", extra: tuple[str, ...] = (), what: str = "weights precision", flag: str = "--dtype"
) -> None:
    """``--dtype fp32|fp16|bf16`` (+ ``extra`` choices such as ``auto``); ``float32``... are accepted too."""
    choices = (*extra, *DTYPES)
    shown = "fp32" if default is SUPPRESS else default  # None: ``what`` says what "unset" means
    parser.add_argument(
        flag,
        type=lambda v: v if v in extra else _dtype(v),
        choices=choices,
        default=default,
        metavar="{" + ",".join(choices) + "}",
        help=_help_default(what, shown),
    )


def add_quiet(parser, *, default: Any = False) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", default=default, help="no progress bars")
    for alias in ("--no-progress", "--no_progress"):
        parser.add_argument(alias, dest="quiet", action="store_true", default=default, help=SUPPRESS)


def add_overwrite(parser) -> None:
    parser.add_argument(
        "--overwrite", action="store_true", default=SUPPRESS, help=SUPPRESS
    )  # accepted for symmetry: outputs always replace a previous run's whole set


def add_seed(parser, *, default: Any, help: str = "random seed") -> None:
    shown = default if default is not SUPPRESS else None
    parser.add_argument("--seed", type=int, default=default, metavar="S", help=_help_default(help, shown))


def add_scheduler(parser, *, choices: tuple[str, ...], default: Any, aliases: tuple[str, ...] = ()) -> None:
    from posevid.pipelines.schedulers import canonical_name  # torch-free

    shown = choices[0] if default is SUPPRESS else default
    parser.add_argument(
        "--scheduler",
        *aliases,
        dest="scheduler",
        type=lambda v: canonical_name(v, choices) if v.lower().replace("_", "-") in (*choices, "dpmpp") else v,
        choices=choices,
        default=default,
        help=f"sampler; {choices[0]} is the reference's (default: {shown})",
    )


def add_allow_untrained_temporal(parser, *, default: Any = False) -> None:
    """Issue 12's opt-in: load a Follow-Your-Pose release without its checkpoint (identity temporal layers)."""
    parser.add_argument(
        "--allow-untrained-temporal",
        action="store_true",
        default=default,
        help="run without followyourpose_checkpoint-1000/pytorch_model.bin (SD + pose encoder, identity temporal layers)",
    )


def add_run_arguments(parser, default=SUPPRESS) -> None:
    """The speed/memory/long-video flags of ``posevid generate`` (absent unless given, like its other flags).

    The defaults the help states are :class:`~posevid.pipelines.memory.RunOptions`' (the authoritative ones)."""
    from posevid.pipelines.fyp_checks import WEIGHTINGS
    from posevid.pipelines.memory import OFFLOAD_MODES, RunOptions

    run = RunOptions()

    g = parser.add_argument_group("speed, memory and long videos")
    g.add_argument("--fast", action="store_true", default=default, help="preset: 20-step DPM-Solver++ (--scheduler dpm++ --steps 20)")
    g.add_argument(
        "--low-memory",
        action="store_true",
        default=default,
        help="preset: split CFG, chunked attention, VAE tiling, one-frame decode, 24-frame windows, model offload on a GPU",
    )
    g.add_argument(
        "--attention",
        choices=("sdpa", "chunked", "math"),
        default=default,
        help=f"attention back-end: sdpa (fused), chunked (bounded memory), math (explicit, as the reference); default {run.attention}",
    )
    g.add_argument("--attention-chunk", type=int, default=default, metavar="N", help="queries per chunk for --attention chunked/math")
    g.add_argument("--split-cfg", action="store_true", default=default, help="run the CFG branches one after the other (less memory)")
    g.add_argument("--channels-last", action="store_true", default=default, help="NHWC memory format for UNet and VAE convolutions")
    g.add_argument("--compile", action="store_true", default=default, help="torch.compile the UNet (slow first step, faster later ones)")
    g.add_argument("--vae-slicing", action="store_true", default=default, help="VAE decodes one image at a time")
    g.add_argument("--vae-tiling", action="store_true", default=default, help="VAE decodes in overlapping tiles (large frames)")
    g.add_argument(
        "--decode-chunk",
        type=int,
        default=default,
        metavar="N",
        help=f"frames per VAE decode call (default {run.decode_chunk_size})",
    )
    g.add_argument(
        "--offload",
        choices=OFFLOAD_MODES,
        default=default,
        help=f"move models to the CPU between uses on a GPU: model (fast) or sequential (smallest, slow); default {run.offload}",
    )
    g.add_argument(
        "--window",
        type=int,
        default=default,
        metavar="N",
        help="sample long videos in overlapping windows of N frames (24 = the reference's longest clip); "
        "frames are streamed to the mp4, so memory does not grow with --frames",
    )
    g.add_argument(
        "--overlap",
        type=int,
        default=default,
        metavar="N",
        help=f"frames shared by neighbouring windows (default {run.overlap})",
    )
    g.add_argument(
        "--window-weighting",
        choices=WEIGHTINGS,
        default=default,
        help=f"how overlapping windows are fused at every step (default {run.window_weighting}: window edges count least)",
    )


def add_backbone_option(parser, dest: str, flag, *, names: tuple[str, ...] | None = None, default_text: str | None = None,
                        when: str | None = None) -> None:  # fmt: skip
    """One option of an ``animate`` backbone (a :class:`posevid.tasks.backbones.Flag`) as a flag filling ``dest``.

    The flag's default is SUPPRESS: it is in the parsed namespace only when given, so ``posevid animate`` can refuse
    an option the chosen backbone does not take, and each backbone's own default (stated in the help as
    ``default_text``) applies otherwise. ``flag.shared`` names a flag defined once for several commands: ``scheduler``
    (:func:`add_scheduler`) or ``densepose`` (``posevid densepose``'s model flags, as ``--densepose-*``; ``when``
    starts their help, by default the flag's own help).
    """
    names = names or flag.names
    if flag.shared == "scheduler":
        add_scheduler(parser, choices=flag.choices, default=SUPPRESS, aliases=names[1:])
        return
    if flag.shared == "densepose":
        from posevid.commands.densepose import add_model_arguments

        prefix = "densepose-"
        add_model_arguments(_Suppressed(parser, dest), prefix=prefix, when=flag.help if when is None else when,
                            names=(names[0].removeprefix("--" + prefix).replace("-", "_"),))  # fmt: skip
        return
    text = SUPPRESS if flag.hidden else _help_default(flag.help, default_text)
    if flag.switch is not None:
        parser.add_argument(*names, dest=dest, action="store_const", const=flag.switch, default=SUPPRESS, help=text)
        return
    parser.add_argument(*names, dest=dest, type=flag.type, choices=flag.choices, metavar=flag.metavar, default=SUPPRESS, help=text)


class _Suppressed:
    """A parser whose flags default to SUPPRESS, their own default stated in the help instead (a flag defined for
    another command, added as an animate backbone's option)."""

    def __init__(self, parser, dest: str) -> None:
        self._parser, self._dest = parser, dest

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        kwargs["dest"] = self._dest
        kwargs["help"] = _help_default(kwargs.get("help", ""), None if "default" in kwargs.get("help", "") else kwargs.get("default"))
        kwargs["default"] = SUPPRESS
        return self._parser.add_argument(*args, **kwargs)
