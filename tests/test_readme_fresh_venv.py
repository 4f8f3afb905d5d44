"""The README's two command blocks, verbatim, in a brand-new virtual environment (issue 12, item 1).

Block ``ci: install-and-run`` installs posevid and runs the main job; block ``ci: test`` installs what the tests
need and runs them. Both run with bash in a clean copy of this checkout, with the new venv first on PATH, so
``pip``, ``posevid`` and ``python`` are the fresh ones: exactly what a new user types.

It installs everything and runs the whole suite a second time (about as long as the suite itself plus the
installs), so it runs only when ``POSEVID_FRESH_VENV=1``: ``.ci/run`` sets it for a separate step after the
suite. Inside, the variable is removed, so the nested suite does not recurse.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("POSEVID_FRESH_VENV") != "1", reason="installs a fresh venv; .ci/run sets POSEVID_FRESH_VENV=1"),
]


def _doc_blocks():
    spec = importlib.util.spec_from_file_location("doc_blocks", ROOT / ".ci" / "doc_blocks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_copy(dst: Path) -> Path:
    """The checkout as a fresh clone would have it: tracked and not-ignored files only (no .venv, no build outputs)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def test_readme_blocks_verbatim_in_a_fresh_venv(tmp_path):
    repo = clean_copy(tmp_path / "posevid")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("POSEVID_FRESH_VENV", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv), HF_HUB_OFFLINE="1")
    doc_blocks = _doc_blocks()
    for marker in ("ci: install-and-run", "ci: test"):
        script = doc_blocks.block(repo / "README.md", marker)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=3600)
        assert proc.returncode == 0, f"README block '{marker}' failed:\n{script}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        if marker == "ci: install-and-run":
            assert (repo / "tiny.mp4").is_file() and (repo / "dance_pose" / "keypoints.json").is_file()
            assert (venv / "bin" / "posevid").is_file()  # the console script of the fresh install ran the job
        else:
            assert " passed" in proc.stdout and " failed" not in proc.stdout, proc.stdout[-2000:]
