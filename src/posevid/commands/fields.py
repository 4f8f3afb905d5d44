"""A command's flags as named fields: how a job file (``posevid batch``) spells the flags of ``generate``, ``animate`` or
``pose``.

A field is a flag without its dashes (``"steps": 2``, ``"negative-prompt"`` or ``"negative_prompt"``, the reference
spellings such as ``"skeleton_path"``) or a positional argument by its name (``"video"`` of ``posevid pose``); ``true``
switches a switch on, ``false`` leaves it off, a list repeats a repeatable flag. :func:`argv_from_fields` turns fields
into the command line they stand for, and :func:`command_parser` parses it with the command's own parser, so a job is
checked exactly as the command line would be.

Why a parser of our own: argparse has no public way to list a parser's flags. :class:`FieldParser` records every flag
from the actions its public ``add_argument`` returns (also in argument groups), and raises
:class:`~posevid.errors.InputError` where argparse would print usage and exit.
"""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from posevid.errors import InputError


@dataclass(frozen=True)
class Flag:
    """One option string of a command and what it takes."""

    option: str  # as the user spells it, e.g. --skeleton_path; a positional argument: its name
    dest: str  # the settings field it fills
    switch: bool  # takes no value (store_true / store_const)
    repeatable: bool  # may be given several times (action="append")
    hidden: bool  # not in --help: an accepted-and-ignored legacy spelling
    positional: bool = False  # given without an option string (``posevid pose VIDEO``)


class FieldParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that knows its flags (:attr:`flags`) and raises ``InputError`` instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: dict[str, Flag] = {}  # before argparse's own __init__, which adds --help
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self._record(action, kwargs)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any):
        return self._recording(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, *args: Any, **kwargs: Any):
        return self._recording(super().add_mutually_exclusive_group(*args, **kwargs))

    def _recording(self, group):
        add = group.add_argument

        def add_argument(*args: Any, **kwargs: Any) -> argparse.Action:
            action = add(*args, **kwargs)
            self._record(action, kwargs)
            return action

        group.add_argument = add_argument
        return group

    def _record(self, action: argparse.Action, kwargs: Mapping[str, Any]) -> None:
        if not action.option_strings:  # a positional argument: a field named after it
            self.flags[action.dest] = Flag(action.dest, action.dest, switch=False, repeatable=action.nargs in ("*", "+"),
                                           hidden=False, positional=True)  # fmt: skip
        for option in action.option_strings:
            self.flags[option] = Flag(option, action.dest, switch=action.nargs == 0,
                                      repeatable=kwargs.get("action") in ("append", "extend"),
                                      hidden=action.help == argparse.SUPPRESS)  # fmt: skip

    def flag(self, key: str) -> Flag | None:
        """The flag a field names: ``--key``, ``--key`` with ``_`` -> ``-``, the positional argument ``key``, or the first
        option whose dest is ``key``."""
        for option in (f"--{key}", f"--{key.replace('_', '-')}", key):
            if option in self.flags:
                return self.flags[option]
        return next((f for f in self.flags.values() if f.dest == key), None)

    def error(self, message: str):  # argparse's documented hook: here a one-line error instead of usage + exit(2)
        raise InputError(message)


@functools.cache
def command_parser(name: str) -> FieldParser:
    """The real parser of ``posevid NAME`` (the command module's own ``register``), as a :class:`FieldParser`."""
    root = FieldParser(prog="posevid")
    sub = root.add_subparsers()
    importlib.import_module(f"posevid.commands.{name}").register(sub, argparse.HelpFormatter)
    return sub.choices[name.replace("_", "-")]


def argv_from_fields(name: str, fields: Mapping[str, Any], *, refused: Mapping[str, str] | None = None) -> list[str]:
    """The arguments of ``posevid NAME`` that ``fields`` stand for; a field that is no flag, or a value a flag cannot take,
    is a one-line InputError naming the field. ``refused``: dest -> why a field may not be given (e.g. set by the batch)."""
    parser = command_parser(name)
    argv: list[str] = []
    positionals: list[str] = []  # first on the line, so that no option takes them as its value
    for key, value in fields.items():
        flag = parser.flag(key)
        if flag is None or flag.hidden:  # hidden flags are ignored legacy spellings
            raise InputError(f"unknown field {key!r} for {name} (fields are the flags of 'posevid {name}')")
        if refused and flag.dest in refused:
            raise InputError(f"field {key!r} {refused[flag.dest]}")
        if flag.switch:
            if not isinstance(value, bool):
                raise InputError(f"field {key!r} is a switch: use true or false, not {value!r}")
            argv += [flag.option] if value else []
            continue
        if isinstance(value, list) and not flag.repeatable:
            raise InputError(f"field {key!r} takes one value, not a list")
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, (dict, list)) or v is None:
                raise InputError(f"field {key!r} has an unusable value {v!r}")
            text = str(v).lower() if isinstance(v, bool) else str(v)
            if flag.positional:
                if text.startswith("-"):
                    raise InputError(f"field {key!r} may not start with '-': {text!r}")
                positionals.append(text)
            else:
                argv += [flag.option, text]
    return positionals + argv


__all__ = ["FieldParser", "Flag", "argv_from_fields", "command_parser"]
