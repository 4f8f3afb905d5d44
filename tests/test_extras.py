"""Optional extras: without the package, one line naming ``pip install "posevid[EXTRA]"`` and exit 2.

Each command runs in a subprocess in which the optional module is made unimportable
(``sys.modules[name] = None``, what Python does for a package that is not installed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from posevid.utils.extras import EXTRA_OF, MissingExtraError, require

BLOCK_AND_RUN = """
import sys
sys.modules[sys.argv[1]] = None
from posevid.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", BLOCK_AND_RUN, module, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "module, extra, args",
    [
        ("gradio", "app", ["app"]),
        ("tensorboard", "train", ["train", "fyp-temporal", "--data", "{tmp}", "--pretrained-model", "{tmp}"]),
        ("matplotlib", "eval", ["eval", "{ex}/dance_skeleton.mp4", "--reference", "{ex}/dance_skeleton.mp4", "--metrics", "psnr",
                                "--plot", "{tmp}/p.png"]),
        ("onnxruntime", "dwpose", ["pose", "{ex}/charades_0_20.mp4", "--estimator", "dwpose", "--out", "{tmp}/pose"]),
    ],
    ids=["app", "train", "eval", "dwpose"],
)  # fmt: skip
def test_missing_extra_is_one_line_with_the_pip_command(module, extra, args, examples_dir, tmp_path):
    args = [a.format(tmp=tmp_path, ex=examples_dir) for a in args]
    proc = _run_without(module, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"posevid {args[0]}: error: ") and f'pip install "posevid[{extra}]"' in lines[0], lines[0]
    assert module in lines[0]
    assert not (tmp_path / "pose").exists() and not (tmp_path / "p.png").exists()


def test_every_extra_in_pyproject_is_mapped():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"]) - {"test"}
    assert extras == set(EXTRA_OF.values())


def test_a_broken_package_is_not_reported_as_missing(tmp_path, monkeypatch):
    """An import error inside an installed package is a broken install: it must surface, not become 'pip install'."""
    (tmp_path / "posevid_fake_extra").mkdir()
    (tmp_path / "posevid_fake_extra" / "__init__.py").write_text("import posevid_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EXTRA_OF, "posevid_fake_extra", "app")
    with pytest.raises(ModuleNotFoundError, match="posevid_no_such_dependency"):
        require("posevid_fake_extra", "test")
    monkeypatch.setitem(sys.modules, "posevid_fake_extra", None)
    with pytest.raises(MissingExtraError, match=r'pip install "posevid\[app\]"'):
        require("posevid_fake_extra", "test")


def test_cli_does_not_hide_a_broken_command_module(monkeypatch):
    """cli.py used to skip a command whose module failed to import; a broken install must be loud."""
    from posevid import cli

    monkeypatch.setitem(sys.modules, "posevid.commands.convert", None)
    with pytest.raises(ImportError):
        cli.build_parser()
