"""The image + pose -> video backbones, one registry: what ``posevid animate --backbone``, the app's image -> video
tab and a batch job's ``backbone`` field choose from.

A backbone is one module here (``dreampose.py``, ...) holding its :class:`Backbone` registration:

* ``options``: a dataclass of the backbone's OWN settings, each field made with :func:`option`, so its default,
  its command-line spelling (:class:`Flag`) and its app control (:class:`Form`) are defined once, together;
* ``validate``: cheap checks of the settings (no torch import): a mistake costs no model time;
* ``loader``: the :class:`~posevid.tasks.common.ModelCache` key and loader of its pipeline;
* ``prepare``: the shared inputs (reference image, pose input or driving video) turned into its conditioning;
* ``run``: the pipeline on that conditioning, each frame handed to the task's one writer as it is ready.

:mod:`posevid.tasks.animate` is the use case around them (common settings, device and dtype, the model cache,
the output files); the commands, the app and batch read flags, form controls and choices from :data:`BACKBONES`.
Importing this package imports no torch (``posevid --help`` stays fast).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posevid.errors import InputError

if TYPE_CHECKING:
    from posevid.tasks.animate import AnimateSettings


@dataclass(frozen=True)
class Flag:
    """How an option is spelled on the command line (``posevid animate``; ``app`` for ``posevid app``).

    ``shared``: the flag is one of the commands' shared flag definitions (``commands/_flags.add_backbone_option``:
    ``"scheduler"``, ``"densepose"``), which then gives its help; ``switch``: the value the flag stores when given
    (``True`` for ``--allow-gaps``, ``False`` for ``--no-stretch``). ``app``: set once when ``posevid app`` starts
    (e.g. ``--dreampose-epoch``) instead of per request in the form.
    """

    names: tuple[str, ...]
    help: str = ""
    metavar: str | None = None
    choices: tuple[Any, ...] | None = None
    type: Callable[[str], Any] | None = None
    switch: bool | None = None
    shared: str | None = None
    hidden: bool = False
    app: str | None = None


@dataclass(frozen=True)
class Form:
    """How an option appears in the app's image -> video tab (an option without a Form is command-line only).

    ``widget``: ``slider``, ``number``, ``dropdown`` (choices: the flag's), ``checkbox``, ``text`` or ``files``
    (an upload that the app turns into the option's value with the collector named by ``upload``). ``elem``: the
    control's id after ``i2v-`` (default ``<backbone>-<field>``); ``section``: the collapsed accordion it sits in.
    """

    label: str
    widget: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    info: str | None = None
    elem: str | None = None
    section: str | None = None
    upload: str | None = None
    file_types: tuple[str, ...] = ()
    name: str | None = None  # what messages call it (default: the label)


def option(default: Any, *names: str, help: str = "", form: Form | None = None, factory: Callable[[], Any] | None = None,
           **flag: Any) -> Any:  # fmt: skip
    """A field of a backbone's options dataclass: its default (defined here once), its flag and its app control."""
    if flag.get("type") is None and default is not None and not isinstance(default, bool):
        flag["type"] = type(default)
    meta = {"flag": Flag(tuple(names), help=help, **flag), "form": form}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Generated:
    """What a backbone's ``run`` made: the frame numbers in order, the frame size, notes and its part of the sidecar."""

    frame_numbers: list[int]
    size_hw: tuple[int, int]
    record: dict[str, Any]
    notes: list[str] = field(default_factory=list)


OnFrame = Callable[[int, Any], None]
"""``on_frame(number, uint8 (H, W, 3) frame)``: the task's writer, called once per frame as it is ready."""


@dataclass(frozen=True)
class Backbone:
    """One image + pose -> video backbone (see the module docstring for each hook's job)."""

    name: str  # the --backbone value
    title: str  # for help and the app
    summary: str  # one line: what it takes and makes
    options: type  # the options dataclass
    validate: Callable[[AnimateSettings], None]
    loader: Callable[[AnimateSettings, str, str], tuple[tuple, Callable[[], Any]]]  # (settings, device, dtype) -> (key, load)
    prepare: Callable[..., Any]  # (settings, *, device, work: Path, progress, note) -> conditioning
    run: Callable[..., Generated]  # (pipe, settings, conditioning, *, on_frame, progress, note) -> Generated
    model_help: str  # what --model takes
    default_model: str | None = None  # the weights used when no model is given (a hub id, found in the hub cache), if any
    pose_inputs: tuple[str, ...] = ("driving_video",)  # the ways to give the motion (option names, or driving_video): one of them
    accelerator_dtype: str = "fp16"  # what --dtype auto means on a GPU
    extra_flags: tuple[tuple[str, Flag], ...] = ()  # (dest, flag): spellings that are no option field (folded by from_flags)
    from_flags: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # extra_flags' values -> option fields

    def defaults(self) -> Any:
        return self.options()

    def model_text(self) -> str:
        """What ``--model`` takes, and what is used without it (for the help of animate's and the app's model flags)."""
        default = f" (default: {self.default_model}, from the hub cache)" if self.default_model else ""
        return self.model_help + default

    def fields(self) -> list[dataclasses.Field]:
        return list(dataclasses.fields(self.options))

    def default_of(self, name: str) -> Any:
        f = next(f for f in self.fields() if f.name == name)
        return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]

    def flag(self, name: str) -> Flag:
        """The flag of option field (or extra flag) ``name``."""
        for f in self.fields():
            if f.name == name:
                return f.metadata["flag"]
        return dict(self.extra_flags)[name]

    def takes(self, name: str) -> bool:
        return any(f.name == name for f in self.fields()) or name in dict(self.extra_flags)

    def make_options(self, values: Mapping[str, Any]) -> Any:
        """The options dataclass from ``values`` (field -> value; what is missing keeps its default)."""
        values = dict(values)
        if self.from_flags is not None:
            values = self.from_flags(values)
        return self.options(**values)


def get_backbone(name: str) -> Backbone:
    """The registration of ``name``; an unknown name is a one-line InputError listing the known ones."""
    try:
        return BACKBONES[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown backbone {name!r}", hint=f"choose one of {', '.join(BACKBONES)}") from None


def owners(name: str) -> list[Backbone]:
    """The backbones that take option (or extra flag) ``name``."""
    return [b for b in BACKBONES.values() if b.takes(name)]


def check_options(backbone: Backbone, names: list[str], *, spell: Callable[[Backbone, str], str] | None = None) -> None:
    """One-line InputError for a value ``backbone`` does not take, naming the backbone that does (a typo, or the wrong
    ``--backbone``). ``spell(owner, name)`` names the option as the user gave it (default: its first flag)."""
    spell = spell or (lambda b, n: b.flag(n).names[0])
    for name in names:
        if backbone.takes(name):
            continue
        others = owners(name)
        if not others:
            raise InputError(f"unknown animate setting {name!r}")
        which = ", ".join(b.name for b in others)
        raise InputError(f"{spell(others[0], name)} is an option of --backbone {which}, not of --backbone {backbone.name}",
                         hint=f"drop it, or pass --backbone {others[0].name}")  # fmt: skip


def check_pose_inputs(backbone: Backbone, given: set[str], spell: Callable[[str], str], *, where: str = "", verb: str = "pass") -> None:
    """Exactly one of ``backbone.pose_inputs`` is in ``given``, else one line naming them as ``spell(name)`` says
    (the command line names flags, the app its controls)."""
    chosen = [n for n in backbone.pose_inputs if n in given]
    if len(chosen) > 1:
        raise InputError(f"{where}give either {' or '.join(spell(n) for n in chosen)}, not both")
    if not chosen:
        raise InputError(f"{where}no pose given", hint=f"{verb} {' or '.join(spell(n) for n in backbone.pose_inputs)}")


def check_driving_video(settings: AnimateSettings) -> None:
    """A given driving video must be a file (one line naming the flag)."""
    if settings.driving_video and not Path(settings.driving_video).is_file():
        raise InputError(f"driving video not found: {settings.driving_video}", hint="check --driving-video")


def defaults_text(name: str) -> str:
    """``"dreampose 100, wan-animate 20"``: the default of option ``name`` in each backbone that has it (for help)."""
    return ", ".join(f"{b.name} {b.default_of(name)}" for b in owners(name) if any(f.name == name for f in b.fields()))


# ------------------------------------------------------------------------------------------------ the registry
def _registered() -> tuple[Backbone, ...]:
    from posevid.tasks.backbones import dreampose, wan_animate

    return (dreampose.BACKBONE, wan_animate.BACKBONE)


# last: each registration module imports the names above
BACKBONES: dict[str, Backbone] = {b.name: b for b in _registered()}
"""Every backbone by name, the default (today's behaviour) first."""
DEFAULT = next(iter(BACKBONES))


__all__ = ["BACKBONES", "DEFAULT", "Backbone", "Flag", "Form", "Generated", "OnFrame", "check_driving_video", "check_options",
           "check_pose_inputs", "defaults_text", "get_backbone", "option", "owners"]  # fmt: skip
