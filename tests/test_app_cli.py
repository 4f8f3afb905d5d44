"""``posevid app`` command line: flags, and one-line errors for bad arguments before anything starts."""

from __future__ import annotations

import pytest

from posevid.cli import main


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["app", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--dreampose-model", "--host", "--port", "--output-dir", "--max-upload-mb", "--concurrency", "--device",
                 "--dtype", "--preload", "--densepose-weights"):
        assert flag in out
    assert "127.0.0.1" in out  # local by default


@pytest.mark.parametrize(
    "argv, message",
    [
        (["app", "--model", "./no/such/model"], "--model: not found: ./no/such/model"),
        (["app", "--dreampose-model", "/no/such/dir"], "--dreampose-model: not found"),
        (["app", "--densepose-weights", "/no/such/weights.safetensors"], "--densepose-weights: not found"),
        (["app", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["app", "--max-upload-mb", "0"], "--max-upload-mb must be positive"),
        (["app", "--port", "70000"], "--port must be between 0 and 65535"),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("posevid app: error: ") and message in err and err.count("\n") == 1
