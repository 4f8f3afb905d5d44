"""The example that ``make-tiny`` prints (and writes to tiny/README.txt) runs in seconds, as promised.

It used to be ``generate`` at the defaults (512x512, 50 steps): 5.5 minutes on a CPU. The example must now be
a small run, it must actually run from a repository checkout, and the README's tiny block must be the same
command (that block is run verbatim by tests/test_docs_runnable.py).
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

from posevid.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _printed_example(capsys) -> tuple[str, list[str]]:
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("posevid ")]
    assert len(lines) == 1, lines
    return lines[0], shlex.split(lines[0])


def _runnable_commands(doc: Path, first_line: str) -> list[list[str]]:
    """The commands of the ``<!-- runnable -->`` block of ``doc`` that starts with ``first_line``."""
    text = doc.read_text().replace("\\\n", " ")
    block = re.search(r"<!-- runnable -->\n```bash\n(" + re.escape(first_line) + r"\n.*?)```", text, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def _same(a: list[str], b: list[str]) -> bool:
    return [x.rstrip("/") for x in a] == [x.rstrip("/") for x in b]


def _flag(argv: list[str], name: str) -> int:
    return int(argv[argv.index(name) + 1])


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A working directory laid out like the repository root (the examples' paths are relative to it)."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fyp_example_is_small_runs_in_seconds_and_matches_the_readme(checkout, capsys):
    assert main(["make-tiny", "tiny/"]) == 0
    line, argv = _printed_example(capsys)
    assert line in (checkout / "tiny" / "README.txt").read_text()
    assert argv[:2] == ["posevid", "generate"]
    assert _flag(argv, "--height") * _flag(argv, "--width") <= 64 * 64 and _flag(argv, "--steps") <= 4 and _flag(argv, "--frames") <= 8

    commands = _runnable_commands(ROOT / "README.md", "posevid make-tiny tiny/")
    assert _same(commands[1], argv)  # the README shows the printed example (and test_docs_runnable runs it)

    start = time.perf_counter()
    assert main(argv[1:]) == 0, capsys.readouterr().err
    elapsed = time.perf_counter() - start
    assert (checkout / "tiny.mp4").is_file()
    assert elapsed < 90, f"the tiny example took {elapsed:.0f} s"  # the old example: 5.5 minutes


def test_dreampose_example_uses_the_sample_poses_and_is_the_documented_one(checkout, capsys):
    assert main(["make-tiny", "--kind", "dreampose", "tiny_dp/"]) == 0
    _, argv = _printed_example(capsys)
    poses = sorted(p.name for p in (checkout / "tiny_dp" / "poses").iterdir())
    assert poses == [f"frame_{n}_densepose.npy" for n in range(4)]
    assert argv[:2] == ["posevid", "animate"] and Path(argv[argv.index("--densepose") + 1]) == Path("tiny_dp/poses")
    assert "--steps" in argv and _flag(argv, "--steps") <= 2
    # docs/dreampose.md shows this command; test_docs_runnable runs that block verbatim
    commands = _runnable_commands(ROOT / "docs" / "dreampose.md", "posevid make-tiny --kind dreampose tiny_dp/")
    assert _same(commands[1], argv)
