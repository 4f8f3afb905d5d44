"""Reading a batch file: one JSON job per line, checked against the command's own flags.

A job is ``{"task": "generate" | "animate" | "pose", "id": optional name, FIELD: VALUE, ...}`` where every FIELD is a
flag of ``posevid generate`` / ``posevid animate`` / ``posevid pose``, spelled as on the command line without the dashes
(``"steps": 2``, ``"frames": 4``, ``"negative-prompt"`` or ``"negative_prompt"``, the reference spellings
such as ``"skeleton_path"`` too; an animate job's ``"backbone"`` is ``--backbone``, and an option of another backbone
is a bad line), or a positional argument by its name (``"video"`` of a pose job). ``true`` switches a flag on,
``false`` leaves it off; a list repeats a repeatable flag (``--prompt``). The output location belongs to the batch
(``DIR/<id>.mp4``, or the folder ``DIR/<id>/`` of a pose job), so ``out``, ``output_dir`` and ``frames_dir`` are
refused, and one job makes one video (one prompt, one video per prompt).

Each line is turned into the command line it stands for (:func:`posevid.commands.fields.argv_from_fields`) and
parsed by the command's own ``parse_args``, so a wrong value is caught here, reported with its line number, and
does not stop the other jobs. Without an ``id`` a job is named after a hash of
its content: reordering or appending lines keeps the names, so resuming still finds finished jobs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posevid.commands.fields import argv_from_fields
from posevid.errors import InputError

TASKS = ("generate", "animate", "pose")
OUTPUT = {"generate": "OUT/<id>.mp4", "animate": "OUT/<id>.mp4", "pose": "the folder OUT/<id>/"}  # where a job's outputs go
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


@dataclass
class BadLine:
    line: int
    error: str


class _ParseError(Exception):
    pass


def job_argv(task: str, fields: dict[str, Any]) -> list[str]:
    """Command-line arguments for ``fields``, checked by the command's own parser; raises ``_ParseError`` with the reason."""
    command = importlib.import_module(f"posevid.commands.{task}")
    try:
        argv = argv_from_fields(task, fields, refused=dict.fromkeys(OWNED_BY_BATCH, f"is set by the batch (outputs go to {OUTPUT[task]})"))
        ns = command.parse_args(argv + ["--out", "x.mp4"])  # the command's parser checks types, choices and required arguments
    except InputError as exc:
        raise _ParseError(str(exc)) from None
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
    return Job(id=job_id, task=task, argv=job_argv(task, fields), line=line)


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
