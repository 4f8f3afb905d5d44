"""JSON lines, written so that a crash tears at most the last line, and read so that a torn last line is dropped.

One place for every append-only log of posevid: the data manifest (``manifest.jsonl``), the batch runner's attempt
ledger and the training log (``train_log.jsonl``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def append_json_line(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line with a single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``: a crash leaves
    at most a torn last line, never a half line in the middle (and processes appending to one file never interleave)."""
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json_lines(path: str | os.PathLike) -> Iterator[Any]:
    """The records of a JSON-lines file in order; a torn last line (an interrupted write) and unreadable lines are
    skipped with a warning, blank lines silently. A missing file has no records."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                log.warning("%s: dropping torn last line %d (interrupted write)", path, lineno)
                break
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: ignoring unreadable line %d", path, lineno)


__all__ = ["append_json_line", "read_json_lines"]
