"""Reading a batch file: one JSON job per line, checked against the command's own flags.

A job is ``{"task": "generate" | "animate", "id": optional name, FIELD: VALUE, ...}`` where every FIELD is a
flag of ``posevid generate`` / ``posevid animate``, spelled as on the command line without the dashes
(``"steps": 2``, ``"frames": 4``, ``"negative-prompt"`` or ``"negative_prompt"``, the reference spellings
such as ``"skeleton_path"`` too). ``true`` switches a flag on, ``false`` leaves it off; a list repeats a
repeatable flag (``--prompt``). The output location belongs to the batch (``DIR/<id>.mp4``), so ``out``,
``output_dir`` and ``frames_dir`` are refused, and one job makes one video (one prompt, one video per prompt).

Each line is parsed with the command's real argparse parser, so a wrong value is caught here, reported
with its line number, and does not stop the other jobs. Without an ``id`` a job is named after a hash of
its content: reordering or appending lines keeps the names, so resuming still finds finished jobs.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posevid.errors import InputError

TASKS = ("generate", "animate")
RESERVED = {"task", "id"}
OWNED_BY_BATCH = {"out", "output_dir", "frames_dir"}  # dests the batch sets itself
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


@dataclass
class Job:
    """One valid line: the task, its flags as command-line arguments, and where it came from."""

    id: str
    task: str
    argv: list[str]
    line: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class BadLine:
    line: int
    error: str


class _ParseError(Exception):
    pass


def _raise_error(message: str) -> None:
    raise _ParseError(message)


@functools.cache
def command_parser(task: str) -> argparse.ArgumentParser:
    """The real parser of ``posevid TASK`` (errors raise instead of exiting)."""
    import importlib

    from posevid.cli import _Formatter

    root = argparse.ArgumentParser(prog="posevid")
    sub = root.add_subparsers()
    importlib.import_module(f"posevid.commands.{task}").register(sub, _Formatter)
    parser = sub.choices[task]
    parser.error = _raise_error  # type: ignore[method-assign]
    return parser


def _option_for(parser: argparse.ArgumentParser, key: str) -> tuple[argparse.Action, str] | None:
    """``(action, flag)`` of a field: ``--key``, ``--key`` with ``_`` -> ``-``, or an option whose dest is ``key``."""
    for flag in (f"--{key}", f"--{key.replace('_', '-')}"):
        if flag in parser._option_string_actions:
            return parser._option_string_actions[flag], flag
    for action in parser._actions:
        if action.dest == key and action.option_strings:
            return action, action.option_strings[0]
    return None


def job_argv(task: str, fields: dict[str, Any]) -> list[str]:
    """Command-line arguments for ``fields``; raises ``_ParseError`` naming the field at fault."""
    parser = command_parser(task)
    argv: list[str] = []
    for key, value in fields.items():
        found = _option_for(parser, key)
        if found is None or found[0].help == argparse.SUPPRESS:  # hidden flags are ignored legacy spellings
            raise _ParseError(f"unknown field {key!r} for {task} (fields are the flags of 'posevid {task}')")
        action, flag = found
        if action.dest in OWNED_BY_BATCH:
            raise _ParseError(f"field {key!r} is set by the batch (outputs go to OUT/<id>.mp4)")
        if action.nargs == 0:  # store_true / store_const
            if not isinstance(value, bool):
                raise _ParseError(f"field {key!r} is a switch: use true or false, not {value!r}")
            argv += [flag] if value else []
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not isinstance(action, argparse._AppendAction):
            raise _ParseError(f"field {key!r} takes one value, not a list")
        for v in values:
            if isinstance(v, (dict, list)) or v is None:
                raise _ParseError(f"field {key!r} has an unusable value {v!r}")
            argv += [flag, str(v).lower() if isinstance(v, bool) else str(v)]
    ns = parser.parse_args(argv + ["--out", "x.mp4"])  # argparse checks types and choices
    if task == "generate":
        prompts = vars(ns).get("prompt", [])
        if len(prompts) != 1 or vars(ns).get("num_videos_per_prompt", 1) != 1:
            raise _ParseError("a generate job makes one video: give exactly one prompt and no num_videos_per_prompt above 1")
    return argv


def _default_id(task: str, fields: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:12]
    return f"{task}-{digest}"


def parse_line(text: str, line: int) -> Job:
    """One line -> a :class:`Job`; raises ``_ParseError`` with a short reason."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _ParseError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise _ParseError("a job must be a JSON object")
    task = data.get("task")
    if task not in TASKS:
        raise _ParseError(f"'task' must be one of {', '.join(TASKS)}, got {task!r}")
    fields = {k: v for k, v in data.items() if k not in RESERVED}
    job_id = data.get("id", _default_id(task, fields))
    if not isinstance(job_id, str) or not ID_RE.match(job_id):
        raise _ParseError(f"'id' {job_id!r} must be 1-120 letters, digits, '.', '_' or '-' (not starting with '.', '_' or '-')")
    return Job(id=job_id, task=task, argv=job_argv(task, fields), line=line, fields=fields)


def read_jobs(path: str | os.PathLike) -> tuple[list[Job], list[BadLine]]:
    """All jobs of a JSONL file and the lines that could not be used (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"job file not found: {path}", hint="pass a JSONL file with one job per line")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"job file {path} is not UTF-8 text", hint="save it as UTF-8 JSONL") from None
    jobs: list[Job] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            job = parse_line(text, number)
        except _ParseError as exc:
            bad.append(BadLine(number, " ".join(str(exc).split())))
            continue
        if job.id in seen:
            bad.append(BadLine(number, f"job id {job.id!r} already used on line {seen[job.id]} (give each job its own 'id')"))
            continue
        seen[job.id] = number
        jobs.append(job)
    return jobs, bad
