"""Every shell block of README.md and docs/*.md marked ``<!-- runnable -->`` runs as written.

The marked blocks are the offline examples on the tiny random models. The blocks of one file run in order
(a reader follows the page: a later block may use what an earlier one made) in a fresh temporary folder that
holds the repository's ``examples/`` and ``configs/`` (the commands are written for the repository root),
with ``posevid`` on PATH running this checkout's source. Each block must exit 0, print no traceback, and
every ``--out`` it names must exist afterwards.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.docs import doc_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


PAGES = {path: [b for b in doc_blocks.blocks(path) if b.marker == "runnable"] for path in DOCS}
PAGES = {path: found for path, found in PAGES.items() if found}


def test_the_tiny_examples_are_marked_runnable():
    names = {path.name for path in PAGES}
    assert {"README.md", "dreampose.md"} <= names, names
    texts = [b.text for found in PAGES.values() for b in found]
    assert any("posevid convert" in t for t in texts) and any("posevid animate" in t for t in texts)
    assert all("--help" not in t for t in texts)


def posevid_shim(folder: Path) -> Path:
    """A ``posevid`` executable that runs this checkout's source with this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "posevid"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m posevid "$@"\n')
    shim.chmod(0o755)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", list(PAGES), ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_runnable_blocks_of_a_page(page, tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("examples", "configs"):
        (work / name).symlink_to(ROOT / name)
    bin_dir = posevid_shim(tmp_path / "bin")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for block in PAGES[page]:
        cmd = ["bash", "-euo", "pipefail", "-c", block.text]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        where = f"{block.path.relative_to(ROOT)}:{block.line}"
        assert proc.returncode == 0, f"{where} failed:\n{block.text}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"{where}:\n{proc.stderr[-3000:]}"
        for out in re.findall(r"--out\s+(\S+)", block.text):
            assert (work / out).exists(), f"{where}: {out} was not written"
