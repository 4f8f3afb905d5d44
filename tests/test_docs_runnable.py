"""Every shell block of README.md and docs/*.md marked ``<!-- runnable -->`` runs as written.

The marked blocks are the offline examples on the tiny random models. The blocks of one file run in order
(a reader follows the page: a later block may use what an earlier one made) in a fresh temporary folder that
holds the repository's ``examples/`` and ``configs/`` (the commands are written for the repository root),
with ``posevid`` on PATH running this checkout's source. Each block must exit 0, print no traceback, and
every ``--out`` it names must exist afterwards.

The pages are independent, so the selected pages run at the same time (one thread per page, each page's blocks in
order in its own folder): their ``posevid`` processes are single-threaded, mostly imports, so on 2 cores the pages
take about half the sum of their times instead of the sum.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from plugins.docs import doc_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


PAGES = {path: [b for b in doc_blocks.blocks(path) if b.marker == "runnable"] for path in DOCS}
PAGES = {path: found for path, found in PAGES.items() if found}
# at most this many pages at once (each runs one single-threaded posevid process at a time, under 1 GB)
MAX_PAGES_AT_ONCE = 4


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


def run_page(page: Path, tmp: Path) -> tuple[Path, list[tuple[object, subprocess.CompletedProcess]]]:
    """Run the page's blocks in order in a fresh folder (stopping at the first that fails): (folder, [(block, process)])."""
    work = tmp / "repo"
    work.mkdir()
    for name in ("examples", "configs"):
        (work / name).symlink_to(ROOT / name)
    bin_dir = posevid_shim(tmp / "bin")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ran = []
    for block in PAGES[page]:
        cmd = ["bash", "-euo", "pipefail", "-c", block.text]
        ran.append((block, subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)))
        if ran[-1][1].returncode != 0:
            break
    return work, ran


@pytest.fixture(scope="module")
def page_runs(request, tmp_path_factory) -> dict:
    """Every page selected in this session (``-k`` respected), run at the same time; {page: run_page(...)}."""
    selected = [item.callspec.params["page"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_runnable_blocks_of_a_page"]  # fmt: skip
    with ThreadPoolExecutor(max_workers=max(1, min(len(selected), MAX_PAGES_AT_ONCE))) as pool:
        futures = {page: pool.submit(run_page, page, tmp_path_factory.mktemp("docs_page")) for page in selected}
    return {page: future.result() for page, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("page", list(PAGES), ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_runnable_blocks_of_a_page(page, page_runs):
    work, ran = page_runs[page]
    for block, proc in ran:
        where = f"{block.path.relative_to(ROOT)}:{block.line}"
        assert proc.returncode == 0, f"{where} failed:\n{block.text}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"{where}:\n{proc.stderr[-3000:]}"
        for out in re.findall(r"--out\s+(\S+)", block.text):
            assert (work / out).exists(), f"{where}: {out} was not written"
    assert len(ran) == len(PAGES[page])  # every block ran
