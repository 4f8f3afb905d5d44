"""What ``.ci/run`` runs, and in which order, checked in about a second with stand-in commands (issue 20, part 8).

``.ci/run`` is CI on a clean machine: ruff, then the README's two command blocks exactly as written, once each
(block 1 installs posevid into a new venv and runs the main job, block 2 installs the test extras and runs the
suite). It used to end with ``tests/test_readme_fresh_venv.py``, which ran both blocks again in another brand-new
venv: a second install and a second whole suite that checked nothing the first did not. The few things that test
checked beyond exit codes (block 1 ran the console script of the new venv and wrote every ``--out`` it names; no
``PYTHONPATH`` reaches the installed code) are now checked by ``.ci/run`` itself.

Here the real ``.ci/run`` runs on a copy of ``.ci/``, ``README.md`` and ``pyproject.toml`` with a PATH of stand-ins
for ``python3``, ``python``, ``pip``, ``posevid``, ``ruff`` and ``apt-get`` that record their arguments
(``doc_blocks.py`` runs for real). The record must be exactly: the venv, ruff installed and run, Chromium installed
when it is missing, then block 1's commands, then block 2's, each as the same stand-ins record them when that block
is run on its own; so the blocks cannot drift from the README, and the suite runs once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from plugins.docs import doc_blocks

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKERS = ("ci: install-and-run", "ci: test")

_RECORD = r"""
printf '%s\t%s\t%s' "${PYTHONPATH-<unset>}" "${CI-<unset>}" "$(basename "$0")" >> "$CI_LOG"
for arg in "$@"; do printf '\t%s' "$arg" >> "$CI_LOG"; done
printf '\n' >> "$CI_LOG"
"""
STAND_INS = {
    # python3 runs .ci/doc_blocks.py for real; `-m venv DIR` makes a venv whose activate puts DIR/bin first on PATH
    "python3": r"""
if [ "${1-}" = .ci/doc_blocks.py ]; then exec "$REAL_PYTHON" "$@"; fi
RECORD
if [ "${1-} ${2-}" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf 'export VIRTUAL_ENV="%s"\nPATH="$VIRTUAL_ENV/bin:$PATH"\n' "$(cd "$3" && pwd)" > "$3/bin/activate"
fi
""",
    # an editable install puts the posevid console script into the active venv
    "pip": r"""
RECORD
case " $* " in *" -e "*) if [ -n "${VIRTUAL_ENV-}" ]; then cp "$STAND_IN_DIR/posevid" "$VIRTUAL_ENV/bin/posevid"; fi ;; esac
""",
    # posevid writes what each --out names (a folder when it ends with /)
    "posevid": r"""
RECORD
previous=""
for arg in "$@"; do
  if [ "$previous" = --out ]; then
    case "$arg" in */) mkdir -p "$arg" ;; *) mkdir -p "$(dirname "$arg")" && touch "$arg" ;; esac
  fi
  previous="$arg"
done
""",
    "python": "RECORD",
    "ruff": "RECORD",
    "apt-get": "RECORD",
}
REAL_TOOLS = ("bash", "basename", "cat", "cp", "cut", "dirname", "grep", "head", "mkdir", "rm", "touch", "tr")


class Call(NamedTuple):
    argv: list[str]
    pythonpath: str
    ci: str


def stand_in_path(folder: Path, chromium: bool, stand_ins: dict[str, str] = STAND_INS) -> Path:
    """A folder for PATH holding the recording stand-ins and the real coreutils .ci/run needs (nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in stand_ins.items():
        script = folder / name
        script.write_text("#!" + shutil.which("bash") + "\n" + body.replace("RECORD", _RECORD))
        script.chmod(0o755)
    for tool in REAL_TOOLS:
        (folder / tool).symlink_to(shutil.which(tool))
    if chromium:
        (folder / "chromium").symlink_to(folder / "ruff")  # only looked up, never run
    return folder


def _env(bin_dir: Path, log: Path) -> dict[str, str]:
    return {"PATH": str(bin_dir), "CI_LOG": str(log), "REAL_PYTHON": sys.executable, "STAND_IN_DIR": str(bin_dir),
            "PYTHONPATH": "/somewhere/else", "HOME": str(log.parent)}  # fmt: skip


def _calls(log: Path) -> list[Call]:
    if not log.exists():
        return []
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    return [Call(row[2:], row[0], row[1]) for row in rows]


def run_ci(tmp: Path, *, chromium: bool = True, script: str | None = None, readme: str | None = None,
           stand_ins: dict[str, str] = STAND_INS):  # fmt: skip
    """Run ``.ci/run`` (or ``script``, another text for it) on a copy of the files it reads; (process, calls)."""
    repo = tmp / "repo"
    (repo / ".ci").mkdir(parents=True)
    (repo / ".ci" / "run").write_text(script if script is not None else (ROOT / ".ci" / "run").read_text())
    shutil.copy(ROOT / ".ci" / "doc_blocks.py", repo / ".ci" / "doc_blocks.py")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    (repo / "README.md").write_text(readme if readme is not None else README.read_text())
    bin_dir, log = stand_in_path(tmp / "bin", chromium, stand_ins), tmp / "calls.log"
    proc = subprocess.run([shutil.which("bash"), str(repo / ".ci" / "run")], cwd=tmp, env=_env(bin_dir, log),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return proc, _calls(log)


def block_calls(tmp: Path, marker: str) -> list[list[str]]:
    """The commands that README block ``marker`` runs, recorded by the same stand-ins when it is run on its own."""
    work = tmp / marker.replace(":", "").replace(" ", "_")
    work.mkdir(parents=True)
    bin_dir, log = stand_in_path(work / "bin", chromium=True), work / "calls.log"
    cmd = [shutil.which("bash"), "-euo", "pipefail", "-c", doc_blocks.block(README, marker)]
    proc = subprocess.run(cmd, cwd=work, env=_env(bin_dir, log), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"README block '{marker}' needs a command this test has no stand-in for:\n{proc.stderr}"
    return [c.argv for c in _calls(log)]


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> dict[bool, list[list[str]]]:
    """What .ci/run must run, with Chromium present (True) and missing (False)."""
    tmp = tmp_path_factory.mktemp("ci_expected")
    ruff = re.search(r'"(ruff[^"]*)"', (ROOT / "pyproject.toml").read_text()).group(1)
    head = [["python3", "-m", "venv", ".venv"], ["pip", "install", "-q", ruff], ["ruff", "check", "src", "tests", "benchmarks"]]
    apt = [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]]
    blocks = block_calls(tmp, MARKERS[0]) + block_calls(tmp, MARKERS[1])
    return {True: head + blocks, False: head + apt + blocks}


def assert_ruff_then_the_readme_blocks_once(calls: list[Call], expected: list[list[str]]) -> None:
    assert [c.argv for c in calls] == expected
    assert len([c for c in calls if c.argv[:3] == ["python", "-m", "pytest"]]) == 1, "the suite must run exactly once"
    # the installed code only (the caller's PYTHONPATH is dropped), and CI=true: the browser test fails without Chromium
    assert {(c.pythonpath, c.ci) for c in calls} == {("<unset>", "true")}, calls


@pytest.mark.parametrize("chromium", [True, False], ids=["chromium-present", "chromium-missing"])
def test_ci_runs_ruff_then_the_two_readme_blocks_once(tmp_path, expected, chromium):
    proc, calls = run_ci(tmp_path, chromium=chromium)
    assert proc.returncode == 0, proc.stderr
    assert_ruff_then_the_readme_blocks_once(calls, expected[chromium])


def test_the_blocks_are_the_readme_top_and_what_it_says_they_are():
    text = README.read_text()
    top = text[: text.index("\n## ")]  # before the first section: what a new user reads first
    assert [top.count(f"<!-- {m} -->") for m in MARKERS] == [1, 1] and top.index(MARKERS[0]) < top.index(MARKERS[1])
    assert "`.ci/run` runs exactly these two blocks" in top
    install_and_run, test = (b for m in MARKERS for b in re.findall(rf"<!-- {m} -->\n```bash\n(.*?)```", top, re.S))
    assert "pip install -e ." in install_and_run and "posevid generate" in install_and_run
    assert 'pip install -e ".[test]"' in test and "python -m pytest" in test


# ------------------------------------------------------------------ negative controls: the check can fail
def _move_ruff_last(script: str) -> str:
    return script.replace("ruff check src tests benchmarks\n", "") + "ruff check src tests benchmarks\n"


BROKEN_SCRIPTS = {
    # the step .ci/run used to end with: the whole suite again, in a fresh venv
    "second-suite": lambda s: s + "POSEVID_FRESH_VENV=1 python -m pytest -p no:cacheprovider tests/test_readme_fresh_venv.py\n",
    "ruff-last": _move_ruff_last,
    "pythonpath-kept": lambda s: s.replace("unset PYTHONPATH PYTHONHOME", ":"),
}


@pytest.mark.parametrize("breakage", list(BROKEN_SCRIPTS))
def test_a_broken_ci_script_is_caught(tmp_path, expected, breakage):
    script = (ROOT / ".ci" / "run").read_text()
    broken = BROKEN_SCRIPTS[breakage](script)
    assert broken != script
    _, calls = run_ci(tmp_path, script=broken)
    with pytest.raises(AssertionError):
        assert_ruff_then_the_readme_blocks_once(calls, expected[True])


def test_a_readme_without_the_test_block_stops_ci(tmp_path):
    """A lost marker must fail CI, not run an empty block and pass."""
    proc, calls = run_ci(tmp_path, readme=README.read_text().replace("<!-- ci: test -->", ""))
    assert proc.returncode != 0 and "ci: test" in proc.stderr
    assert not [c for c in calls if c.argv[0] in ("posevid", "python")]  # stopped before block 1


def test_block_1_must_run_the_console_script_it_installed(tmp_path):
    """An install that leaves no posevid command in the venv fails CI, even with another posevid on PATH."""
    proc, calls = run_ci(tmp_path, stand_ins=dict(STAND_INS, pip="RECORD"))
    assert proc.returncode != 0 and "did not install the posevid command" in proc.stderr
    assert not [c for c in calls if c.argv[:3] == ["python", "-m", "pytest"]]


def test_block_1_must_write_what_it_names(tmp_path):
    proc, calls = run_ci(tmp_path, stand_ins=dict(STAND_INS, posevid="RECORD"))
    assert proc.returncode != 0 and "did not write tiny.mp4" in proc.stderr
    assert not [c for c in calls if c.argv[:3] == ["python", "-m", "pytest"]]
