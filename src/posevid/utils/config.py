"""The one YAML config reader: the reference's sampling and training configs and detectron2 config dumps.

Why OmegaConf: the reference scripts load their configs with ``OmegaConf.load``, so a config written for them
(interpolations such as ``${output_dir}`` included) means here what it meant there; plain YAML files (detectron2's
config dumps) read the same as with ``yaml.safe_load``. A file that is missing or not YAML is a one-line
:class:`~posevid.errors.InputError`; the caller checks the shape it needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from posevid.errors import InputError, short_reason


def read_yaml(
    path: str | os.PathLike, *, what: str = "config", missing_hint: str = "check the path", hint: str = "fix the YAML syntax"
) -> Any:
    """The content of a YAML file as plain Python (dicts, lists, scalars; interpolations resolved); ``{}`` if empty."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}", hint=missing_hint)
    try:
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(OmegaConf.load(str(path)), resolve=True)
    except Exception as exc:  # YAML syntax, OmegaConf's key rules, unreadable file
        raise InputError(f"cannot parse {what} {path}: {short_reason(exc)}", hint=hint) from None
    return {} if data is None else data


def parse_value(text: str) -> Any:
    """A value given on the command line (``--set key=value``) read as YAML: ``4`` -> 4, ``null`` -> None, ``[a, b]`` -> list;
    text that is not YAML stays text."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


__all__ = ["parse_value", "read_yaml"]
