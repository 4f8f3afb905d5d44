#!/usr/bin/env python3
"""The shell blocks of README.md and docs/*.md that are meant to be run, so CI runs exactly what the docs say.

A fenced ```bash block is picked up when the line right above its fence is an HTML comment marker:

    <!-- ci: install-and-run -->   README: install posevid and run the main job (run by .ci/run, once)
    <!-- ci: test -->              README: install what the tests need and run the suite (same)
    <!-- runnable -->              runs offline on the tiny models from a repository checkout (tests/test_docs_runnable.py)

Markers are invisible on the rendered page. Command line (stdlib only, runs before anything is installed):

    python3 .ci/doc_blocks.py README.md "ci: test"     # prints that block's text, for `bash -c`
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

_MARKER = re.compile(r"^<!--\s*(.+?)\s*-->\s*$")
_FENCE_OPEN = re.compile(r"^```(bash|sh|shell|console)\s*$")


class Block(NamedTuple):
    path: Path
    line: int  # 1-based line of the opening fence
    marker: str
    text: str


def blocks(path: str | Path) -> list[Block]:
    """Every marked shell block of one Markdown file, in order."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    for i, line in enumerate(lines):
        m = _MARKER.match(line.strip())
        if not m or i + 1 >= len(lines) or not _FENCE_OPEN.match(lines[i + 1].strip()):
            continue
        body: list[str] = []
        for end in range(i + 2, len(lines)):
            if lines[end].strip() == "```":
                break
            body.append(lines[end])
        else:
            raise ValueError(f"{path}:{i + 2}: code block marked '{m.group(1)}' is never closed")
        found.append(Block(path, i + 2, m.group(1), "\n".join(body) + "\n"))
    return found


def block(path: str | Path, marker: str) -> str:
    """The text of the one block marked ``marker`` in ``path`` (an error when there is not exactly one)."""
    matches = [b for b in blocks(path) if b.marker == marker]
    if len(matches) != 1:
        raise ValueError(f"{path}: expected one block marked '<!-- {marker} -->', found {len(matches)}")
    return matches[0].text


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: doc_blocks.py FILE.md MARKER")
    try:
        sys.stdout.write(block(sys.argv[1], sys.argv[2]))
    except (OSError, ValueError) as exc:
        sys.exit(f"doc_blocks: {exc}")
